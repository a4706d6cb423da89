"""Per-request records and their reduction to one flat metrics record per level.

Pure functions on plain numbers, so the maths is tested against hand-computed values
(vLLM's older harness once reported the median as the mean; a test here would catch it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from llmbox.bench.schema import OutputTokensMethod

_MS = 1000.0


@dataclass(frozen=True)
class RequestRecord:
    """What one streamed request did. Times are seconds from the request's start."""

    ok: bool
    error: str | None
    e2e_s: float
    ttft_s: float | None = None
    # Arrival time of every chunk that carried generated text, from the request start.
    token_times_s: tuple[float, ...] = ()
    prompt_tokens: int | None = None
    output_tokens: int = 0
    output_tokens_method: OutputTokensMethod = OutputTokensMethod.COUNTED
    server_tg_tok_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def itl_s(self) -> tuple[float, ...]:
        return inter_token_gaps(self.token_times_s)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["itl_s"] = list(self.itl_s)
        data["token_times_s"] = list(self.token_times_s)
        return data


def inter_token_gaps(times: Sequence[float]) -> tuple[float, ...]:
    """Gaps between consecutive token arrivals: [t1-t0, t2-t1, …]."""
    return tuple(later - earlier for earlier, later in itertools.pairwise(times))


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The ``pct``-th percentile with linear interpolation between closest ranks.

    Same definition as numpy's default ("linear"): rank = pct/100 * (n - 1).
    """
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    if not values:
        return None
    ordered = sorted(values)
    rank = pct / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stream_decode_tok_s(record: RequestRecord) -> float | None:
    """One stream's generation speed: tokens after the first over the time they took.

    (output_tokens - 1) / (last chunk - first chunk), so prompt processing (TTFT) is
    left out, as llama.cpp's own ``predicted_per_second`` leaves it out.
    """
    times = record.token_times_s
    if not record.ok or record.output_tokens < 2 or len(times) < 2:
        return None
    span = times[-1] - times[0]
    return (record.output_tokens - 1) / span if span > 0 else None


def weakest_output_method(records: Sequence[RequestRecord]) -> OutputTokensMethod:
    """The least authoritative source any completed request's token count came from."""
    order = list(OutputTokensMethod)
    used = [r.output_tokens_method for r in records if r.ok]
    return max(used, key=order.index) if used else OutputTokensMethod.COUNTED


def _ms_stats(prefix: str, seconds: Sequence[float]) -> dict[str, float | None]:
    values = [s * _MS for s in seconds]
    return {
        f"{prefix}_ms_mean": mean(values),
        f"{prefix}_ms_p50": percentile(values, 50),
        f"{prefix}_ms_p90": percentile(values, 90),
        f"{prefix}_ms_p95": percentile(values, 95),
        f"{prefix}_ms_p99": percentile(values, 99),
    }


def reduce_records(records: Sequence[RequestRecord], duration_s: float) -> dict[str, Any]:
    """The load-generator half of a level's metrics (telemetry is merged in later).

    Failed requests are counted, never dropped; latency figures use completed ones.
    ``duration_s`` is the level's wall time, first request sent to last one finished.
    """
    done = [r for r in records if r.ok]
    output_tokens = sum(r.output_tokens for r in done)
    per_stream = [s for s in map(stream_decode_tok_s, done) if s is not None]
    server_tg = [r.server_tg_tok_s for r in done if r.server_tg_tok_s is not None]
    prompt_counts = [float(r.prompt_tokens) for r in done if r.prompt_tokens is not None]
    rate = (lambda n: n / duration_s) if duration_s > 0 else (lambda n: 0.0)
    return {
        "completed": len(done),
        "failed": len(records) - len(done),
        "duration_s": duration_s,
        "request_per_s": rate(len(done)),
        "output_tok_s": rate(output_tokens),
        "output_tok_s_per_stream_mean": mean(per_stream),
        **_ms_stats("ttft", [r.ttft_s for r in done if r.ttft_s is not None]),
        **_ms_stats("itl", [gap for r in done for gap in r.itl_s]),
        **_ms_stats("e2e", [r.e2e_s for r in done]),
        "prompt_tokens_mean": mean(prompt_counts),
        "output_tokens_mean": mean([float(r.output_tokens) for r in done]),
        "server_tg_tok_s_mean": mean(server_tg),
    }


@dataclass(frozen=True)
class ServiceLevel:
    """The latency a request must meet to count towards goodput; None: not limited."""

    ttft_ms: float | None = None
    itl_ms: float | None = None


def request_mean_itl_s(record: RequestRecord) -> float | None:
    """One request's mean inter-token latency: (e2e - TTFT) / (output tokens - 1), what
    vLLM's bench calls TPOT and judges goodput by; None with fewer than two tokens."""
    if record.ttft_s is None or record.output_tokens < 2:
        return None
    return (record.e2e_s - record.ttft_s) / (record.output_tokens - 1)


def meets(record: RequestRecord, level: ServiceLevel) -> bool:
    """A completed request whose own TTFT and own mean ITL are each within the level.

    As in vLLM's bench (``--goodput ttft:… tpot:…``): judged per request, not on a
    percentile of the run; a request with one token has no ITL and meets any ITL limit.
    """
    if not record.ok:
        return False
    if level.ttft_ms is not None and (record.ttft_s is None or record.ttft_s * _MS > level.ttft_ms):
        return False
    itl = request_mean_itl_s(record)
    return level.itl_ms is None or itl is None or itl * _MS <= level.itl_ms


def goodput(
    records: Sequence[RequestRecord], duration_s: float, level: ServiceLevel | None
) -> dict[str, Any]:
    """Requests and output tokens per second of the requests that met ``level``, over
    the same wall time as the throughput figures (so goodput never exceeds them)."""
    if level is None:
        return {"good_completed": None, "goodput_request_per_s": None, "goodput_output_tok_s": None}
    good = [r for r in records if meets(r, level)]
    tokens = sum(r.output_tokens for r in good)
    return {
        "good_completed": len(good),
        "goodput_request_per_s": len(good) / duration_s if duration_s > 0 else 0.0,
        "goodput_output_tok_s": tokens / duration_s if duration_s > 0 else 0.0,
    }


def first_error(records: Sequence[RequestRecord]) -> str | None:
    return next((r.error for r in records if not r.ok), None)
