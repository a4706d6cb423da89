"""Metric maths against values worked out by hand."""

from __future__ import annotations

import dataclasses

import pytest

from llmbox.bench.metrics import (
    RequestRecord,
    inter_token_gaps,
    mean,
    percentile,
    reduce_records,
    stream_decode_tok_s,
    weakest_output_method,
)
from llmbox.bench.runner import level_metrics
from llmbox.bench.schema import EngineCeiling, OutputTokensMethod
from llmbox.bench.telemetry import TelemetrySummary


def test_inter_token_gaps_from_known_timestamps() -> None:
    gaps = inter_token_gaps([0.100, 0.150, 0.175, 0.275])
    assert gaps == pytest.approx((0.050, 0.025, 0.100))


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [40.0, 10.0, 30.0, 20.0]  # sorted: 10 20 30 40, rank = p/100 * 3
    assert percentile(values, 50) == pytest.approx(25.0)  # rank 1.5
    assert percentile(values, 90) == pytest.approx(37.0)  # rank 2.7 -> 30 + 0.7*10
    assert percentile(values, 99) == pytest.approx(39.7)  # rank 2.97
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile([], 50) is None


def test_percentile_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100, got 101"):
        percentile([1.0], 101)


def test_mean_and_median_differ_on_skewed_data() -> None:
    # A swapped mean/median would pass on symmetric data; this set tells them apart.
    values = [1.0, 2.0, 3.0, 10.0]
    assert mean(values) == pytest.approx(4.0)
    assert percentile(values, 50) == pytest.approx(2.5)


def _record(start_token: float, gap: float, tokens: int, e2e: float) -> RequestRecord:
    times = tuple(start_token + i * gap for i in range(tokens))
    return RequestRecord(
        ok=True,
        error=None,
        e2e_s=e2e,
        ttft_s=times[0],
        token_times_s=times,
        prompt_tokens=16,
        output_tokens=tokens,
        output_tokens_method=OutputTokensMethod.USAGE,
    )


def test_stream_decode_rate_leaves_out_the_first_token_wait() -> None:
    # 5 tokens, first at 0.5 s, then every 0.1 s: 4 tokens in 0.4 s = 10 tok/s.
    assert stream_decode_tok_s(_record(0.5, 0.1, 5, 1.0)) == pytest.approx(10.0)


def test_reduce_records_by_hand() -> None:
    fast = _record(0.1, 0.01, 11, 0.3)  # ttft 100 ms, gaps 10 ms, e2e 300 ms
    slow = _record(0.3, 0.03, 11, 0.7)  # ttft 300 ms, gaps 30 ms, e2e 700 ms
    slower = _record(0.8, 0.02, 11, 1.4)  # ttft 800 ms, gaps 20 ms, e2e 1400 ms
    broken = RequestRecord(ok=False, error="HTTP 500", e2e_s=0.05)
    metrics = reduce_records([fast, slow, slower, broken], duration_s=2.0)

    assert metrics["completed"] == 3
    assert metrics["failed"] == 1  # counted, not dropped
    assert metrics["request_per_s"] == pytest.approx(1.5)
    assert metrics["output_tok_s"] == pytest.approx(33 / 2.0)
    # per stream: 10 / (10 * gap) -> 100, 33.33, 50 tok/s; mean 61.11
    assert metrics["output_tok_s_per_stream_mean"] == pytest.approx((100 + 100 / 3 + 50) / 3)
    # TTFT 100, 300, 800 ms: mean 400 (not the median 300)
    assert metrics["ttft_ms_mean"] == pytest.approx(400.0)
    assert metrics["ttft_ms_p50"] == pytest.approx(300.0)
    assert metrics["ttft_ms_p90"] == pytest.approx(700.0)  # rank 1.8: 300 + 0.8 * 500
    # ITL: 10 gaps each of 10, 30 and 20 ms
    assert metrics["itl_ms_mean"] == pytest.approx(20.0)
    assert metrics["itl_ms_p50"] == pytest.approx(20.0)
    assert metrics["itl_ms_p99"] == pytest.approx(30.0)
    # e2e 300, 700, 1400 ms: mean 800, median 700
    assert metrics["e2e_ms_mean"] == pytest.approx(800.0)
    assert metrics["e2e_ms_p50"] == pytest.approx(700.0)
    assert metrics["output_tokens_mean"] == pytest.approx(11.0)


def test_reduce_all_failed_keeps_the_count_and_no_latency() -> None:
    broken = [RequestRecord(ok=False, error="refused", e2e_s=0.01) for _ in range(3)]
    metrics = reduce_records(broken, duration_s=0.5)
    assert (metrics["completed"], metrics["failed"]) == (0, 3)
    assert metrics["ttft_ms_mean"] is None
    assert metrics["output_tok_s"] == 0.0


def test_weakest_output_method_wins() -> None:
    usage = _record(0.1, 0.01, 3, 0.2)
    counted = RequestRecord(ok=True, error=None, e2e_s=0.2, token_times_s=(0.1,), output_tokens=1)
    assert weakest_output_method([usage]) is OutputTokensMethod.USAGE
    assert weakest_output_method([usage, counted]) is OutputTokensMethod.COUNTED


def test_level_metrics_tokens_per_joule_and_ceiling_share() -> None:
    records = [_record(0.1, 0.01, 11, 0.3), _record(0.1, 0.02, 11, 0.4)]  # 22 tokens
    telemetry = TelemetrySummary(
        gpu_power_w_mean=200.0, gpu_util_pct_mean=80.0, gpu_mem_used_mib_max=5000.0,
        gpu_energy_j=11.0, gpu_temp_c_max=70.0, gpu_sm_clock_mhz_mean=2000.0,
        cpu_util_pct_mean=30.0, mem_used_mib_max=2000.0, samples=5,
    )  # fmt: skip
    ceiling = EngineCeiling(
        tool="llama-bench", build=None, n_prompt=16, n_gen=11, pp_tok_s=1000.0, tg_tok_s=150.0
    )
    metrics = level_metrics(records, 0.5, telemetry, ceiling)
    assert metrics.tokens_per_joule == pytest.approx(2.0)  # 22 tokens / 11 J
    assert metrics.gpu_power_w_mean == 200.0
    # per stream 100 and 50 tok/s: mean 75, half of llama-bench's 150
    assert metrics.tg_fraction_of_ceiling == pytest.approx(0.5)
    no_gpu = dataclasses.replace(telemetry, gpu_energy_j=None, gpu_power_w_mean=None)
    assert level_metrics(records, 0.5, no_gpu, None).tokens_per_joule is None
