"""Capacity at a service level: which measured run of a box counts when the scenario says
how fast users must get answers (``service_level: {ttft_p95_ms: 2000, itl_p95_ms: 100}``).

A box's useful throughput is what it delivers while users still get their answers in
time, not its saturated maximum. A run meets the level when none of its requests failed
and its p95 TTFT and p95 inter-token latency (every gap of every completed request, as
the bench's ``itl_ms_p95``) are each at or under the limit; of a box's runs that meet it,
the one with the highest ``output_tok_s`` is used, whatever its concurrency or request
rate. A box none of whose runs meets it is flagged, never dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llmbox.cost.results import BenchResult
    from llmbox.cost.scenario import ServiceLevel


def describe(level: ServiceLevel) -> str:
    """``p95 TTFT ≤ 2000 ms, p95 ITL ≤ 100 ms``."""
    limits = [("TTFT", level.ttft_p95_ms), ("ITL", level.itl_p95_ms)]
    return ", ".join(f"p95 {name} ≤ {limit:g} ms" for name, limit in limits if limit is not None)


def judge(result: BenchResult, level: ServiceLevel) -> tuple[bool, str]:
    """Whether ``result`` met ``level``, and the figures that say so."""
    if result.failed:
        return False, f"{result.failed} requests failed"
    said: list[str] = []
    met = True
    for name, figure, limit in (
        ("TTFT", result.ttft_ms_p95, level.ttft_p95_ms),
        ("ITL", result.itl_ms_p95, level.itl_p95_ms),
    ):
        if limit is None:
            continue
        if figure is None:
            return False, f"no p95 {name} in the file (an older llmbox bench; run it again)"
        met = met and figure <= limit
        said.append(f"p95 {name} {figure:.4g} ms {'≤' if figure <= limit else '>'} {limit:g}")
    return met, ", ".join(said)


def best_at_level(candidates: Sequence[BenchResult], level: ServiceLevel) -> BenchResult | None:
    """The run with the highest throughput among those that met ``level``."""
    met = [r for r in candidates if judge(r, level)[0]]
    return max(met, key=lambda r: (r.output_tok_s, r.path.name)) if met else None
