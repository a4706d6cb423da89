"""Assemble a report: every option priced for the same delivered tokens, the ranking,
break-even (buy against rent or a hosted API), the verdict and its sensitivity.

``build_report`` is pure given its inputs (scenario, catalog, bench results); the money
rules are in ``equal_work`` and ``model``; rendering lives in the ``render_*`` modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from llmbox.cost import model
from llmbox.cost.apis import ResolvedApi, resolve_apis
from llmbox.cost.catalog import Catalog, load_catalog
from llmbox.cost.equal_work import Knobs, Terms, Way, api_usd_per_mtok, terms
from llmbox.cost.money import usd
from llmbox.cost.options import Calibration, ResolvedOption, resolve_options
from llmbox.cost.results import BenchResult
from llmbox.cost.scenario import OptionKind, Scenario

if TYPE_CHECKING:
    from llmbox.cost.sensitivity import SensitivityRow
    from llmbox.cost.verdict import Verdict

HOURS_PER_DAY_SWEEP = tuple(range(1, 25))


@dataclass(frozen=True)
class Demand:
    """The generated tokens a month every option is priced for, and where that comes from.
    ``sized_by`` names the box whose busy output states it when the scenario gives none."""

    tokens_per_month: float
    stated: bool
    basis: str
    sized_by: str | None = None


@dataclass(frozen=True)
class OptionCosts:
    """One box option. Per box: ``tokens_per_month``, ``monthly_per_box_*`` and
    ``usd_per_mtok_*`` (the box busy every loaded hour). Total for the demand, ``boxes``
    of them: ``upfront_usd``, ``running_monthly_*``, ``monthly_*``, the cumulative curves
    and ``demand_usd_per_mtok_*``. Money is ``None`` for an office build with no price."""

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
    monthly_per_box_low: float | None = None
    monthly_per_box_high: float | None = None
    demand_usd_per_mtok_low: float | None = None
    demand_usd_per_mtok_high: float | None = None

    @property
    def priced(self) -> bool:
        return self.monthly_low is not None


@dataclass(frozen=True)
class ApiCost:
    """A hosted API as an option: its price per 1M generated tokens (prompt tokens
    included) and its monthly bill for the demand."""

    api: ResolvedApi
    usd_per_mtok: float
    demand_monthly_usd: float
    cumulative: tuple[float, ...]

    @property
    def name(self) -> str:
        return self.api.name

    @property
    def source(self) -> str:
        return self.api.source


@dataclass(frozen=True)
class Ranked:
    """One way of getting the tokens in the equal-work comparison, cheapest first."""

    name: str
    kind: OptionKind
    how: str
    upfront_usd: float
    monthly_low: float
    monthly_high: float
    usd_per_mtok_low: float
    usd_per_mtok_high: float


@dataclass(frozen=True)
class BreakEven:
    """When buying ``office`` (boxes for the demand) pays off against ``rent`` (instances for
    the demand, or an API billed for it) at the rent's low/high price. ``per_box_*`` is
    one box against one instance, not equal work; ``None`` for an API."""

    office: str
    rent: str
    rent_kind: OptionKind
    month_vs_low: int | None
    month_vs_high: int | None
    fraction_vs_low: float | None
    fraction_vs_high: float | None
    by_hours_per_day: tuple[tuple[int, int | None], ...]  # vs the high price, no horizon
    per_box_month_vs_low: int | None = None
    per_box_month_vs_high: int | None = None


@dataclass(frozen=True)
class Report:
    """Everything a renderer shows; ``results_used`` counts figures taken from bench files.
    ``options`` are the boxes in scenario order; ``ranking`` every priced way that can
    serve the model (boxes and APIs), cheapest for the demand first."""

    scenario: Scenario
    calibration: Calibration
    loaded_hours: float
    idle_hours: float
    options: tuple[OptionCosts, ...]
    break_evens: tuple[BreakEven, ...]
    apis: tuple[ApiCost, ...]
    results_used: int
    demand: Demand
    knobs: Knobs
    ways: tuple[Way, ...]
    ranking: tuple[Ranked, ...] = ()
    verdict: Verdict | None = None
    sensitivity: tuple[SensitivityRow, ...] = ()
    # what the reader must know about the bench results (superseded runs, unmatched files)
    notes: tuple[str, ...] = ()


def knobs_for(scenario: Scenario) -> Knobs:
    usage = scenario.usage
    return Knobs(
        usage.hours_per_day, usage.days_per_month, usage.office_stays_on,
        scenario.electricity_usd_per_kwh, scenario.amortisation_months,
        usage.input_tokens_per_output_token,
    )  # fmt: skip


def way_of(option: ResolvedOption) -> Way:
    """A box option reduced to the numbers ``equal_work`` needs."""
    if option.kind is OptionKind.CLOUD:
        assert option.hourly_low is not None and option.hourly_high is not None
        return Way(option.name, option.kind, option.fit.fits, option.throughput.value,
                   usd_per_hour_low=option.hourly_low.value,
                   usd_per_hour_high=option.hourly_high.value)  # fmt: skip
    assert option.load_power is not None and option.idle_power is not None
    purchase = option.purchase.value if option.purchase is not None else None
    return Way(option.name, option.kind, option.fit.fits, option.throughput.value, purchase,
               option.load_power.value, option.idle_power.value)  # fmt: skip


def api_way(api: ResolvedApi) -> Way:
    return Way(api.name, OptionKind.API, input_usd_per_mtok=api.input_usd_per_mtok.value,
               output_usd_per_mtok=api.output_usd_per_mtok.value)  # fmt: skip


def state_demand(scenario: Scenario, boxes: list[Way], loaded_hours: float) -> Demand:
    """The scenario's demand, or what its fastest box delivers busy every loaded hour."""
    stated = scenario.usage.demand_tokens_per_month
    if stated is not None:
        return Demand(stated, True, "usage.demand_tokens_per_month in the scenario")
    candidates = [w for w in boxes if w.fits] or boxes
    if not candidates:
        raise ValueError(
            "usage.demand_tokens_per_month: the scenario has only hosted APIs, so no box can "
            "size a demand; state the tokens a month you need"
        )
    fastest = max(candidates, key=lambda w: w.tok_s)
    tokens = model.tokens_per_month(fastest.tok_s, loaded_hours)
    basis = (
        f"not stated in the scenario: what its fastest option, one {fastest.name} at "
        f"{fastest.tok_s:,.4g} tok/s, generates busy every loaded hour ({loaded_hours:g} h/month)"
    )
    return Demand(tokens, False, basis, fastest.name)


