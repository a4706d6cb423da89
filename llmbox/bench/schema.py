"""The bench result file: its schema, its file name and its atomic write.

One JSON file per (host, engine, model, load level) run. The cost report reads these
files as they are, so the field names here are a contract: add keys freely, but rename
or remove one only with a new ``SCHEMA_VERSION``.

Version 2 (open-loop runs): ``settings.concurrency`` is null in a run driven by a request
rate (``settings.request_rate``), so a version-1 reader that needs a concurrency must
change; every version-1 file is still a valid version-2 file with the new keys absent.
"""

from __future__ import annotations

import enum
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION: Literal[2] = 2
READABLE_SCHEMA_VERSIONS = (1, 2)


class Endpoint(enum.StrEnum):
    """Which OpenAI-compatible API the load generator streams from."""

    CHAT = "chat"
    COMPLETIONS = "completions"


class Arrivals(enum.StrEnum):
    """How an open-loop run spaces its requests at a given rate (GuideLLM's rate types)."""

    CONSTANT = "constant"  # exactly 1/rate seconds apart
    POISSON = "poisson"  # exponential gaps of mean 1/rate (vLLM's bench, burstiness 1)


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
    # "llama.cpp", "vllm", or "unknown" for a server that does not say which engine it is
    name: str
    version: str | None
    # what the server's /v1/models said owns its model, when that named no known engine
    owned_by: str | None = None


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
    # Closed loop: this many requests in flight. None in an open-loop run (request_rate).
    concurrency: int | None
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
    # Open loop: requests sent per second whatever the server's pace, and how spaced.
    request_rate: float | None = None
    arrivals: Arrivals | None = None
    # The service level goodput counts against (`--slo-ttft-ms`, `--slo-itl-ms`).
    slo_ttft_ms: float | None = None
    slo_itl_ms: float | None = None
    # "SIGINT"/"SIGTERM" when a signal ended the level early: nothing was sent after it,
    # the requests in flight were answered and counted (so `requests`/`duration_s` above
    # are what was asked, not what ran).
    stopped_by: str | None = None


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
    # p95s (absent from version-1 files): what a service level is usually stated at.
    ttft_ms_p95: float | None = None
    itl_ms_p95: float | None = None
    e2e_ms_p95: float | None = None
    # Open loop: requests sent per second, (sent - 1) / (last send - first send).
    request_rate_achieved: float | None = None
    # Requests that met the run's service level (per request: TTFT and mean ITL each at
    # or under it, as vLLM's bench counts goodput), per second of the run; None when no
    # service level was given.
    good_completed: int | None = None
    goodput_request_per_s: float | None = None
    goodput_output_tok_s: float | None = None
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
    schema_version: Literal[1, 2] = SCHEMA_VERSION
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


def level_label(settings: Settings) -> str:
    """``c4`` for concurrency 4, ``r0.5`` for an open-loop rate of 0.5 requests/s."""
    if settings.request_rate is not None:
        return f"r{settings.request_rate:g}"
    return f"c{settings.concurrency}"


def result_filename(result: BenchResult) -> str:
    """``{host}__{engine}__{model}__c{concurrency}.json`` (``__r{rate}`` in an open-loop
    run), as the contract names it."""
    meta = result.metadata
    return (
        f"{slug(meta.host)}__{slug(meta.engine.name)}__{model_slug(meta.model)}"
        f"__{level_label(meta.settings)}.json"
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
