"""The report's charts as inline SVG, drawn with matplotlib's Agg backend.

matplotlib is imported inside the functions so that ``llmbox report`` in table form and
``from llmbox.cost import estimate_cloud`` never pay for it.
"""

from __future__ import annotations

import io
from typing import Any

from llmbox.cost.report import Report
from llmbox.cost.scenario import OptionKind

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


def cumulative_cost_chart(report: Report) -> str:
    """Cumulative spend per option over the horizon, break-even months marked."""
    plt = _pyplot()
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(8, 4.5))
        months = list(range(report.scenario.horizon_months + 1))
        by_name = {}
        for costs in report.options:
            if not costs.priced:
                continue
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
        for found in report.break_evens:
            office = by_name[found.office]
            for month in (found.month_vs_low, found.month_vs_high):
                if month is not None:
                    axes.plot(month, office.cumulative_low[month], marker="o", color="black")
                    axes.annotate(f"m{month}", (month, office.cumulative_low[month]),
                                  textcoords="offset points", xytext=(4, -10))  # fmt: skip
        axes.set_xlabel("month")
        axes.set_ylabel("cumulative cost (USD)")
        axes.set_title("Cumulative cost; dots: break-even months (office vs cloud)")
        axes.grid(alpha=0.3)
        if by_name:
            axes.legend(fontsize=7, loc="upper left")
        return _to_svg(figure)


def cost_per_mtok_chart(report: Report) -> str:
    """$ per 1M tokens per option; a range bar where the price is a range."""
    plt = _pyplot()
    with plt.rc_context(_RC):
        priced = [c for c in report.options if c.priced]
        figure, axes = plt.subplots(figsize=(8, 0.6 + 0.35 * max(1, len(priced))))
        names = [c.option.name for c in priced]
        lows = [c.usd_per_mtok_low or 0.0 for c in priced]
        spans = [(c.usd_per_mtok_high or 0.0) - low for c, low in zip(priced, lows, strict=True)]
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
                axes.annotate(api.name, (api.usd_per_mtok, 0), rotation=90, fontsize=7)
        axes.invert_yaxis()
        axes.set_xlabel(
            "USD per 1M generated tokens (blue: office, orange: cloud; pale: price range)"
        )
        axes.set_title("Cost per 1M tokens")
        axes.grid(axis="x", alpha=0.3)
        return _to_svg(figure)


def break_even_by_hours_chart(report: Report) -> str:
    """Break-even month against the cloud's high price, for 1-24 hours of use a day."""
    plt = _pyplot()
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(8, 4))
        for found in report.break_evens:
            hours = [h for h, month in found.by_hours_per_day if month is not None]
            months = [month for _, month in found.by_hours_per_day if month is not None]
            axes.plot(hours, months, marker=".", label=f"{found.office} vs {found.cloud}")
        axes.axvline(report.scenario.usage.hours_per_day, linestyle=":", color="gray")
        if any(month for b in report.break_evens for _, month in b.by_hours_per_day):
            axes.set_yscale("log")
        axes.set_xlabel("hours of use per day (dotted: the scenario's)")
        axes.set_ylabel("break-even month (log scale)")
        axes.set_title("Break-even against hours per day (cloud at its high price)")
        axes.grid(alpha=0.3)
        if report.break_evens:
            axes.legend(fontsize=7)
        return _to_svg(figure)
