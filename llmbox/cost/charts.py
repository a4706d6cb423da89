"""The report's charts as inline SVG, drawn with matplotlib's Agg backend.

Every option keeps one colour in every chart (``swatches``). The cumulative-cost chart is
small multiples, each purchase against the cheapest rentals, so eight or more options
never pile their labels on one plot.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

from llmbox.cost.chart_kit import (
    PALETTE,
    RC,
    Swatch,
    break_even_sweep,
    gid,
    money_axis,
    pyplot,
    to_svg,
)
from llmbox.cost.money import usd, usd_range
from llmbox.cost.provenance import Provenance
from llmbox.cost.report import ApiCost, BreakEven, OptionCosts, Report
from llmbox.cost.scenario import OptionKind

# more lines than this and a chart is unreadable: charts show the best ones
MAX_SERIES = 12
MAX_CLOUD_SERIES = 4
MAX_API_SERIES = 3
# an API dearer per 1M tokens than this many times the dearest box is left off the bar
# chart's axis (and says so), or every box bar would shrink to a sliver
SCALE_FACTOR = 3.0
_SOLID = Provenance.MEASURED, Provenance.CATALOG, Provenance.SCENARIO


def charted_options(report: Report) -> list[OptionCosts]:
    """The priced options that can serve the model, as many as a chart shows legibly: all
    of them, or the cheapest per 1M tokens of each kind (up to ``MAX_CLOUD_SERIES`` cloud
    options and office boxes for the rest). ``left_out`` says why the others are missing."""
    priced = [c for c in report.options if c.priced and c.option.fit.fits]
    if len(priced) <= MAX_SERIES:
        return priced
    by_cost = sorted(priced, key=lambda c: c.usd_per_mtok_high or 0.0)
    clouds = [c for c in by_cost if c.option.kind is OptionKind.CLOUD][:MAX_CLOUD_SERIES]
    offices = [c for c in by_cost if c.option.kind is OptionKind.OFFICE]
    chosen = {id(c) for c in clouds + offices[: MAX_SERIES - len(clouds)]}
    return [c for c in priced if id(c) in chosen]


def charted_apis(report: Report) -> list[ApiCost]:
    """The cheapest hosted APIs for the demand (at most ``MAX_API_SERIES``)."""
    return sorted(report.apis, key=lambda a: a.demand_monthly_usd)[:MAX_API_SERIES]


def left_out(report: Report) -> list[str]:
    """Each option no chart shows, with the reason (the tables list every one)."""
    shown = {c.option.name for c in charted_options(report)}
    found = []
    for costs in report.options:
        fit = costs.option.fit
        if not fit.fits:
            why = f"the model does not fit ({fit.total_gib:.1f} GiB needed, {fit.vram_gib:g})"
        elif not costs.priced:
            why = "not priced"
        elif costs.option.name not in shown:
            why = "not among the cheapest of its kind"
        else:
            continue
        found.append(f"{costs.option.name}: {why}")
    charted = {a.name for a in charted_apis(report)}
    found += [f"{a.name}: not among the {MAX_API_SERIES} cheapest APIs"
              for a in report.apis if a.name not in charted]  # fmt: skip
    return found


def swatches(report: Report) -> dict[str, Swatch]:
    """One colour per charted option (boxes in scenario order, then APIs)."""
    names = [c.option.name for c in charted_options(report)]
    names += [a.name for a in charted_apis(report)]
    return {n: Swatch(f"o{i}", PALETTE[i % len(PALETTE)]) for i, n in enumerate(names)}


def charted_pairs(report: Report) -> list[BreakEven]:
    """Break-even pairs between charted options, earliest first, at most ``MAX_SERIES``."""
    names = set(swatches(report))
    pairs = [b for b in report.break_evens if b.office in names and b.rent in names]
    never = report.scenario.horizon_months + 1
    pairs.sort(key=lambda b: b.month_vs_high if b.month_vs_high is not None else never)
    return pairs[:MAX_SERIES]


def cheapest_rentals(report: Report) -> tuple[str | None, str | None]:
    """The cheapest charted cloud option and API for the demand (``None`` where none)."""
    names = set(swatches(report))
    kinds = [(r.kind, r.name) for r in report.ranking if r.name in names]
    cloud = next((n for k, n in kinds if k is OptionKind.CLOUD), None)
    return cloud, next((n for k, n in kinds if k is OptionKind.API), None)


def _month(month: int | None) -> str:
    return "never" if month is None else f"m{month}"


def _pays_back(report: Report, office: str, rent: str, kind: str) -> str:
    found = next((b for b in report.break_evens if (b.office, b.rent) == (office, rent)), None)
    if found is None:
        return ""
    high, low = _month(found.month_vs_high), _month(found.month_vs_low)
    return f"{high} vs {kind}" if high == low else f"{high} (high) / {low} (low) vs {kind}"


def _cumulative_panel(axes: Any, report: Report, buy: OptionCosts | None, panel: int) -> None:
    colours, months = swatches(report), list(range(report.scenario.horizon_months + 1))
    cloud, api = cheapest_rentals(report)
    boxes = {c.option.name: c for c in charted_options(report)}
    clouds = [boxes[cloud]] if cloud else []
    apis = [a for a in charted_apis(report) if a.name == api]
    if buy is None:  # nothing bought: every charted rental on one plot
        clouds = [c for c in boxes.values() if c.option.kind is OptionKind.CLOUD]
        apis = charted_apis(report)
    else:
        swatch = colours[buy.option.name]
        label = f"{buy.option.name} (bought)"
        axes.plot(months, buy.cumulative_high, color=swatch.colour, linewidth=2, label=label,
                  gid=gid(swatch, f"buy-p{panel}"))  # fmt: skip
    for costs in clouds:
        name, swatch = costs.option.name, colours[costs.option.name]
        if costs.cumulative_low != costs.cumulative_high:  # the price band in its own colour
            axes.fill_between(months, costs.cumulative_low, costs.cumulative_high,
                              color=swatch.colour, alpha=0.15, linewidth=0,
                              gid=gid(swatch, f"band-p{panel}"))  # fmt: skip
            axes.plot(months, costs.cumulative_low, color=swatch.colour, linestyle="--",
                      label=f"{name} (low)", gid=gid(swatch, f"low-p{panel}"))  # fmt: skip
        axes.plot(months, costs.cumulative_high, color=swatch.colour,
                  label=f"{name} (high)", gid=gid(swatch, f"high-p{panel}"))  # fmt: skip
    for found in apis:
        swatch = colours[found.name]
        axes.plot(months, found.cumulative, color=swatch.colour, linestyle=":", linewidth=2,
                  label=f"{found.name} (API)", gid=gid(swatch, f"api-p{panel}"))  # fmt: skip
    title = "Rentals (nothing to buy)"
    if buy is not None:
        name = buy.option.name
        lines = [_pays_back(report, name, r, k) for r, k in ((cloud, "cloud"), (api, "API")) if r]
        title = "\n".join(
            [name, *textwrap.wrap("break-even " + "; ".join(x for x in lines if x), 46)]
        )
        for pair in report.break_evens:
            if pair.office == name and pair.rent in (cloud, api):
                for month in {pair.month_vs_low, pair.month_vs_high} - {None}:
                    assert month is not None
                    axes.plot(month, buy.cumulative_low[month], marker="o", color="black")
    axes.set_title(title, fontsize=8, loc="left")
    axes.grid(alpha=0.3)
    money_axis(axes)
    axes.legend(fontsize=6.5, loc="upper left", framealpha=0.85)


def cumulative_cost_chart(report: Report) -> str:
    """Cumulative spend for the demand: one panel per purchase, each against the cheapest
    cloud rental (its low-high band) and the cheapest API; dots mark break-even months."""
    plt = pyplot()
    with plt.rc_context(RC):
        buys = [c for c in charted_options(report) if c.option.kind is OptionKind.OFFICE]
        panels: list[OptionCosts | None] = list(buys) or [None]
        ncols = 2 if len(panels) > 1 else 1
        nrows = math.ceil(len(panels) / ncols)
        figure, grid = plt.subplots(nrows, ncols, figsize=(7.5, 0.8 + 2.6 * nrows),
                                    squeeze=False, sharex=True, layout="constrained")  # fmt: skip
        cells = [axes for row in grid for axes in row]
        for panel, (axes, buy) in enumerate(zip(cells, panels, strict=False)):
            _cumulative_panel(axes, report, buy, panel)
        for axes in cells[len(panels) :]:
            axes.remove()
        figure.supxlabel("month", fontsize=9)
        figure.supylabel("cumulative cost (USD)", fontsize=9)
        figure.suptitle("Cumulative cost of the demand; dots: break-even months", fontsize=10)
        return to_svg(figure, "c1-")


def _bar_rows(report: Report) -> list[tuple[str, float, float, bool]]:
    """(name, low, high, estimated) per bar, cheapest for the demand first."""
    rows = [
        (c.option.name, c.demand_usd_per_mtok_low or 0.0, c.demand_usd_per_mtok_high or 0.0,
         c.option.throughput.provenance not in _SOLID)
        for c in charted_options(report)
    ]  # fmt: skip
    rows += [(a.name, a.usd_per_mtok, a.usd_per_mtok, False) for a in charted_apis(report)]
    return sorted(rows, key=lambda row: (row[2], row[0]))


def cost_per_mtok_chart(report: Report) -> str:
    """$ per 1M tokens of the demand per option, labelled; the pale part is the price
    range, hatched bars rest on an estimated throughput."""
    plt = pyplot()
    with plt.rc_context(RC):
        rows, colours = _bar_rows(report), swatches(report)
        boxes = [high for name, _, high, _ in rows if name not in {a.name for a in report.apis}]
        limit = SCALE_FACTOR * max(boxes) if boxes else math.inf
        shown = max((high for _, _, high, _ in rows if high <= limit), default=1.0)
        figure, axes = plt.subplots(figsize=(7.5, 1.0 + 0.32 * max(1, len(rows))))
        for index, (name, low, high, estimated) in enumerate(rows):
            swatch = colours[name]
            if high > limit:
                axes.text(0, index, f"  left out for scale: {usd(high)} per 1M, off this axis",
                          va="center", fontsize=8, color="#555")  # fmt: skip
                continue
            style = {"hatch": "///", "facecolor": "white", "edgecolor": swatch.colour}
            solid = {"color": swatch.colour}
            bar = axes.barh(index, low, height=0.6, **(style if estimated else solid))
            bar.patches[0].set_gid(gid(swatch, "bar"))
            if high > low:
                span = axes.barh(index, high - low, left=low, height=0.6, color=swatch.colour,
                                 alpha=0.35)  # fmt: skip
                span.patches[0].set_gid(gid(swatch, "span"))
            label = usd_range(low, high) + (" [E]" if estimated else "")
            axes.text(high + shown * 0.01, index, label, va="center", fontsize=8)
        axes.set_yticks(range(len(rows)), [name for name, *_ in rows])
        axes.set_ylim(len(rows) - 0.5, -0.5)  # cheapest on top
        axes.set_xlim(0, shown * 1.3)  # room for the value labels
        money_axis(axes, "x")
        axes.set_xlabel(
            "USD per 1M tokens of the demand (pale: price range; hatched [E]: throughput "
            "estimated,\nsolid: measured or catalogued)"
        )
        axes.set_title("Cost per 1M tokens, every option delivering the same demand")
        axes.grid(axis="x", alpha=0.3)
        return to_svg(figure, "c2-")


def break_even_by_hours_chart(report: Report) -> str:
    """Break-even month of each purchase against the cheapest rental (cloud if any, else
    API) for 1-24 hours of use a day, at its high price (solid) and low (dashed); the y
    axis stops at the horizon, above it a "never" zone."""
    plt = pyplot()
    with plt.rc_context(RC):
        horizon, colours = report.scenario.horizon_months, swatches(report)
        cloud, api = cheapest_rentals(report)
        rent = cloud or api
        buys = [c.option.name for c in charted_options(report)
                if c.option.kind is OptionKind.OFFICE]  # fmt: skip
        never = horizon * 1.1
        figure, axes = plt.subplots(figsize=(7.5, 4.2))
        axes.axhspan(horizon, horizon * 1.2, color="#999", alpha=0.2, linewidth=0)
        axes.text(0.6, horizon * 1.15, f"never within {horizon} months", va="center",
                  fontsize=8, color="#444")  # fmt: skip
        for name in buys if rent else []:
            assert rent is not None
            swatch, sweep = colours[name], break_even_sweep(report, name, rent)

            def capped(months: tuple[int | None, ...]) -> list[float]:
                return [never if m is None or m > horizon else float(m) for m in months]

            high, low = capped(sweep.vs_high), capped(sweep.vs_low)
            axes.plot(sweep.hours, low, color=swatch.colour, linestyle="--",
                      gid=gid(swatch, "be-low"))  # fmt: skip
            axes.plot(sweep.hours, high, color=swatch.colour, marker=".", label=name,
                      gid=gid(swatch, "be-high"))  # fmt: skip
        axes.axvline(report.scenario.usage.hours_per_day, linestyle=":", color="gray")
        axes.set_ylim(0, horizon * 1.2)
        axes.set_yticks([t for t in axes.get_yticks() if t <= horizon])  # none in "never"
        axes.set_xlim(0.5, 24.5)
        axes.set_xlabel("hours of use per day (dotted: the scenario's)")
        axes.set_ylabel("break-even month")
        against = f"{rent} ({'cloud' if rent == cloud else 'API'})" if rent else "no rental"
        axes.set_title(
            f"Break-even against hours per day: each purchase vs {against}\n"
            "solid: at the rental's high price, dashed: at its low price",
            fontsize=9,
        )
        axes.grid(alpha=0.3)
        if buys and rent:
            axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        return to_svg(figure, "c3-")
