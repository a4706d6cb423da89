"""The bench result file: its schema, its file name and its atomic write.

One JSON file per (host, engine, model, concurrency) run. The cost report reads these
files as they are, so the field names here are a contract: add keys freely, but rename
or remove one only with a new ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import enum
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1


class Endpoint(enum.StrEnum):
    """Which OpenAI-compatible API the load generator streams from."""

    CHAT = "chat"
    COMPLETIONS = "completions"


class PromptTokensMethod(enum.StrEnum):
    """How the prompt length was controlled."""

    TOKENIZE = "tokenize"  # cut to exactly N tokens with the server's own tokenizer
    APPROXIMATE = "approximate"  # the server has no /tokenize: about 4 characters a token


class OutputTokensMethod(enum.StrEnum):
    """Where the output token counts came from, most to least authoritative."""

    USAGE = "usage"  # the OpenAI `usage` block the server sent
    TIMINGS = "timings"  # llama.cpp's `timings.predicted_n`
    COUNTED = "counted"  # content chunks counted by the client (an approximation)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class EngineInfo(_Frozen):
    name: str
    version: str | None


class ModelInfo(_Frozen):
    name: str
    quantization: str | None
    sha256: str | None
    file_bytes: int | None


class GpuInfo(_Frozen):
    name: str
    count: int
    driver: str | None
    cuda: str | None
    memory_total_mib: int | None


class CpuInfo(_Frozen):
    model: str
    logical_cores: int


class Settings(_Frozen):
    url: str
    endpoint: Endpoint
    concurrency: int
    requests: int | None
    duration_s: float | None
    prompt_tokens: int
    output_tokens: int
    prompt_tokens_method: PromptTokensMethod
    output_tokens_method: OutputTokensMethod
    warmup_requests: int
    # The run's prompt seed: `llmbox bench --seed N` sends the same prompts again.
    seed: int | None = None
    # False when every request asked the engine not to reuse cached prompt prefixes
    # (llama.cpp's `cache_prompt` request field); None where the engine has no such switch.
    cache_prompt: bool | None = None


class EngineCeiling(_Frozen):
    """What ``llama-bench`` measured for the same model file on the same host."""

    tool: str
    build: str | None
    n_prompt: int
    n_gen: int
    pp_tok_s: float
    tg_tok_s: float


class Metadata(_Frozen):
    tool: str
    tool_version: str
    created_at: str
    host: str
    engine: EngineInfo
    model: ModelInfo
    gpu: GpuInfo | None
    gpu_note: str | None
    cpu: CpuInfo
    settings: Settings
    engine_ceiling: EngineCeiling | None = None
    # 1-minute load average of the bench host when the level started: a busy host
    # (other jobs, or the server itself on a CPU-only box) explains slow figures.
    host_load_avg_1m: float | None = None
    # None when every request of the run was served; else what went wrong.
    run_error: str | None = None


class Metrics(_Frozen):
    """One flat record per concurrency level; units are in the names."""

    completed: int
    failed: int
    duration_s: float
    request_per_s: float
    output_tok_s: float
    output_tok_s_per_stream_mean: float | None
    ttft_ms_mean: float | None
    ttft_ms_p50: float | None
    ttft_ms_p90: float | None
    ttft_ms_p99: float | None
    itl_ms_mean: float | None
    itl_ms_p50: float | None
    itl_ms_p90: float | None
    itl_ms_p99: float | None
    e2e_ms_mean: float | None
    e2e_ms_p50: float | None
    e2e_ms_p90: float | None
    e2e_ms_p99: float | None
    prompt_tokens_mean: float | None = None
    output_tokens_mean: float | None = None
    # llama.cpp's own per-request decode speed (`timings.predicted_per_second`), mean.
    server_tg_tok_s_mean: float | None = None
    gpu_power_w_mean: float | None
    gpu_util_pct_mean: float | None
    gpu_mem_used_mib_max: float | None
    gpu_energy_j: float | None
    gpu_temp_c_max: float | None = None
    gpu_sm_clock_mhz_mean: float | None = None
    tokens_per_joule: float | None
    cpu_util_pct_mean: float | None
    mem_used_mib_max: float | None
    # output_tok_s_per_stream_mean / engine_ceiling.tg_tok_s, when a ceiling was run.
    tg_fraction_of_ceiling: float | None = None


class BenchResult(_Frozen):
    schema_version: int = SCHEMA_VERSION
    metadata: Metadata
    metrics: Metrics
    # Per-request detail, only with --per-request.
    requests: list[dict[str, Any]] | None = None


_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def slug(text: str) -> str:
    """A lower-case, path-safe version of ``text`` ("Q4_1" stays readable)."""
    cleaned = _UNSAFE.sub("-", text.lower()).strip("-.")
    return cleaned or "unknown"


def model_slug(model: ModelInfo) -> str:
    name = model.name if model.quantization is None else f"{model.name}-{model.quantization}"
    return slug(name)


def result_filename(result: BenchResult) -> str:
    """``{host}__{engine}__{model}__c{concurrency}.json``, as the contract names it."""
    meta = result.metadata
    return (
        f"{slug(meta.host)}__{slug(meta.engine.name)}__{model_slug(meta.model)}"
        f"__c{meta.settings.concurrency}.json"
    )


def write_result(result: BenchResult, out_dir: Path) -> Path:
    """Write ``result`` into ``out_dir`` atomically: a reader never sees half a file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / result_filename(result)
    text = result.model_dump_json(indent=2, exclude_none=False) + "\n"
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp_name).replace(target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def read_result(path: Path) -> BenchResult:
    return BenchResult.model_validate_json(path.read_text(encoding="utf-8"))
