"""Fixtures for the cost tests: bench result files written as `llmbox bench` writes them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BenchWriter = Callable[..., Path]


def bench_result(
    *,
    host: str,
    gpu: str | None,
    model: str = "Meta-Llama-3-8B-Instruct",
    quantization: str = "Q4_K_M",
    concurrency: int = 1,
    output_tok_s: float = 100.0,
    gpu_power_w_mean: float | None = None,
    completed: int = 32,
    gpu_count: int = 1,
) -> dict[str, Any]:
    """A schema_version 1 result, as in the bench contract (unused metrics zeroed)."""
    return {
        "schema_version": 1,
        "metadata": {
            "tool": "llmbox", "tool_version": "0.1.0", "created_at": "2026-11-24T01:02:03Z",
            "host": host,
            "engine": {"name": "llama.cpp", "version": "b6000"},
            "model": {"name": model, "quantization": quantization, "sha256": None,
                      "file_bytes": 4920000000},
            "gpu": None if gpu is None else {"name": gpu, "count": gpu_count, "driver": "550.54",
                                             "cuda": "12.4", "memory_total_mib": 24564},
            "gpu_note": "no NVIDIA GPU: NVML not available" if gpu is None else None,
            "cpu": {"model": "test cpu", "logical_cores": 8},
            "settings": {"url": "http://127.0.0.1:8080", "endpoint": "chat",
                         "concurrency": concurrency, "requests": 32, "duration_s": None,
                         "prompt_tokens": 128, "output_tokens": 128,
                         "prompt_tokens_method": "tokenize", "output_tokens_method": "usage",
                         "warmup_requests": 2},
            "unknown_future_key": {"ignored": True},
        },
        "metrics": {
            "completed": completed, "failed": 32 - completed, "duration_s": 12.3,
            "request_per_s": 2.6,
            "output_tok_s": output_tok_s, "output_tok_s_per_stream_mean": output_tok_s,
            **{f"{m}_ms_{s}": 0 for m in ("ttft", "itl", "e2e") for s in ("mean", "p50", "p90",
                                                                          "p99")},
            "gpu_power_w_mean": gpu_power_w_mean, "gpu_util_pct_mean": None,
            "gpu_mem_used_mib_max": None, "gpu_energy_j": None, "tokens_per_joule": None,
            "cpu_util_pct_mean": 55.0, "mem_used_mib_max": 1234,
        },
    }  # fmt: skip


@pytest.fixture
def write_bench(tmp_path: Path) -> BenchWriter:
    """Write a bench result into ``tmp_path/results`` under the contract's file name."""
    folder = tmp_path / "results"
    folder.mkdir(exist_ok=True)

    def write(**kwargs: Any) -> Path:
        data = bench_result(**kwargs)
        meta = data["metadata"]
        model = meta["model"]["name"].lower()
        concurrency = meta["settings"]["concurrency"]
        name = f"{meta['host']}__llama.cpp__{model}__c{concurrency}.json"
        path = folder / name
        path.write_text(json.dumps(data))
        return path

    return write


@pytest.fixture
def make_bench_result() -> Callable[..., dict[str, Any]]:
    """The bench result dictionary builder, for tests that write files another way."""
    return bench_result
