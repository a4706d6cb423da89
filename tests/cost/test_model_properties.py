"""Pure model functions: hand-computed cases and properties that must hold for any input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmbox.cost import model
from llmbox.cost.report import build_report
from llmbox.cost.scenario import parse_scenario

money = st.floats(min_value=0.01, max_value=10_000, allow_nan=False)
watts = st.floats(min_value=0, max_value=2_000, allow_nan=False)
hours = st.floats(min_value=0.5, max_value=24, allow_nan=False)


def test_break_even_hand_cases() -> None:
    assert model.break_even_month(1000, 0, 100, 36) == 10  # exactly even at month 10
    assert model.break_even_month(1000, 0, 99, 36) == 11
    assert model.break_even_month(1000, 100, 100, 36) is None  # running costs eat the saving
    assert model.break_even_month(1000, 0, 10, 36) is None  # month 100 is past the horizon
    assert model.break_even_month(1000, 0, 10, None) == 100
    assert model.break_even_month(0, 5, 10, 36) == 1  # nothing to pay back


def test_boxes_and_token_cost_hand_cases() -> None:
    assert model.boxes_needed(100e6, 40e6) == 3
    assert model.boxes_needed(80e6, 40e6) == 2
    assert model.boxes_needed(1, 40e6) == 1
    assert model.usd_per_million_tokens(50, 25e6) == 2.0
    with pytest.raises(ValueError, match="tokens per month must be > 0"):
        model.usd_per_million_tokens(50, 0)


def _break_even_at(
    hours_per_day: float, *, purchase: float, load_w: float, idle_w: float, rate: float,
    kwh: float, stays_on: bool,
) -> float:  # fmt: skip
    loaded = model.loaded_hours_per_month(hours_per_day, 26)
    idle = model.idle_hours_per_month(loaded, stays_on)
    running = model.electricity_monthly_usd(load_w, idle_w, loaded, idle, kwh)
    month = model.break_even_month(purchase, running, model.cloud_monthly_usd(rate, loaded), None)
    return math.inf if month is None else month


@given(
    short=hours, extra=st.floats(min_value=0, max_value=23.5), purchase=money, load_w=watts,
    idle_w=watts, rate=st.floats(min_value=0.01, max_value=10), kwh=st.floats(0, 1),
    stays_on=st.booleans(),
)  # fmt: skip
def test_more_hours_per_day_never_delays_office_break_even(
    *, short: float, extra: float, purchase: float, load_w: float, idle_w: float, rate: float,
    kwh: float, stays_on: bool,
) -> None:  # fmt: skip
    longer = min(24.0, short + extra)
    # an idle box draws no more than a busy one
    box = {"purchase": purchase, "load_w": load_w, "idle_w": min(idle_w, load_w), "rate": rate,
           "kwh": kwh, "stays_on": stays_on}  # fmt: skip
    before, after = _break_even_at(short, **box), _break_even_at(longer, **box)
    assert after <= before


@given(
    tok_s=st.floats(min_value=0.1, max_value=5_000),
    factor=st.floats(min_value=1, max_value=100),
    monthly=money,
    loaded=st.floats(min_value=1, max_value=744),
)
def test_more_tokens_per_second_never_raises_cost_per_million(
    tok_s: float, factor: float, monthly: float, loaded: float
) -> None:
    slow = model.usd_per_million_tokens(monthly, model.tokens_per_month(tok_s, loaded))
    fast = model.usd_per_million_tokens(monthly, model.tokens_per_month(tok_s * factor, loaded))
    assert fast <= slow * (1 + 1e-12)


def _report_for(tok_s: float, demand: float | None) -> list[float]:
    scenario = parse_scenario(
        {
            "name": "property",
            "usage": {"demand_tokens_per_month": demand},
            "model": {"name": "Llama 3 8B"},
            "electricity_usd_per_kwh": 0.2,
            "options": [
                {"hardware": "pc-i7-13700k-rtx3060", "tok_s": tok_s},
                {"cloud": "g6.xlarge", "tok_s": tok_s},
            ],
        }
    )
    return [c.usd_per_mtok_high or 0.0 for c in build_report(scenario).options]


@settings(max_examples=40, deadline=None)
@given(
    tok_s=st.floats(min_value=1, max_value=2_000),
    factor=st.floats(min_value=1, max_value=20),
    demand=st.one_of(st.none(), st.floats(min_value=1e5, max_value=1e10)),
)
def test_whole_report_more_tok_s_never_raises_cost_per_million(
    tok_s: float, factor: float, demand: float | None
) -> None:
    slow, fast = _report_for(tok_s, demand), _report_for(tok_s * factor, demand)
    for before, after in zip(slow, fast, strict=True):
        assert after <= before * (1 + 1e-9)


def _break_even_for(hours_per_day: float, stays_on: bool, price: float, rate: float) -> float:
    scenario = parse_scenario(
        {
            "name": "property",
            "usage": {"hours_per_day": hours_per_day, "office_stays_on": stays_on},
            "model": {"name": "Llama 3 8B"},
            "electricity_usd_per_kwh": 0.3,
            "horizon_months": 240,
            "options": [
                {"name": "box", "kind": "office", "gpu": "RTX 3060", "price_usd": price},
                {"name": "rent", "kind": "cloud", "gpu": "RTX 4090", "usd_per_hour": rate},
            ],
        }
    )
    (found,) = build_report(scenario).break_evens
    return math.inf if found.month_vs_high is None else found.month_vs_high


@settings(max_examples=40, deadline=None)
@given(
    short=st.floats(min_value=0.5, max_value=23),
    extra=st.floats(min_value=0.1, max_value=23.5),
    stays_on=st.booleans(),
    price=st.floats(min_value=100, max_value=5_000),
    rate=st.floats(min_value=0.05, max_value=3),
)
def test_whole_report_more_hours_never_delays_break_even(
    *, short: float, extra: float, stays_on: bool, price: float, rate: float
) -> None:
    longer = min(24.0, short + extra)
    before = _break_even_for(short, stays_on, price, rate)
    after = _break_even_for(longer, stays_on, price, rate)
    assert after <= before
