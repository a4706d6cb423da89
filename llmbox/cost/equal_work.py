"""Every way of getting the tokens, priced for the same delivered tokens (pure functions).

The report compares options for **equal work**: the scenario's demand (generated tokens a
month), or, without one, a demand the report states. Each way meets it differently:

- office boxes: as many whole boxes as the demand needs, bought up front, then
  electricity for every box;
- cloud instances: as many whole instances as the demand needs, rented for the scenario's
  working schedule (hours/day x days/month). Rented hours follow the schedule, not the
  demand, because users send requests throughout their working hours and an instance is
  billed while it is up, busy or not;
- a hosted API: billed per token for the demand, prompt tokens included
  (``input_tokens_per_output_token`` prompt tokens per generated token).

``Knobs`` holds every input the sensitivity analysis moves; a ``Way`` is an option reduced
to its numbers, so this module needs neither the catalog nor the scenario.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmbox.cost import model
from llmbox.cost.scenario import OptionKind


@dataclass(frozen=True)
class Knobs:
    """The usage and prices that cost a way; the factors scale catalogued figures."""

    hours_per_day: float
    days_per_month: float
    stays_on: bool
    electricity_usd_per_kwh: float
    amortisation_months: int
    input_per_output: float
    hardware_price: float = 1.0  # x every purchase price
    cloud_price: float = 1.0  # x every hourly price
    api_price: float = 1.0  # x every per-token price
    tok_s: float = 1.0  # x every box's tokens/s

    @property
    def loaded_hours(self) -> float:
        return model.loaded_hours_per_month(self.hours_per_day, self.days_per_month)

    @property
    def idle_hours(self) -> float:
        return model.idle_hours_per_month(self.loaded_hours, self.stays_on)


@dataclass(frozen=True)
class Way:
    """One way of getting the tokens, as numbers. Boxes have ``tok_s`` (per box, at the
    scenario's concurrency); an office box with ``purchase_usd=None`` is not priced."""

    name: str
    kind: OptionKind
    fits: bool = True
    tok_s: float = 0.0
    purchase_usd: float | None = None
    load_power_w: float = 0.0
    idle_power_w: float = 0.0
    usd_per_hour_low: float = 0.0
    usd_per_hour_high: float = 0.0
    input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0

    @property
    def is_box(self) -> bool:
        return self.kind is not OptionKind.API


@dataclass(frozen=True)
class Terms:
    """What a way costs a month to deliver the demand. ``units`` is boxes bought or
    instances rented (0 for an API); ``upfront`` is ``None`` for an unpriced box."""

    units: int
    tokens_per_unit: float
    upfront: float | None
    running_low: float
    running_high: float
    per_unit_running_low: float
    per_unit_running_high: float

    @property
    def priced(self) -> bool:
        return self.upfront is not None

    def monthly(self, amortisation_months: int, high: bool) -> float:
        """Monthly cost for the demand: purchase spread over the amortisation period
        plus running costs, at the low or high price."""
        running = self.running_high if high else self.running_low
        return model.office_monthly_usd(self.upfront or 0.0, amortisation_months, running)


def api_usd_per_mtok(way: Way, knobs: Knobs) -> float:
    """The API's price per 1M generated tokens with their prompt tokens."""
    per_mtok = model.api_usd_per_million_tokens(
        way.input_usd_per_mtok, way.output_usd_per_mtok, knobs.input_per_output
    )
    return per_mtok * knobs.api_price


def terms(way: Way, demand_tokens: float, knobs: Knobs) -> Terms:
    """The way's monthly terms for ``demand_tokens`` generated tokens a month."""
    if way.kind is OptionKind.API:
        bill = api_usd_per_mtok(way, knobs) * demand_tokens / 1e6
        return Terms(0, demand_tokens, 0.0, bill, bill, bill, bill)
    loaded = knobs.loaded_hours
    per_box = model.tokens_per_month(way.tok_s * knobs.tok_s, loaded)
    units = model.boxes_needed(demand_tokens, per_box)
    if way.kind is OptionKind.CLOUD:
        low = model.cloud_monthly_usd(way.usd_per_hour_low * knobs.cloud_price, loaded)
        high = model.cloud_monthly_usd(way.usd_per_hour_high * knobs.cloud_price, loaded)
        return Terms(units, per_box, 0.0, low * units, high * units, low, high)
    electricity = model.electricity_monthly_usd(
        way.load_power_w, way.idle_power_w, loaded, knobs.idle_hours,
        knobs.electricity_usd_per_kwh,
    )  # fmt: skip
    if way.purchase_usd is None:
        return Terms(units, per_box, None, 0.0, 0.0, electricity, electricity)
    upfront = way.purchase_usd * knobs.hardware_price * units
    return Terms(
        units, per_box, upfront, electricity * units, electricity * units, electricity, electricity
    )


def ranked(
    ways: list[Way], demand_tokens: float, knobs: Knobs
) -> list[tuple[float, float, Way, Terms]]:
    """Priced ways that can serve the model, cheapest first: (monthly at the high price,
    at the low price, way, terms). The high price ranks: a budget built on it holds."""
    found = []
    for way in ways:
        if not way.fits:
            continue
        found_terms = terms(way, demand_tokens, knobs)
        if not found_terms.priced:
            continue
        months = knobs.amortisation_months
        high = found_terms.monthly(months, high=True)
        found.append((high, found_terms.monthly(months, high=False), way, found_terms))
    found.sort(key=lambda item: (item[0], item[1], item[2].name))
    return found