def demand_at(demand: Demand, knobs: Knobs, base: Knobs) -> float:
    """The demand at other knob settings: a stated demand stays; a demand the report
    stated from the fastest box's busy hours grows with the hours of use."""
    if demand.stated:
        return demand.tokens_per_month
    return demand.tokens_per_month * knobs.loaded_hours / base.loaded_hours


def _box_costs(option: ResolvedOption, found: Terms, demand: float, knobs: Knobs,
               horizon: int) -> OptionCosts:  # fmt: skip
    boxes, per_box = found.units, found.tokens_per_unit
    if not found.priced:
        return OptionCosts(option, boxes, None, None, None, None, None, per_box, None, None, (), ())
    months = knobs.amortisation_months
    low, high = found.monthly(months, high=False), found.monthly(months, high=True)
    upfront = found.upfront or 0.0
    per_box_low = model.office_monthly_usd(upfront / boxes, months, found.per_unit_running_low)
    per_box_high = model.office_monthly_usd(upfront / boxes, months, found.per_unit_running_high)
    return OptionCosts(
        option, boxes, upfront, found.running_low, found.running_high, low, high, per_box,
        model.usd_per_million_tokens(per_box_low, per_box),
        model.usd_per_million_tokens(per_box_high, per_box),
        tuple(model.cumulative_office_usd(upfront, found.running_low, horizon)),
        tuple(model.cumulative_office_usd(upfront, found.running_high, horizon)),
        per_box_low, per_box_high,
        model.usd_per_million_tokens(low, demand), model.usd_per_million_tokens(high, demand),
    )  # fmt: skip


def _how(costs: OptionCosts, knobs: Knobs) -> str:
    option, boxes = costs.option, costs.boxes
    if option.kind is OptionKind.OFFICE:
        return f"{boxes} box{'es' if boxes > 1 else ''} bought"
    instances = f"{boxes} instance{'s' if boxes > 1 else ''}"
    return f"{instances} x {knobs.loaded_hours:g} h/month rented (the working schedule)"


def _ranking(costs: list[OptionCosts], apis: list[ApiCost], knobs: Knobs,
             demand: float) -> list[Ranked]:  # fmt: skip
    found = [
        Ranked(c.option.name, c.option.kind, _how(c, knobs), c.upfront_usd or 0.0,
               c.monthly_low or 0.0, c.monthly_high or 0.0,
               c.demand_usd_per_mtok_low or 0.0, c.demand_usd_per_mtok_high or 0.0)
        for c in costs if c.priced and c.option.fit.fits
    ]  # fmt: skip
    for api in apis:
        how = f"per token ({usd(api.usd_per_mtok)}/1M generated, prompt included)"
        bill = api.demand_monthly_usd
        found.append(Ranked(api.name, OptionKind.API, how, 0.0, bill, bill,
                            api.usd_per_mtok, api.usd_per_mtok))  # fmt: skip
    return sorted(found, key=lambda r: (r.monthly_high, r.monthly_low, r.name))


