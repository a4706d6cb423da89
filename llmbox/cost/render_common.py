"""Display strings shared by the text, Markdown and HTML renderers.

Every figure in a table carries a one-letter provenance mark (M measured, S scenario,
C catalog, E estimated); the "where the numbers come from" list spells each one out.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmbox.cost.money import tokens_text, usd
from llmbox.cost.money import usd_range as _usd_range
from llmbox.cost.provenance import Figure, Provenance
from llmbox.cost.report import BreakEven, OptionCosts, Report
from llmbox.cost.scenario import OptionKind

__all__ = ["tokens_text", "usd"]

MARKS = {
    Provenance.MEASURED: "M",
    Provenance.SCENARIO: "S",
    Provenance.CATALOG: "C",
    Provenance.ESTIMATED: "E",
}
LEGEND = (
    "M measured (bench results), S given in the scenario, C catalog (with source), "
    "E estimated (rule stated)"
)
NOTES_TITLE = "Notes on the bench results"
NOT_PRICED = "not priced"
# more pairs than this and the human-readable tables show one cloud option per office box
MAX_BREAK_EVEN_ROWS = 40
DASH = "-"


def usd_range(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return NOT_PRICED
    return _usd_range(low, high)


def marked(text: str, figure: Figure | None) -> str:
    return text if figure is None else f"{text} [{MARKS[figure.provenance]}]"


def month_text(month: int | None, horizon: int | None, fraction: float | None = None) -> str:
    if month is None:
        return f"never within {horizon} months" if horizon is not None else "never"
    return f"month {month}" if fraction is None else f"month {month} ({fraction:.1f})"


@dataclass(frozen=True)
class OptionRow:
    """One option as display strings, in table column order."""

    name: str
    kind: str
    gpu: str
    fits: str
    tok_s: str
    price: str
    monthly: str
    tokens: str
    per_mtok: str
    boxes: str
    total: str


_COLUMNS = (
    "Option",
    "Kind",
    "GPU",
    "Fits model (GiB need/VRAM)",
    "tok/s per box",
    "Price per box",
    "Monthly per box",
    "Tokens/mo per box",
    "$ per 1M, box busy",
    "Boxes for the demand",
    "Monthly total for the demand",
)
RANKING_COLUMNS = (
    "#",
    "Option",
    "Kind",
    "How it meets the demand",
    "Up front (total)",
    "Monthly total for the demand",
    "$ per 1M of the demand",
    "More than the cheapest, $/month",
)
BREAK_EVEN_COLUMNS = (
    "Buy (office, boxes for the demand)",
    "vs rent or API (for the demand)",
    "Equal work: at its low price",
    "at its high price",
    "Box for box (1 vs 1): low",
    "high",
)
SENSITIVITY_COLUMNS = (
    "Input",
    "Scenario's value",
    "Range tested",
    "Cheapest at the low end",
    "at the high end",
    "Verdict flips at",
    "Winner's lead at low / high end, $/month",
)


def columns(report: Report) -> tuple[str, ...]:
    """Option table headings (per box, then the total for the demand)."""
    return _COLUMNS


def by_cost(report: Report) -> list[OptionCosts]:
    """The box options in the order of the equal-work ranking; unpriced or unfit last."""
    order = {r.name: index for index, r in enumerate(report.ranking)}
    last = len(order)
    return sorted(report.options, key=lambda c: order.get(c.option.name, last))


def option_row(costs: OptionCosts) -> OptionRow:
    option = costs.option
    fit = option.fit
    fits = f"{'yes' if fit.fits else 'NO'} ({fit.total_gib:.1f} / {fit.vram_gib:.0f})"
    if option.kind is OptionKind.CLOUD:
        assert option.hourly_low is not None and option.hourly_high is not None
        hourly = usd_range(option.hourly_low.value, option.hourly_high.value)
        price = marked(f"{hourly}/h {option.price_basis}", option.hourly_low)
    elif option.purchase is None:
        price = NOT_PRICED
    else:
        price = marked(usd(option.purchase.value), option.purchase)
    per_mtok = usd_range(costs.usd_per_mtok_low, costs.usd_per_mtok_high)
    tok_s = marked(f"{option.throughput.value:,.1f}", option.throughput)
    return OptionRow(
        name=option.name,
        kind=option.kind.value,
        gpu=f"{option.gpu_count}x {option.gpu.name}" if option.gpu_count > 1 else option.gpu.name,
        fits=fits,
        tok_s=f"{tok_s} ({option.load_label()})",
        price=price,
        monthly=usd_range(costs.monthly_per_box_low, costs.monthly_per_box_high),
        tokens=tokens_text(costs.tokens_per_month),
        per_mtok=per_mtok if fit.fits else f"{per_mtok} (model does not fit)",
        boxes=str(costs.boxes),
        total=usd_range(costs.monthly_low, costs.monthly_high),
    )


def summary_lines(report: Report) -> list[str]:
    """The headline facts, one per line."""
    scenario, usage = report.scenario, report.scenario.usage
    model = scenario.model
    lines = [
        f"Usage: {usage.hours_per_day:g} h/day x {usage.days_per_month:g} days/month = "
        f"{report.loaded_hours:g} loaded hours/month"
        + (
            f", {report.idle_hours:g} idle hours (office boxes stay on)"
            if report.idle_hours
            else ""
        ),
        f"Model: {model.name} {model.quantization.value}, context {model.context_tokens} x "
        f"{model.parallel_slots} slot(s); electricity {usd(scenario.electricity_usd_per_kwh)}/kWh; "
        f"purchases amortised over {scenario.amortisation_months} months",
    ]
    lines.append(
        f"Demand: {tokens_text(report.demand.tokens_per_month)} generated tokens/month, "
        f"{report.demand.basis}. Every option is priced for it."
    )
    lines.append(
        "Prompt tokens: hosted APIs bill "
        f"{usage.input_tokens_per_output_token:g} prompt token(s) per generated token "
        "(usage.input_tokens_per_output_token) on top of the generated ones; boxes are sized "
        "on generated tokens only (prompt processing is far faster than generation)."
    )
    lines.append(
        "Cloud instances are rented whole for the working schedule, not per request: users "
        "send requests throughout their hours, and an instance is billed while it is up."
    )
    lines.append(f"Bench result figures used: {report.results_used}")
    return lines


def verdict_lines(report: Report) -> list[str]:
    """The verdict's plain sentences (the block that opens every format)."""
    return list(report.verdict.sentences) if report.verdict else []


