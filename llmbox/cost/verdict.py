"""The manager's answer: the cheapest way to get the demand's tokens, by how much, when the
best purchase pays back against the best rental, and what the answer rests on.

``decide`` reads a built report (the ranking, the break-even pairs and the sensitivity
rows) and writes the verdict as a few plain sentences plus the figures behind them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from llmbox.cost.money import tokens_text, usd, usd_range
from llmbox.cost.provenance import Figure, Provenance
from llmbox.cost.report import BreakEven, Ranked, Report
from llmbox.cost.scenario import OptionKind


@dataclass(frozen=True)
class Verdict:
    """The verdict. ``winner`` is ``None`` when no priced option can serve the model."""

    winner: Ranked | None
    runner_up: Ranked | None
    best_purchase: Ranked | None
    best_rental: Ranked | None
    payback: BreakEven | None  # best purchase against the best rental
    payback_cloud: BreakEven | None  # ... and against the best cloud, when that differs
    undercut_by: Ranked | None  # an option whose low price beats the winner's high price
    figures: tuple[tuple[str, str, Provenance, str], ...]  # (option, what, provenance, detail)
    sentences: tuple[str, ...]

    def provenance_counts(self) -> dict[str, int]:
        counts = Counter(p.value for _, _, p, _ in self.figures)
        return {p.value: counts.get(p.value, 0) for p in Provenance}


def _cost(ranked: Ranked) -> str:
    monthly = usd_range(ranked.monthly_low, ranked.monthly_high)
    per_mtok = usd_range(ranked.usd_per_mtok_low, ranked.usd_per_mtok_high)
    return f"{monthly} a month ({per_mtok} per 1M tokens)"


def _payback_text(found: BreakEven, buy: Ranked, horizon: int) -> str:
    def when(month: int | None, fraction: float | None) -> str:
        if month is None:
            return f"never within {horizon} months"
        return f"in month {month} ({fraction:.1f} months)"

    target = f"{found.rent} ({found.rent_kind.value})"
    if found.month_vs_high is None:
        return f"never pays back against {target} within {horizon} months"
    text = f"pays back against {target} {when(found.month_vs_high, found.fraction_vs_high)}"
    if found.rent_kind is OptionKind.API or found.month_vs_low == found.month_vs_high:
        return text
    return (
        f"{text} at its high price and {when(found.month_vs_low, found.fraction_vs_low)} at its low"
    )


def _figures(report: Report, names: set[str]) -> list[tuple[str, str, Provenance, str]]:
    found: list[tuple[str, str, Provenance, str]] = []
    for costs in report.options:
        option = costs.option
        if option.name not in names:
            continue
        pairs: list[tuple[str, Figure | None]] = [
            ("tokens/s", option.throughput), ("purchase", option.purchase),
            ("power", option.load_power), ("hourly price", option.hourly_high),
        ]  # fmt: skip
        found += [(option.name, what, f.provenance, f.detail) for what, f in pairs if f]
    for api in report.apis:
        if api.name in names:
            price = api.api.output_usd_per_mtok
            found.append((api.name, "per-token prices", price.provenance, price.detail))
    return found


def _sensitivity_text(report: Report, winner: str) -> str:
    moves = []
    for row in report.sensitivity:
        for value, before, after in row.flips:
            if winner not in (before, after) or after is None:
                continue
            side = "above" if before == winner else "below"
            shown = f"{value:.3g} {row.unit}" if not row.unit.startswith("x") else f"x{value:.2f}"
            moves.append(f"{row.name} {side} {shown} ({after if before == winner else before})")
    if not moves:
        return "It holds across every range the sensitivity table tests."
    return "It changes if " + "; or ".join(moves[:3]) + "."


def decide(report: Report) -> Verdict:
    ranking, horizon = list(report.ranking), report.scenario.horizon_months
    demand = report.demand
    winner = ranking[0] if ranking else None
    runner_up = ranking[1] if len(ranking) > 1 else None
    buys = [r for r in ranking if r.kind is OptionKind.OFFICE]
    rents = [r for r in ranking if r.kind is not OptionKind.OFFICE]
    clouds = [r for r in rents if r.kind is OptionKind.CLOUD]
    best_purchase = buys[0] if buys else None
    best_rental = rents[0] if rents else None
    pairs = {(b.office, b.rent): b for b in report.break_evens}
    payback = payback_cloud = None
    if best_purchase and best_rental:
        payback = pairs.get((best_purchase.name, best_rental.name))
        if clouds and clouds[0] is not best_rental:
            payback_cloud = pairs.get((best_purchase.name, clouds[0].name))
    undercut = None
    if winner is not None:
        undercut = next((r for r in ranking[1:] if r.monthly_low < winner.monthly_high), None)
    named = {r.name for r in (winner, runner_up, best_purchase, best_rental) if r}
    figures = _figures(report, named)
    sentences: list[str] = []
    if winner is None:
        sentences.append("No priced option can serve this model: nothing to compare.")
    else:
        basis = ""
        if not demand.stated:
            basis = f" (what one {demand.sized_by} generates busy {report.loaded_hours:g} h)"
        text = (
            f"For {tokens_text(demand.tokens_per_month)} generated tokens a month{basis}, the "
            f"cheapest way is {winner.name} ({winner.kind.value}) at {_cost(winner)}"
        )
        if runner_up is not None:
            lead = runner_up.monthly_high - winner.monthly_high
            text += f", {usd(lead)} a month less than {runner_up.name} ({_cost(runner_up)})"
        sentences.append(text + ".")
        if undercut is not None:
            sentences.append(
                f"At its low price {undercut.name} ({usd(undercut.monthly_low)} a month) "
                "would be cheaper."
            )
    if best_purchase is not None and payback is not None:
        text = f"The best purchase, {best_purchase.name} ({best_purchase.how}, "
        text += f"{usd(best_purchase.upfront_usd)}), "
        text += _payback_text(payback, best_purchase, horizon)
        if payback_cloud is not None:
            text += "; it " + _payback_text(payback_cloud, best_purchase, horizon)
        sentences.append(text + ".")
    if winner is not None:
        sentences.append(_sensitivity_text(report, winner.name))
    missed = [c.option.name for c in report.options
              if c.option.missed_service_level and c.option.name in named]  # fmt: skip
    if missed:
        whose = "its" if len(missed) == 1 else "their"
        sentences.append(
            f"{' and '.join(missed)} never met the service level in {whose} measured runs: "
            "the throughput used is not a capacity at that level (see the notes)."
        )
    counts = Counter(p.value for _, _, p, _ in figures)
    sentences.append(
        "It rests on "
        + ", ".join(f"{counts.get(p.value, 0)} {p.value}" for p in Provenance)
        + " figures (listed under 'Where the numbers come from')."
    )
    return Verdict(winner, runner_up, best_purchase, best_rental, payback, payback_cloud,
                   undercut, tuple(figures), tuple(sentences))  # fmt: skip
