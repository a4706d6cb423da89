"""The report's charts as inline SVG, drawn with matplotlib's Agg backend.

matplotlib is imported inside the functions so that ``llmbox report`` in table form and
``from llmbox.cost import estimate_cloud`` never pay for it.
"""

from __future__ import annotations

import io
from typing import Any

from llmbox.cost.report import ApiCost, BreakEven, OptionCosts, Report
from llmbox.cost.scenario import OptionKind

# more lines than this and a chart is unreadable: charts show the best ones
MAX_SERIES = 12
MAX_CLOUD_SERIES = 4
MAX_API_SERIES = 3
_RC = {
    "svg.fonttype": "none",  # keep text as text: smaller files, searchable labels
    "svg.hashsalt": "llmbox",  # stable element ids: the same report gives the same SVG
    "font.size": 9,
}


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - heavy import, only when charts are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _to_svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: inline in HTML


def charted_options(report: Report) -> list[OptionCosts]:
    """The priced options a chart can show legibly: all of them, or the cheapest per 1M
    tokens of each kind (up to ``MAX_CLOUD_SERIES`` cloud options, each drawn as a
    low-high band, and office boxes for the rest), so the break-even pairs stay visible.
    The tables list every option."""
    priced = [c for c in report.options if c.priced]
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


def charted_pairs(report: Report) -> list[BreakEven]:
    """Break-even pairs between charted options, earliest first, at most ``MAX_SERIES``."""
    names = {c.option.name for c in charted_options(report)} | {
        a.name for a in charted_apis(report)
    }
    pairs = [b for b in report.break_evens if b.office in names and b.rent in names]
    never = report.scenario.horizon_months + 1
    pairs.sort(key=lambda b: b.month_vs_high if b.month_vs_high is not None else never)
    return pairs[:MAX_SERIES]


def cumulative_cost_chart(report: Report) -> str:
    """Cumulative spend per option over the horizon, break-even months marked."""
    plt = _pyplot()
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(8, 4.5))
        months = list(range(report.scenario.horizon_months + 1))
        by_name = {}
        for costs in charted_options(report):
            name = costs.option.name
            by_name[name] = costs
            if (
                costs.option.kind is OptionKind.CLOUD
                and costs.cumulative_low != costs.cumulative_high
            ):
                axes.fill_between(months, costs.cumulative_low, costs.cumulative_high, alpha=0.2)
                axes.plot(months, costs.cumulative_high, label=f"{name} (high)")
                axes.plot(months, costs.cumulative_low, linestyle="--", label=f"{name} (low)")
            else:
                axes.plot(months, costs.cumulative_low, label=name)
        for api in charted_apis(report):
            axes.plot(months, api.cumulative, linestyle=":", label=f"{api.name} (API)")
        for found in charted_pairs(report):
            office = by_name[found.office]
            for month in (found.month_vs_low, found.month_vs_high):
                if month is not None:
                    axes.plot(month, office.cumulative_low[month], marker="o", color="black")
                    axes.annotate(f"m{month}", (month, office.cumulative_low[month]),
                                  textcoords="offset points", xytext=(4, -10))  # fmt: skip
        axes.set_xlabel("month")
        axes.set_ylabel("cumulative cost (USD)")
        axes.set_title("Cumulative cost of the demand; dots: break-even months")
        axes.grid(alpha=0.3)
        if by_name:
            axes.legend(fontsize=7, loc="upper left")
        return _to_svg(figure)


def cost_per_mtok_chart(report: Report) -> str:
    """$ per 1M tokens per option; a range bar where the price is a range."""
    plt = _pyplot()
    with plt.rc_context(_RC):
        priced = charted_options(report)
        figure, axes = plt.subplots(figsize=(8, 0.6 + 0.35 * max(1, len(priced))))
        names = [c.option.name for c in priced]
        lows = [c.demand_usd_per_mtok_low or 0.0 for c in priced]
        spans = [
            (c.demand_usd_per_mtok_high or 0.0) - low for c, low in zip(priced, lows, strict=True)
        ]
        colors = [
            "tab:blue" if c.option.kind is OptionKind.OFFICE else "tab:orange" for c in priced
        ]
        axes.barh(names, lows, color=colors)
        axes.barh(names, spans, left=lows, color=colors, alpha=0.4)
        for api in report.apis:
            if lows and api.usd_per_mtok <= 3 * max(
                low + span for low, span in zip(lows, spans, strict=True)
            ):
                axes.axvline(api.usd_per_mtok, linestyle=":", color="gray")
                top = ("data", "axes fraction")  # x at the price, y at the top of the plot
                axes.annotate(api.name, (api.usd_per_mtok, 0.98), xycoords=top,
                              rotation=90, fontsize=7, va="top", ha="right")  # fmt: skip
        axes.invert_yaxis()
        axes.set_xlabel(
            "USD per 1M tokens of the demand (blue: office, orange: cloud; pale: price range; "
            "dotted: hosted APIs)"
        )
        axes.set_title("Cost per 1M tokens, every option delivering the same demand")
        axes.grid(axis="x", alpha=0.3)
        return _to_svg(figure)


def break_even_by_hours_chart(report: Report) -> str:
    """Break-even month against the cloud's high price, for 1-24 hours of use a day."""
    plt = _pyplot()
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(8, 4))
        for found in charted_pairs(report):
            hours = [h for h, month in found.by_hours_per_day if month is not None]
            months = [month for _, month in found.by_hours_per_day if month is not None]
            axes.plot(hours, months, marker=".", label=f"{found.office} vs {found.rent}")
        axes.axvline(report.scenario.usage.hours_per_day, linestyle=":", color="gray")
        axes.set_ylim(bottom=0)
        axes.set_xlabel("hours of use per day (dotted: the scenario's)")
        axes.set_ylabel("break-even month")
        axes.set_title("Break-even against hours per day (for the demand; rent at its high price)")
        axes.grid(alpha=0.3)
        if charted_pairs(report):
            axes.legend(fontsize=7, loc="upper right")
        return _to_svg(figure)
