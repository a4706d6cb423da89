"""Display strings shared by the text, Markdown and HTML renderers.

Every figure in a table carries a one-letter provenance mark (M measured, S scenario,
C catalog, E estimated); the "where the numbers come from" list spells each one out.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmbox.cost.provenance import Figure, Provenance
from llmbox.cost.report import BreakEven, OptionCosts, Report
from llmbox.cost.scenario import OptionKind

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
NOT_PRICED = "not priced"
# more pairs than this and the human-readable tables show one cloud option per office box
MAX_BREAK_EVEN_ROWS = 40
DASH = "-"


def usd(value: float) -> str:
    return f"${value:,.2f}"


def usd_range(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return NOT_PRICED
    if abs(high - low) < 0.005:
        return usd(low)
    return f"{usd(low)}-{high:,.2f}"


def marked(text: str, figure: Figure | None) -> str:
    return text if figure is None else f"{text} [{MARKS[figure.provenance]}]"


def month_text(month: int | None, horizon: int | None) -> str:
    if month is None:
        return f"never within {horizon} months" if horizon is not None else "never"
    return f"month {month}"


def tokens_text(tokens: float) -> str:
    return f"{tokens / 1e6:,.1f}M"


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
    same_tokens_on_api: str


_COLUMNS = (
    "Option",
    "Kind",
    "GPU",
    "Fits model (GiB need/VRAM)",
    "tok/s per box",
    "Price",
    "Monthly cost",
    "Tokens/mo per box",
    "$ per 1M tok",
    "Boxes",
)


def columns(report: Report) -> tuple[str, ...]:
    """Option table headings; the last names the first hosted API the scenario compares."""
    api = report.apis[0].name if report.apis else "a hosted API"
    return (*_COLUMNS, f"Same tokens on {api} $/mo")


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
    return OptionRow(
        name=option.name,
        kind=option.kind.value,
        gpu=f"{option.gpu_count}x {option.gpu.name}" if option.gpu_count > 1 else option.gpu.name,
        fits=fits,
        tok_s=marked(f"{option.throughput.value:,.1f}", option.throughput),
        price=price,
        monthly=usd_range(costs.monthly_low, costs.monthly_high),
        tokens=tokens_text(costs.tokens_per_month),
        per_mtok=per_mtok if fit.fits else f"{per_mtok} (model does not fit)",
        boxes=str(costs.boxes),
        same_tokens_on_api=usd(costs.api_same_tokens_usd[0][1])
        if costs.api_same_tokens_usd
        else DASH,
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
    if usage.demand_tokens_per_month is not None:
        lines.append(f"Demand: {tokens_text(usage.demand_tokens_per_month)} tokens/month")
    lines.append(f"Bench result figures used: {report.results_used}")
    return lines


def shown_break_evens(report: Report) -> tuple[list[BreakEven], str | None]:
    """The pairs a person can read: all of them, or past ``MAX_BREAK_EVEN_ROWS`` each office
    option against the cheapest cloud option only, with a note saying so."""
    if len(report.break_evens) <= MAX_BREAK_EVEN_ROWS:
        return list(report.break_evens), None
    clouds = [
        c for c in report.options
        if c.option.kind is OptionKind.CLOUD and c.priced and c.option.fit.fits
    ]  # fmt: skip
    cheapest = min(clouds, key=lambda c: c.monthly_high or 0.0).option.name
    shown = [b for b in report.break_evens if b.cloud == cheapest]
    note = (
        f"{len(shown)} of {len(report.break_evens)} pairs shown: each office option against "
        f"the cheapest cloud option ({cheapest}); every pair is in the JSON report."
    )
    return shown, note


def break_even_rows(report: Report) -> list[tuple[str, str, str, str]]:
    horizon = report.scenario.horizon_months
    rows = []
    for found in shown_break_evens(report)[0]:
        rows.append(
            (
                found.office,
                found.cloud,
                month_text(found.month_vs_low, horizon),
                month_text(found.month_vs_high, horizon),
            )
        )
    return rows


def provenance_lines(report: Report) -> list[str]:
    """Each option's figures, spelled out with their source or rule."""
    lines = []
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
                lines.append(f"{option.name}: {what} {figure.value:,.4g} {unit} - {figure.label}")
        lines.append(f"{option.name}: fit - KV cache {option.fit.kv_cache_method}")
    return lines
