"""How far to trust the verdict: move each uncertain input across a range and find where
the cheapest option for the demand changes (pure; no catalog, no I/O).

Inputs moved, one at a time, all others at the scenario's values: electricity price,
hours of use per day, every purchase price, every cloud price, every API price and every
box's tokens/s (the last four as a factor on the figures the report used). A demand the
scenario states stays fixed; a demand the report states (the fastest box busy every loaded
hour) grows with hours of use and does not move with tokens/s (the users need the same
tokens whatever the boxes deliver).

For each input the row gives the winner at both ends of the range, every flip point
inside it (found on a grid, then by bisection) and the tornado data: how much cheaper
the base verdict's winner is than the best other option at each end (negative: it lost).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from llmbox.cost.equal_work import Knobs, Terms, Way, ranked
from llmbox.cost.report import Report, demand_at
from llmbox.cost.scenario import OptionKind

GRID_POINTS = 25
BISECTIONS = 30


@dataclass(frozen=True)
class SensitivityRow:
    """One input's effect on the verdict. ``flips``: (value, winner below, winner above)."""

    name: str
    unit: str
    base: float
    low: float
    high: float
    winner_at_low: str | None
    winner_at_high: str | None
    flips: tuple[tuple[float, str | None, str | None], ...]
    lead_at_low_usd: float | None
    lead_at_high_usd: float | None


@dataclass(frozen=True)
class _Input:
    name: str
    unit: str
    base: float
    low: float
    high: float
    geometric: bool
    apply: Callable[[Knobs, float], Knobs]


_SETTERS: dict[str, Callable[[Knobs, float], Knobs]] = {
    "hardware_price": lambda k, v: replace(k, hardware_price=v),
    "cloud_price": lambda k, v: replace(k, cloud_price=v),
    "api_price": lambda k, v: replace(k, api_price=v),
}


def _inputs(knobs: Knobs, ways: tuple[Way, ...]) -> list[_Input]:
    kinds = {w.kind for w in ways if w.fits}
    found = []
    if OptionKind.OFFICE in kinds:
        base = knobs.electricity_usd_per_kwh
        found.append(_Input("electricity price", "$/kWh", base, min(0.05, base),
                            max(0.60, base), False,
                            lambda k, v: replace(k, electricity_usd_per_kwh=v)))  # fmt: skip
    if kinds & {OptionKind.OFFICE, OptionKind.CLOUD}:
        found.append(_Input("hours of use per day", "h/day", knobs.hours_per_day, 1.0, 24.0,
                            False, lambda k, v: replace(k, hours_per_day=v)))  # fmt: skip
    factors = [
        (OptionKind.OFFICE, "hardware prices", 0.5, 2.0, "hardware_price"),
        (OptionKind.CLOUD, "cloud prices", 0.25, 2.0, "cloud_price"),
        (OptionKind.API, "hosted API prices", 0.25, 4.0, "api_price"),
    ]
    for kind, name, low, high, field in factors:
        if kind in kinds:
            found.append(_Input(name, "x the report's figure", 1.0, low, high, True,
                                _SETTERS[field]))  # fmt: skip
    if kinds & {OptionKind.OFFICE, OptionKind.CLOUD}:
        found.append(_Input("tokens/s of every box", "x the report's figure", 1.0, 0.5, 4.0,
                            True, lambda k, v: replace(k, tok_s=v)))  # fmt: skip
    return found


def _grid(spec: _Input) -> list[float]:
    steps = GRID_POINTS - 1
    if spec.geometric:
        ratio = (spec.high / spec.low) ** (1 / steps)
        points = [spec.low * ratio**i for i in range(steps)]
    else:
        points = [spec.low + (spec.high - spec.low) * i / steps for i in range(steps)]
    return sorted({*points, spec.high, spec.base})


def analyse(report: Report) -> list[SensitivityRow]:
    """One row per input that can move the verdict of ``report``."""
    base = report.knobs

    def standings(knobs: Knobs) -> list[tuple[float, float, Way, Terms]]:
        return ranked(list(report.ways), demand_at(report.demand, knobs, base), knobs)

    def winner(knobs: Knobs) -> str | None:
        found = standings(knobs)
        return found[0][2].name if found else None

    base_winner = winner(base)

    def lead(knobs: Knobs) -> float | None:
        found = standings(knobs)
        mine = next((item[0] for item in found if item[2].name == base_winner), None)
        other = next((item[0] for item in found if item[2].name != base_winner), None)
        return None if mine is None or other is None else other - mine

    rows = []
    for spec in _inputs(base, report.ways):
        at = [(value, winner(spec.apply(base, value))) for value in _grid(spec)]
        flips = []
        for (below, before), (above, after) in itertools.pairwise(at):
            if before == after:
                continue
            left, right = below, above
            for _ in range(BISECTIONS):  # narrow the change down between two grid points
                middle = math.sqrt(left * right) if spec.geometric else (left + right) / 2
                if winner(spec.apply(base, middle)) == before:
                    left = middle
                else:
                    right = middle
            flips.append((right, before, winner(spec.apply(base, right)) or after))
        rows.append(SensitivityRow(
            spec.name, spec.unit, spec.base, spec.low, spec.high, at[0][1], at[-1][1],
            tuple(flips), lead(spec.apply(base, spec.low)), lead(spec.apply(base, spec.high)),
        ))  # fmt: skip
    return rows