def ranking_rows(report: Report) -> list[tuple[str, ...]]:
    cheapest = report.ranking[0].monthly_high if report.ranking else 0.0
    return [
        (
            str(index), r.name, r.kind.value, r.how, usd(r.upfront_usd),
            usd_range(r.monthly_low, r.monthly_high),
            usd_range(r.usd_per_mtok_low, r.usd_per_mtok_high),
            DASH if index == 1 else usd(r.monthly_high - cheapest),
        )
        for index, r in enumerate(report.ranking, start=1)
    ]  # fmt: skip


def _value(value: float, unit: str) -> str:
    return f"x{value:.2f}" if unit.startswith("x") else f"{value:.3g} {unit}"


def sensitivity_rows(report: Report) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for row in report.sensitivity:
        flips = "; ".join(
            f"{_value(value, row.unit)}: {before} -> {after}" for value, before, after in row.flips
        )
        leads = " / ".join(
            DASH if lead is None else usd(lead) for lead in (row.lead_at_low_usd,
                                                              row.lead_at_high_usd)
        )  # fmt: skip
        rows.append((
            row.name, _value(row.base, row.unit),
            f"{_value(row.low, row.unit)} to {_value(row.high, row.unit)}",
            row.winner_at_low or DASH, row.winner_at_high or DASH,
            flips or "no flip in the range", leads,
        ))  # fmt: skip
    return rows


def shown_break_evens(report: Report) -> tuple[list[BreakEven], str | None]:
    """The pairs a person can read: all of them, or past ``MAX_BREAK_EVEN_ROWS`` each office
    option against the cheapest rental (cloud or API) only, with a note saying so."""
    if len(report.break_evens) <= MAX_BREAK_EVEN_ROWS:
        return list(report.break_evens), None
    rents = [r for r in report.ranking if r.kind is not OptionKind.OFFICE]
    cheapest = rents[0].name
    shown = [b for b in report.break_evens if b.rent == cheapest]
    note = (
        f"{len(shown)} of {len(report.break_evens)} pairs shown: each office option against "
        f"the cheapest rental ({cheapest}); every pair is in the JSON report."
    )
    return shown, note


def break_even_rows(report: Report) -> list[tuple[str, ...]]:
    horizon = report.scenario.horizon_months
    rows: list[tuple[str, ...]] = []
    for found in shown_break_evens(report)[0]:
        per_box = (DASH, DASH)
        if found.rent_kind is OptionKind.CLOUD:
            per_box = (
                month_text(found.per_box_month_vs_low, horizon),
                month_text(found.per_box_month_vs_high, horizon),
            )
        rows.append((
            found.office, f"{found.rent} ({found.rent_kind.value})",
            month_text(found.month_vs_low, horizon, found.fraction_vs_low),
            month_text(found.month_vs_high, horizon, found.fraction_vs_high),
            *per_box,
        ))  # fmt: skip
    return rows


def _provenance_items(report: Report) -> list[tuple[str, str]]:
    """(option, what and where from) for every figure of every option."""
    items = []
    for costs in report.options:
        option = costs.option
        figures = [
            ("throughput", option.throughput, "tok/s"),
            ("purchase", option.purchase, "USD"),
            ("power under load", option.load_power, "W"),
            ("idle power", option.idle_power, "W"),
            ("price low", option.hourly_low, "USD/h"),
            ("price high", option.hourly_high, "USD/h"),
        ]
        for what, figure, unit in figures:
            if figure is not None:
                items.append((option.name, f"{what} {figure.value:,.4g} {unit} - {figure.label}"))
        items.append((option.name, f"fit - KV cache {option.fit.kv_cache_method}"))
        split = option.fit.split_text()
        if split is not None:  # several GPUs: how the layers divide, and the verdict's numbers
            items.append((option.name, f"fit on {option.fit.gpu_count} GPUs - {split}"))
    for api in report.apis:
        prices = (
            f"{usd(api.api.input_usd_per_mtok.value)} / {usd(api.api.output_usd_per_mtok.value)}"
        )
        items.append((api.name, f"$ per 1M input / output tokens {prices} - {api.source}"))
    return items


def provenance_lines(report: Report) -> list[str]:
    """Each option's figures, spelled out with their source or rule."""
    return [f"{name}: {text}" for name, text in _provenance_items(report)]


def provenance_groups(report: Report) -> list[tuple[str, str]]:
    """The provenance list with a figure shared by several options (same value, same
    source) given once: (the options, comma-separated; what and where from)."""
    names: dict[str, list[str]] = {}
    for name, text in _provenance_items(report):
        names.setdefault(text, []).append(name)
    return [(", ".join(who), text) for text, who in names.items()]


def power_text(costs: OptionCosts) -> str:
    """Power under load per box with its provenance mark; a dash for a rental."""
    power = costs.option.load_power
    return DASH if power is None else marked(f"{power.value:,.0f} W", power)
