"""Assemble a report: every option's costs, the break-even table, API prices and curves.

``build_report`` is pure given its inputs (scenario, catalog, bench results); rendering
to text, Markdown, HTML, JSON and CSV lives in the ``render_*`` modules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from llmbox.cost import model
from llmbox.cost.catalog import Catalog, load_catalog
from llmbox.cost.options import Calibration, ResolvedOption, resolve_options
from llmbox.cost.results import BenchResult
from llmbox.cost.scenario import OptionKind, Scenario

HOURS_PER_DAY_SWEEP = tuple(range(1, 25))


@dataclass(frozen=True)
class OptionCosts:
    """One option's money and tokens. ``*_low``/``*_high`` span a price range (equal for
    office boxes); money fields are ``None`` for an office build with no catalogued price."""

    option: ResolvedOption
    boxes: int
    upfront_usd: float | None
    running_monthly_low: float | None
    running_monthly_high: float | None
    monthly_low: float | None
    monthly_high: float | None
    tokens_per_month: float
    usd_per_mtok_low: float | None
    usd_per_mtok_high: float | None
    cumulative_low: tuple[float, ...]
    cumulative_high: tuple[float, ...]
    # what the tokens these boxes generate would cost on each hosted API (name, USD/month)
    api_same_tokens_usd: tuple[tuple[str, float], ...] = ()

    @property
    def priced(self) -> bool:
        return self.monthly_low is not None


@dataclass(frozen=True)
class BreakEven:
    """When buying ``office`` pays off against renting ``cloud`` at its low/high price."""

    office: str
    cloud: str
    month_vs_low: int | None
    month_vs_high: int | None
    by_hours_per_day: tuple[tuple[int, int | None], ...]  # vs the high price, no horizon


@dataclass(frozen=True)
class ApiCost:
    """A hosted API's price per 1M generated tokens (prompt tokens included) and, when the
    scenario states a demand, its monthly bill for that demand."""

    name: str
    usd_per_mtok: float
    demand_monthly_usd: float | None
    source: str


@dataclass(frozen=True)
class Report:
    """Everything a renderer shows; ``results_used`` counts figures taken from bench files."""

    scenario: Scenario
    calibration: Calibration
    loaded_hours: float
    idle_hours: float
    options: tuple[OptionCosts, ...]
    break_evens: tuple[BreakEven, ...]
    apis: tuple[ApiCost, ...]
    results_used: int


@dataclass(frozen=True)
class _Terms:
    """What an option costs per month at one usage level (``None`` upfront: not priced)."""

    boxes: int
    tokens_per_box: float
    upfront: float | None
    running_low: float
    running_high: float


def _terms(option: ResolvedOption, scenario: Scenario, loaded: float, idle: float) -> _Terms:
    tokens = model.tokens_per_month(option.throughput.value, loaded)
    demand = scenario.usage.demand_tokens_per_month
    boxes = model.boxes_needed(demand, tokens) if demand is not None else 1
    if option.kind is OptionKind.CLOUD:
        assert option.hourly_low is not None and option.hourly_high is not None
        low = model.cloud_monthly_usd(option.hourly_low.value, loaded) * boxes
        high = model.cloud_monthly_usd(option.hourly_high.value, loaded) * boxes
        return _Terms(boxes, tokens, 0.0, low, high)
    if option.purchase is None:
        return _Terms(boxes, tokens, None, 0.0, 0.0)
    assert option.load_power is not None and option.idle_power is not None
    electricity = boxes * model.electricity_monthly_usd(
        option.load_power.value, option.idle_power.value, loaded, idle,
        scenario.electricity_usd_per_kwh,
    )  # fmt: skip
    return _Terms(boxes, tokens, option.purchase.value * boxes, electricity, electricity)


def _costs(option: ResolvedOption, scenario: Scenario, loaded: float, idle: float) -> OptionCosts:
    terms = _terms(option, scenario, loaded, idle)
    boxes, tokens, horizon = terms.boxes, terms.tokens_per_box, scenario.horizon_months
    if terms.upfront is None:
        return OptionCosts(option, boxes, None, None, None, None, None, tokens, None, None, (), ())
    if option.kind is OptionKind.CLOUD:
        low, high = terms.running_low, terms.running_high
        curve_low = model.cumulative_cloud_usd(low, horizon)
        curve_high = model.cumulative_cloud_usd(high, horizon)
    else:
        amortised = model.office_monthly_usd(
            terms.upfront, scenario.amortisation_months, terms.running_low
        )
        low = high = amortised
        curve_low = curve_high = model.cumulative_office_usd(
            terms.upfront, terms.running_low, horizon
        )
    return OptionCosts(
        option, boxes, terms.upfront, terms.running_low, terms.running_high, low, high, tokens,
        model.usd_per_million_tokens(low, tokens * boxes),
        model.usd_per_million_tokens(high, tokens * boxes),
        tuple(curve_low), tuple(curve_high),
    )  # fmt: skip


def _terms_by_hours(option: ResolvedOption, scenario: Scenario) -> list[_Terms]:
    """The option's monthly terms at 1..24 hours of use a day (for the sweep)."""
    usage = scenario.usage
    terms = []
    for hours in HOURS_PER_DAY_SWEEP:
        loaded = model.loaded_hours_per_month(hours, usage.days_per_month)
        idle = model.idle_hours_per_month(loaded, usage.office_stays_on)
        terms.append(_terms(option, scenario, loaded, idle))
    return terms


