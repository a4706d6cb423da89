"""Describe what is being measured: CPU, model (name, quantization, file hash), engine."""

from __future__ import annotations

import hashlib
import os
import platform
import re
from pathlib import Path
from typing import Any

import httpx

from llmbox.bench.client import server_version
from llmbox.bench.schema import CpuInfo, EngineInfo, ModelInfo

# GGUF quantization tags as they appear in file names: Q4_1, Q4_K_M, IQ3_XS, F16, BF16 …
_QUANT = re.compile(r"[._-]((?:I?Q\d+(?:_[A-Z0-9]+)*)|BF16|F16|F32)$", re.IGNORECASE)


def cpu_info() -> CpuInfo:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: platform.processor() is the best there is
    return CpuInfo(model=model, logical_cores=os.cpu_count() or 1)


def split_model_name(name: str) -> tuple[str, str | None]:
    """``SmolLM2-135M-Instruct.Q4_1.gguf`` -> (``SmolLM2-135M-Instruct``, ``Q4_1``)."""
    stem = Path(name).name.removesuffix(".gguf")
    match = _QUANT.search(stem)
    if match is None:
        return stem, None
    return stem[: match.start()], match.group(1).upper()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_info(
    served_name: str, model_file: Path | None, props: dict[str, Any] | None
) -> ModelInfo:
    """Name and quantization from the model file, else llama.cpp's model path, else the
    name the server is asked for; sha256 and size only when the file is readable here."""
    source = served_name
    if model_file is not None:
        source = model_file.name
    elif props and isinstance(props.get("model_path"), str):
        source = props["model_path"]
    name, quantization = split_model_name(source)
    if model_file is None:
        return ModelInfo(name=name, quantization=quantization, sha256=None, file_bytes=None)
    return ModelInfo(
        name=name,
        quantization=quantization,
        sha256=sha256_of(model_file),
        file_bytes=model_file.stat().st_size,
    )


# What a server puts in ``owned_by`` of its /v1/models entries when the entry is its own
# model: vLLM's ModelCard defaults it to "vllm" (vllm/entrypoints/serve/engine/protocol.py
# in vLLM 0.32, vllm/entrypoints/openai/protocol.py before); llama-server answers "llamacpp"
# (tools/server/server-context.cpp in ggml-org/llama.cpp). Other values (a proxy's
# "openai", an organisation) name no engine: kept as ``owned_by``, the engine "unknown".
_ENGINE_BY_OWNER = {"vllm": "vllm", "llamacpp": "llama.cpp"}
UNKNOWN_ENGINE = "unknown"


def model_owner(models: dict[str, Any]) -> str | None:
    """``owned_by`` of the first model /v1/models lists, if it says one."""
    data = models.get("data")
    first = data[0] if isinstance(data, list) and data else None
    owner = first.get("owned_by") if isinstance(first, dict) else None
    return owner if isinstance(owner, str) and owner else None


def engine_info(
    props: dict[str, Any] | None, models: dict[str, Any], vllm_version: str | None = None
) -> EngineInfo:
    """llama.cpp says who it is in /props (its build); vLLM by the owner of its models and
    its version from /version (``vllm_version``, see ``client.server_version``)."""
    if props and "build_info" in props:
        return EngineInfo(name="llama.cpp", version=str(props["build_info"]))
    owner = model_owner(models)
    engine = _ENGINE_BY_OWNER.get(owner or "")
    if engine is None:
        return EngineInfo(name=UNKNOWN_ENGINE, version=None, owned_by=owner)
    return EngineInfo(name=engine, version=vllm_version if engine == "vllm" else None)


async def detect_engine(
    client: httpx.AsyncClient, url: str, props: dict[str, Any] | None, models: dict[str, Any]
) -> EngineInfo:
    """The engine and its version; /version is a common path, so only a server whose
    models say vLLM is asked it."""
    is_vllm = model_owner(models) == "vllm"
    version = await server_version(client, url) if is_vllm else None
    return engine_info(props, models, version)
