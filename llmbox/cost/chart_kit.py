"""What every chart shares: one colour per option, stable SVG output, break-even sweeps.

matplotlib is imported inside the functions so that ``llmbox report`` in table form never
pays for it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, replace
from typing import Any

from llmbox.cost import model
from llmbox.cost.equal_work import Way, terms
from llmbox.cost.report import HOURS_PER_DAY_SWEEP, Report, demand_at

# Tableau 10 and six darker hues that stay apart from it: 16 options, each its own colour
# (12 charted boxes + 3 APIs at most; the issue saw 12 lines share 10 colours).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#8c6d31", "#843c39", "#637939", "#7b4173", "#3182bd",
)  # fmt: skip
RC = {
    "svg.fonttype": "none",  # keep text as text: smaller files, searchable, measurable labels
    "svg.hashsalt": "llmbox",  # stable generated ids: the same report gives the same SVG
    "font.size": 9,
    "font.family": "DejaVu Sans",  # the face matplotlib measured; the page asks for it too
}
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


@dataclass(frozen=True)
class Swatch:
    """An option's colour and its key in element ids (``opt-<key>-...``), the same in
    every chart, so a reader (and the browser test) can follow it from chart to chart."""

    key: str
    colour: str


def pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - heavy import, only when charts are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def gid(swatch: Swatch, role: str) -> str:
    return f"opt-{swatch.key}-{role}"


def to_svg(figure: Any, prefix: str) -> str:
    """The figure as inline SVG whose every id (and reference to one) starts with
    ``prefix``: three charts on one page would otherwise repeat matplotlib's ids
    ("figure_1", clip paths). No date: identical input gives identical bytes."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    pyplot().close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: inline in HTML
    text = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', text)
    return _REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", text)


def money_axis(axes: Any, axis: str = "y") -> None:
    """Short dollar ticks ("$12k") so tick labels stay clear of each other."""
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415

    def short(value: float, _position: object) -> str:
        if abs(value) >= 1e6:
            return f"${value / 1e6:g}M"
        if abs(value) >= 1e3:
            return f"${value / 1e3:g}k"
        return f"${value:g}"

    target = axes.yaxis if axis == "y" else axes.xaxis
    target.set_major_formatter(FuncFormatter(short))


@dataclass(frozen=True)
class Sweep:
    """Break-even month of ``office`` against ``rent`` for 1-24 hours a day, at the rent's
    low and high price; ``None`` where buying never pays back."""

    office: str
    rent: str
    hours: tuple[int, ...]
    vs_low: tuple[int | None, ...]
    vs_high: tuple[int | None, ...]


def break_even_sweep(report: Report, office: str, rent: str) -> Sweep:
    """The report's hours-per-day sweep (``BreakEven.by_hours_per_day`` is against the high
    price only), done at both prices with the report's own rules."""
    ways: dict[str, Way] = {w.name: w for w in report.ways}
    base = report.knobs
    low: list[int | None] = []
    high: list[int | None] = []
    for hours in HOURS_PER_DAY_SWEEP:
        knobs = replace(base, hours_per_day=hours)
        tokens = demand_at(report.demand, knobs, base)
        own, theirs = terms(ways[office], tokens, knobs), terms(ways[rent], tokens, knobs)
        upfront = own.upfront or 0.0
        low.append(model.break_even_month(upfront, own.running_low, theirs.running_low, None))
        high.append(model.break_even_month(upfront, own.running_low, theirs.running_high, None))
    return Sweep(office, rent, HOURS_PER_DAY_SWEEP, tuple(low), tuple(high))
