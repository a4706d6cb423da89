"""The cost model: pure functions of numbers, no I/O, no catalog.

Conventions: money in USD, power in watts, time in hours and months, tokens are
generated (output) tokens. A month of an always-on box has 24 x 30.4375 hours.
"""

from __future__ import annotations

import math

from llmbox.cost.cloud_estimate import AVERAGE_DAYS_PER_MONTH

HOURS_PER_AVERAGE_MONTH = 24 * AVERAGE_DAYS_PER_MONTH
# Float sums like 0.1 + 0.2 must not push a break-even to the next month.
_EPSILON = 1e-9


def loaded_hours_per_month(hours_per_day: float, days_per_month: float) -> float:
    """Hours per month the model is in use (and a cloud instance is rented)."""
    return hours_per_day * days_per_month


def idle_hours_per_month(loaded_hours: float, stays_on: bool) -> float:
    """Hours an office box idles: the rest of an average month if it stays on, else 0."""
    return max(0.0, HOURS_PER_AVERAGE_MONTH - loaded_hours) if stays_on else 0.0


def cloud_monthly_usd(usd_per_hour: float, loaded_hours: float) -> float:
    """A rented instance is paid only for the hours it is used."""
    return usd_per_hour * loaded_hours


def electricity_monthly_usd(
    load_power_w: float,
    idle_power_w: float,
    loaded_hours: float,
    idle_hours: float,
    usd_per_kwh: float,
) -> float:
    """Energy of the loaded and idle hours, at the scenario's electricity price."""
    kwh = (load_power_w * loaded_hours + idle_power_w * idle_hours) / 1000
    return kwh * usd_per_kwh


def office_monthly_usd(
    purchase_usd: float, amortisation_months: int, electricity_usd: float
) -> float:
    """Purchase spread evenly over the amortisation period, plus electricity."""
    return purchase_usd / amortisation_months + electricity_usd


def tokens_per_month(tok_s: float, loaded_hours: float) -> float:
    """Tokens a box generates if busy for every loaded hour."""
    return tok_s * 3600 * loaded_hours


def usd_per_million_tokens(monthly_usd: float, monthly_tokens: float) -> float:
    """Cost of one million generated tokens."""
    if monthly_tokens <= 0:
        raise ValueError(f"tokens per month must be > 0 to price a token, got {monthly_tokens}")
    return monthly_usd / monthly_tokens * 1e6


def boxes_needed(demand_tokens_per_month: float, tokens_per_box: float) -> int:
    """How many boxes deliver the demand (at least one)."""
    if tokens_per_box <= 0:
        raise ValueError(f"a box must deliver > 0 tokens per month, got {tokens_per_box}")
    return max(1, math.ceil(demand_tokens_per_month / tokens_per_box - _EPSILON))


def cumulative_office_usd(
    upfront_usd: float, running_monthly_usd: float, months: int
) -> list[float]:
    """Total spent by the end of month 0..months: purchase up front, then running costs."""
    return [upfront_usd + running_monthly_usd * month for month in range(months + 1)]


def cumulative_cloud_usd(monthly_usd: float, months: int) -> list[float]:
    """Total rent paid by the end of month 0..months."""
    return [monthly_usd * month for month in range(months + 1)]


def break_even_month(
    upfront_usd: float, office_running_usd: float, cloud_monthly_usd: float, horizon: int | None
) -> int | None:
    """First month (>= 1) whose cumulative office cost is <= cumulative cloud cost.

    ``None`` when it never happens (the cloud costs no more per month than running the
    office box) or not within ``horizon`` months (``None`` horizon: no limit).
    """
    saving = cloud_monthly_usd - office_running_usd
    if upfront_usd <= 0:
        month = 1 if saving >= 0 else None
    elif saving <= 0:
        month = None
    else:
        month = max(1, math.ceil(upfront_usd / saving - _EPSILON))
    if month is None or (horizon is not None and month > horizon):
        return None
    return month


def break_even_fraction(
    upfront_usd: float, office_running_usd: float, rent_monthly_usd: float
) -> float | None:
    """Months (fractional) until buying has cost no more than renting; ``None`` if never.

    Spend is treated as continuous over the month, so 7.4 means "during month 8" and the
    first whole month is ``ceil`` of it (``break_even_month``).
    """
    saving = rent_monthly_usd - office_running_usd
    if upfront_usd <= 0:
        return 0.0 if saving >= 0 else None
    if saving <= 0:
        return None
    return upfront_usd / saving


def api_usd_per_million_tokens(
    input_usd_per_mtok: float, output_usd_per_mtok: float, input_per_output: float
) -> float:
    """A hosted API's bill for one million generated tokens, with the prompt tokens billed
    alongside them (``input_per_output`` prompt tokens per generated token)."""
    return output_usd_per_mtok + input_usd_per_mtok * input_per_output
