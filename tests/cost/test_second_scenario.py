"""A second scenario with electricity, idle hours, spot prices, a demand and inline options,
checked against figures computed by hand."""

from __future__ import annotations

import math
import re

import pytest

from llmbox.cost.render_text import render_markdown
from llmbox.cost.report import build_report
from llmbox.cost.scenario import parse_scenario

SCENARIO = {
    "name": "office 4090 vs g5 spot",
    "usage": {
        "hours_per_day": 10,
        "days_per_month": 22,
        "office_stays_on": True,
        "demand_tokens_per_month": 50e6,
        "input_tokens_per_output_token": 2,
    },
    "model": {"name": "Llama 3 8B", "quantization": "Q4_K_M"},
    "electricity_usd_per_kwh": 0.30,
    "amortisation_months": 24,
    "horizon_months": 24,
    "options": [
        {"name": "office-4090", "kind": "office", "gpu": "RTX 4090", "price_usd": 2500,
         "load_power_w": 400, "idle_power_w": 60, "tok_s": 100},
        {"cloud": "g5.xlarge", "spot": True, "tok_s": 50},
    ],
    "apis": ["gpt-4-8k"],
}  # fmt: skip

LOADED = 10 * 22  # 220 h
IDLE = 24 * 30.4375 - LOADED  # 510.5 h: the box stays on the rest of an average month
ELECTRICITY = (400 * LOADED + 60 * IDLE) / 1000 * 0.30  # 35.589 $/month
OFFICE_TOKENS = 100 * 3600 * LOADED  # 79.2M per box: one box meets 50M
CLOUD_TOKENS = 50 * 3600 * LOADED  # 39.6M per box: two boxes needed
SPOT_LOW, SPOT_HIGH = 0.397 * LOADED * 2, 0.418 * LOADED * 2  # 174.68, 183.92


def test_office_with_idle_hours_electricity() -> None:
    report = build_report(parse_scenario(SCENARIO))
    office = report.options[0]
    assert report.idle_hours == pytest.approx(510.5)
    assert office.boxes == 1
    assert office.running_monthly_low == pytest.approx(ELECTRICITY) == pytest.approx(35.589)
    assert office.monthly_low == pytest.approx(2500 / 24 + ELECTRICITY)
    assert office.usd_per_mtok_low == pytest.approx((2500 / 24 + ELECTRICITY) / OFFICE_TOKENS * 1e6)
    assert office.option.throughput.provenance == "scenario"
    assert office.option.load_power.provenance == "scenario"


def test_spot_cloud_needs_two_boxes_for_the_demand() -> None:
    report = build_report(parse_scenario(SCENARIO))
    cloud = report.options[1]
    assert cloud.option.name == "g5.xlarge (spot)"
    assert cloud.option.price_basis == "spot"
    assert cloud.boxes == math.ceil(50e6 / CLOUD_TOKENS) == 2
    assert cloud.monthly_low == pytest.approx(SPOT_LOW) == pytest.approx(174.68)
    assert cloud.monthly_high == pytest.approx(SPOT_HIGH) == pytest.approx(183.92)
    # $/1M: two boxes' cost over two boxes' tokens
    assert cloud.usd_per_mtok_low == pytest.approx(SPOT_LOW / (2 * CLOUD_TOKENS) * 1e6)
    assert cloud.cumulative_high[12] == pytest.approx(12 * SPOT_HIGH)


def test_break_even_against_spot_range() -> None:
    report = build_report(parse_scenario(SCENARIO))
    found = next(b for b in report.break_evens if b.rent == "g5.xlarge (spot)")
    assert found.month_vs_low == math.ceil(2500 / (SPOT_LOW - ELECTRICITY)) == 18
    assert found.month_vs_high == math.ceil(2500 / (SPOT_HIGH - ELECTRICITY)) == 17
    assert found.fraction_vs_high == pytest.approx(2500 / (SPOT_HIGH - ELECTRICITY))  # 16.8
    # box for box (one box against one of the two instances the demand needs) tells another
    # story: month ceil(2500 / (91.96 - 35.589)) = 45, past the 24-month horizon
    assert math.ceil(2500 / (SPOT_HIGH / 2 - ELECTRICITY)) == 45
    assert found.per_box_month_vs_high is None
    assert dict(found.by_hours_per_day)[10] == 17
    office = report.options[0]
    assert office.cumulative_low[17] <= report.options[1].cumulative_high[17]
    assert office.cumulative_low[16] > report.options[1].cumulative_high[16]


def test_hosted_api_for_the_demand_counts_prompt_tokens() -> None:
    report = build_report(parse_scenario(SCENARIO))
    (api,) = report.apis
    per_mtok = (0.06 + 0.03 * 2) * 1000  # output + 2 prompt tokens per output token
    assert api.usd_per_mtok == pytest.approx(per_mtok) == pytest.approx(120)
    assert api.demand_monthly_usd == pytest.approx(per_mtok * 50) == pytest.approx(6000)


def test_break_even_never_within_horizon_when_renting_is_cheaper() -> None:
    cheap_rent = {**SCENARIO, "horizon_months": 12}
    report = build_report(parse_scenario(cheap_rent))
    found = next(b for b in report.break_evens if b.rent == "g5.xlarge (spot)")
    assert (found.month_vs_low, found.month_vs_high) == (None, None)  # 18 and 17 > 12


def test_unpriced_build_is_shown_but_not_costed() -> None:
    scenario = parse_scenario(
        {**SCENARIO, "options": [{"hardware": "pc-i9-13900k-rtx4080"}, {"cloud": "g5.xlarge"}]}
    )
    report = build_report(scenario)
    unpriced = report.options[0]
    assert not unpriced.priced
    assert unpriced.option.purchase is None
    assert (unpriced.monthly_low, unpriced.usd_per_mtok_high) == (None, None)
    assert report.break_evens == ()
    markdown = re.sub(r" {2,}", " ", render_markdown(report))  # tables are padded
    assert "| pc-i9-13900k-rtx4080 | office | RTX 4080 | yes (" in markdown
    assert "| not priced | not priced |" in markdown
