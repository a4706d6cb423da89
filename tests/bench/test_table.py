"""The summary table is readable at the width it is printed at: 80 columns in a terminal,
in a file or in a CI log (rich's width when there is no terminal), wider where there is."""

from __future__ import annotations

import io

from rich.console import Console

from llmbox.bench.schema import (
    BenchResult,
    CpuInfo,
    Endpoint,
    EngineCeiling,
    EngineInfo,
    Metadata,
    Metrics,
    ModelInfo,
    OutputTokensMethod,
    PromptTokensMethod,
    Settings,
)
from llmbox.bench.table import results_table


def _result(concurrency: int) -> BenchResult:
    settings = Settings(
        url="http://h:8080", endpoint=Endpoint.CHAT, concurrency=concurrency, requests=32,
        duration_s=None, prompt_tokens=128, output_tokens=128,
        prompt_tokens_method=PromptTokensMethod.TOKENIZE,
        output_tokens_method=OutputTokensMethod.USAGE, warmup_requests=2, seed=7,
    )  # fmt: skip
    metadata = Metadata(
        tool="llmbox", tool_version="0", created_at="2025-01-01T00:00:00Z", host="Office PC 1",
        engine=EngineInfo(name="llama.cpp", version="b1"),
        model=ModelInfo(name="SmolLM2-135M-Instruct", quantization="Q4_1", sha256=None,
                        file_bytes=None),
        gpu=None, gpu_note="no NVIDIA GPU", cpu=CpuInfo(model="cpu", logical_cores=2),
        settings=settings,
        engine_ceiling=EngineCeiling(tool="llama-bench", build="b1", n_prompt=128, n_gen=128,
                                     pp_tok_s=1000.0, tg_tok_s=100.0),
    )  # fmt: skip
    # The widest figures a GPU host gives: five-digit latencies, four-digit rates.
    metrics = Metrics(
        completed=128, failed=3, duration_s=60.0, request_per_s=12.34, output_tok_s=1234.5,
        output_tok_s_per_stream_mean=98.7, ttft_ms_mean=1500.0, ttft_ms_p50=1234.5,
        ttft_ms_p90=5000.0, ttft_ms_p99=12345.6, itl_ms_mean=11.0, itl_ms_p50=10.12,
        itl_ms_p90=50.0, itl_ms_p99=123.45, e2e_ms_mean=13000.0, e2e_ms_p50=12345.0,
        e2e_ms_p90=50000.0, e2e_ms_p99=123456.0, gpu_power_w_mean=312.5, gpu_util_pct_mean=90.0,
        gpu_mem_used_mib_max=20000.0, gpu_energy_j=18750.0, tokens_per_joule=3.21,
        cpu_util_pct_mean=95.0, mem_used_mib_max=4000.0, tg_fraction_of_ceiling=0.87,
    )  # fmt: skip
    return BenchResult(metadata=metadata, metrics=metrics)


def _render(width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    console.print(results_table([_result(1), _result(64)]))
    return out.getvalue()


def test_at_80_columns_every_header_and_figure_is_whole() -> None:
    text = _render(80)
    assert "…" not in text
    assert max(map(len, text.splitlines())) <= 80
    for whole in (
        "conc", "failed", "req/s", "tok/s", "/stream", "TTFT ms", "ITL ms", "e2e ms", "p99",
        "GPU W", "tok/J", "CPU %", "bench tg",
        "12.34", "1,234.5", "98.7", "12,345.6", "123.45", "123,456", "312.5", "3.21", "87%",
    ):  # fmt: skip
        assert whole in text, whole
    assert "Office PC 1 · llama.cpp · SmolLM2-135M-Instruct Q4_1 · 128 in / 128 out" in text


def test_at_80_columns_the_groups_are_separate_tables() -> None:
    assert _render(80).count("┏") == 3  # load, latency, resources; each with its "conc"


def test_a_wide_terminal_gets_one_table() -> None:
    text = _render(200)
    assert text.count("┏") == 1
    assert "…" not in text