def _sweep(ways: list[Way], demand: Demand, base: Knobs) -> dict[str, list[Terms]]:
    """Each way's terms at 1..24 hours of use a day (for the break-even sweep)."""
    sweep: dict[str, list[Terms]] = {w.name: [] for w in ways}
    for hours in HOURS_PER_DAY_SWEEP:
        knobs = replace(base, hours_per_day=hours)
        tokens = demand_at(demand, knobs, base)
        for way in ways:
            sweep[way.name].append(terms(way, tokens, knobs))
    return sweep


def _break_evens(costs: list[OptionCosts], apis: list[ApiCost], demand: Demand, knobs: Knobs,
                 horizon: int) -> list[BreakEven]:  # fmt: skip
    usable = [c for c in costs if c.priced and c.option.fit.fits]
    offices = [way_of(c.option) for c in usable if c.option.kind is OptionKind.OFFICE]
    rents = [way_of(c.option) for c in usable if c.option.kind is OptionKind.CLOUD]
    rents += [api_way(a.api) for a in apis]
    if not offices or not rents:
        return []
    sweep = _sweep(offices + rents, demand, knobs)
    base = {w.name: terms(w, demand.tokens_per_month, knobs) for w in offices + rents}
    months = knobs.amortisation_months
    found = []
    for office in offices:
        own = base[office.name]
        upfront, running = own.upfront or 0.0, own.running_low
        for rent in rents:
            theirs = base[rent.name]
            low, high = theirs.monthly(months, high=False), theirs.monthly(months, high=True)
            by_hours = tuple(
                (
                    hours,
                    model.break_even_month(o.upfront or 0.0, o.running_low, r.running_high, None),
                )
                for hours, o, r in zip(
                    HOURS_PER_DAY_SWEEP, sweep[office.name], sweep[rent.name], strict=True
                )
            )
            per_box: tuple[int | None, int | None] = (None, None)
            if rent.kind is OptionKind.CLOUD:  # the seed's own comparison: box against box
                price, mine = office.purchase_usd or 0.0, own.per_unit_running_low
                per_box = (
                    model.break_even_month(price, mine, theirs.per_unit_running_low, horizon),
                    model.break_even_month(price, mine, theirs.per_unit_running_high, horizon),
                )
            found.append(BreakEven(
                office.name, rent.name, rent.kind,
                model.break_even_month(upfront, running, low, horizon),
                model.break_even_month(upfront, running, high, horizon),
                model.break_even_fraction(upfront, running, low),
                model.break_even_fraction(upfront, running, high),
                by_hours, *per_box,
            ))  # fmt: skip
    return found


def build_report(
    scenario: Scenario,
    catalog: Catalog | None = None,
    results: list[BenchResult] | None = None,
    notes: Sequence[str] = (),
) -> Report:
    """Compute the whole report; ``ValueError`` names a bad catalog name or figure.
    ``notes`` about the bench results are shown in every format."""
    from llmbox.cost import sensitivity, verdict  # noqa: PLC0415 - they import this module

    catalog = catalog or load_catalog()
    resolved, calibration = resolve_options(scenario, catalog, results)
    resolved_apis = resolve_apis(scenario, catalog, {o.name for o in resolved})
    knobs, horizon = knobs_for(scenario), scenario.horizon_months
    box_ways = [way_of(o) for o in resolved]
    demand = state_demand(scenario, box_ways, knobs.loaded_hours)
    tokens = demand.tokens_per_month
    costs = [
        _box_costs(o, terms(w, tokens, knobs), tokens, knobs, horizon)
        for o, w in zip(resolved, box_ways, strict=True)
    ]
    apis = []
    for api in resolved_apis:
        way = api_way(api)
        bill = terms(way, tokens, knobs).running_high
        apis.append(ApiCost(api, api_usd_per_mtok(way, knobs), bill,
                            tuple(model.cumulative_cloud_usd(bill, horizon))))  # fmt: skip
    measured = sum(
        1
        for o in resolved
        for f in (o.throughput, o.load_power)
        if f and f.provenance == "measured"
    )
    report = Report(
        scenario=scenario, calibration=calibration, loaded_hours=knobs.loaded_hours,
        idle_hours=knobs.idle_hours, options=tuple(costs),
        break_evens=tuple(_break_evens(costs, apis, demand, knobs, horizon)),
        apis=tuple(apis), results_used=measured, demand=demand, knobs=knobs,
        ways=tuple(box_ways + [api_way(a) for a in resolved_apis]),
        ranking=tuple(_ranking(costs, apis, knobs, tokens)), notes=tuple(notes),
    )  # fmt: skip
    report = replace(report, sensitivity=tuple(sensitivity.analyse(report)))
    return replace(report, verdict=verdict.decide(report))
