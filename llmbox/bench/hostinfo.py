"""Describe what is being measured: CPU, model (name, quantization, file hash), engine."""

from __future__ import annotations

import hashlib
import os
import platform
import re
from pathlib import Path
from typing import Any

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


def engine_info(props: dict[str, Any] | None, models: dict[str, Any]) -> EngineInfo:
    """llama.cpp says who it is in /props; others by the owner of their models."""
    if props and "build_info" in props:
        return EngineInfo(name="llama.cpp", version=str(props["build_info"]))
    data = models.get("data")
    owner = data[0].get("owned_by") if isinstance(data, list) and data else None
    if owner == "vllm":
        return EngineInfo(name="vllm", version=None)
    return EngineInfo(name=str(owner or "unknown"), version=None)