def _break_evens(costs: list[OptionCosts], scenario: Scenario) -> list[BreakEven]:
    usable = [c for c in costs if c.priced and c.option.fit.fits]
    offices = [c for c in usable if c.option.kind is OptionKind.OFFICE]
    clouds = [c for c in usable if c.option.kind is OptionKind.CLOUD]
    horizon = scenario.horizon_months
    # each option's terms per hours/day once, not once per pair
    sweeps = {id(c): _terms_by_hours(c.option, scenario) for c in usable}
    found = []
    for office in offices:
        assert office.upfront_usd is not None and office.running_monthly_low is not None
        upfront, running = office.upfront_usd, office.running_monthly_low
        for cloud in clouds:
            assert cloud.monthly_low is not None and cloud.monthly_high is not None
            by_hours = tuple(
                (
                    hours,
                    model.break_even_month(o.upfront or 0.0, o.running_low, c.running_high, None),
                )
                for hours, o, c in zip(
                    HOURS_PER_DAY_SWEEP, sweeps[id(office)], sweeps[id(cloud)], strict=True
                )
            )
            found.append(
                BreakEven(
                    office=office.option.name,
                    cloud=cloud.option.name,
                    month_vs_low=model.break_even_month(
                        upfront, running, cloud.monthly_low, horizon
                    ),
                    month_vs_high=model.break_even_month(
                        upfront, running, cloud.monthly_high, horizon
                    ),
                    by_hours_per_day=by_hours,
                )
            )
    return found


def build_report(
    scenario: Scenario,
    catalog: Catalog | None = None,
    results: list[BenchResult] | None = None,
) -> Report:
    """Compute the whole report; ``ValueError`` names a bad catalog name or figure."""
    catalog = catalog or load_catalog()
    resolved, calibration = resolve_options(scenario, catalog, results)
    usage = scenario.usage
    loaded = model.loaded_hours_per_month(usage.hours_per_day, usage.days_per_month)
    idle = model.idle_hours_per_month(loaded, usage.office_stays_on)
    costs = [_costs(option, scenario, loaded, idle) for option in resolved]
    apis = []
    for index, name in enumerate(scenario.apis):
        try:
            row = catalog.api(name)
        except ValueError as error:
            raise ValueError(f"apis[{index}]: {error}") from None
        per_mtok = model.api_usd_per_million_tokens(
            row.input_usd_per_1k_tokens, row.output_usd_per_1k_tokens,
            usage.input_tokens_per_output_token,
        )  # fmt: skip
        demand = usage.demand_tokens_per_month
        monthly = per_mtok * demand / 1e6 if demand is not None else None
        apis.append(ApiCost(row.name, per_mtok, monthly, f"{row.source}, {row.as_of}"))
    costs = [
        dataclasses.replace(
            c,
            api_same_tokens_usd=tuple(
                (api.name, api.usd_per_mtok * c.tokens_per_month * c.boxes / 1e6) for api in apis
            ),
        )
        for c in costs
    ]
    measured = sum(
        1
        for o in resolved
        for f in (o.throughput, o.load_power)
        if f and f.provenance == "measured"
    )
    return Report(
        scenario=scenario,
        calibration=calibration,
        loaded_hours=loaded,
        idle_hours=idle,
        options=tuple(costs),
        break_evens=tuple(_break_evens(costs, scenario)),
        apis=tuple(apis),
        results_used=measured,
    )
