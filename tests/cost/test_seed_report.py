"""The built-in seed scenario against figures worked out by hand from the reference data."""

from __future__ import annotations

import math
import statistics

import pytest

from llmbox.cost.report import BreakEven, OptionCosts, Report, build_report
from llmbox.cost.scenario import load_scenario

LOADED_HOURS = 8 * 26  # 208 h/month
KWH_PRICE = 0.15


@pytest.fixture(scope="module")
def seed() -> Report:
    return build_report(load_scenario())


def _option(report: Report, name: str) -> OptionCosts:
    return next(c for c in report.options if c.option.name == name)


def _break_even(report: Report, office: str) -> BreakEven:
    return next(b for b in report.break_evens if b.office == office)


def test_rented_4090_costs_83_20_to_187_20_a_month(seed: Report) -> None:
    cloud = _option(seed, "rented-rtx-4090")
    assert cloud.monthly_low == pytest.approx(0.40 * 208) == pytest.approx(83.20)
    assert cloud.monthly_high == pytest.approx(0.90 * 208) == pytest.approx(187.20)
    assert cloud.option.throughput.provenance == "catalog"
    tokens = 130.58 * 3600 * LOADED_HOURS  # catalog tg for RTX 4090, Llama 3 8B Q4_K_M
    assert cloud.tokens_per_month == pytest.approx(tokens)
    assert cloud.usd_per_mtok_low == pytest.approx(83.20 / tokens * 1e6)
    assert cloud.usd_per_mtok_high == pytest.approx(187.20 / tokens * 1e6)


def test_rtx4060_pc_costs_and_break_even(seed: Report) -> None:
    office = _option(seed, "pc-i9-13900k-rtx4060")
    # no measured power for this PC: 47.7 W idle system + 115 W RTX 4060 TDP
    assert office.option.load_power.value == pytest.approx(162.7)
    assert office.option.load_power.provenance == "estimated"
    electricity = 162.7 * LOADED_HOURS / 1000 * KWH_PRICE  # 5.07624 $/month
    assert office.running_monthly_low == pytest.approx(electricity)
    assert office.monthly_low == pytest.approx(1428 / 36 + electricity)
    found = _break_even(seed, "pc-i9-13900k-rtx4060")
    assert found.month_vs_high == math.ceil(1428 / (187.20 - electricity)) == 8
    assert found.month_vs_low == math.ceil(1428 / (83.20 - electricity)) == 19


def test_rtx3060_pc_uses_similar_system_power_and_breaks_even(seed: Report) -> None:
    office = _option(seed, "pc-i7-13700k-rtx3060")
    # 214 W measured at the wall on another PC with an RTX 3060: labelled as an estimate
    assert office.option.load_power.value == 214
    assert office.option.load_power.provenance == "estimated"
    assert "another PC with this GPU" in office.option.load_power.detail
    electricity = 214 * LOADED_HOURS / 1000 * KWH_PRICE  # 6.6768 $/month
    found = _break_even(seed, "pc-i7-13700k-rtx3060")
    assert found.month_vs_high == math.ceil(1105 / (187.20 - electricity)) == 7
    assert found.month_vs_low == math.ceil(1105 / (83.20 - electricity)) == 15


def test_unmeasured_gpus_get_a_labelled_roofline_estimate(seed: Report) -> None:
    # (tg tok/s, bandwidth GB/s, params B, bits/weight) of the 10 catalog throughput rows
    rows = [
        (130.58, 1008, 8.03, 4.89), (108.15, 716.8, 8.03, 4.89), (83.50, 504, 8.03, 4.89),
        (115.42, 936, 8.03, 4.89), (109.57, 760, 8.03, 4.89), (72.79, 448, 8.03, 4.89),
        (149.37, 1008, 6.74, 4.5), (118.01, 716.8, 6.74, 4.5), (136.24, 2039, 6.74, 4.5),
        (119.9, 716.8, 7.62, 4.89),
    ]  # fmt: skip
    efficiency = statistics.median(tg / (bw / (p * bpw / 8)) for tg, bw, p, bpw in rows)
    assert seed.calibration.efficiency == pytest.approx(efficiency)
    assert 0.59 < efficiency < 0.76
    model_gb = 8.03 * 4.89 / 8
    office = _option(seed, "pc-i9-13900k-rtx4060")
    assert office.option.throughput.value == pytest.approx(272 / model_gb * efficiency)
    assert office.option.throughput.provenance == "estimated"
    assert "roofline 272 GB/s" in office.option.throughput.detail
    assert "median of 10 catalog rows" in office.option.throughput.detail


def test_seed_model_fits_every_option(seed: Report) -> None:
    # 8.03e9 x 4.89 / 8 bytes of weights + 2x32x8x128x2 B x 4096 KV cache + 0.75 GiB
    needed = (8.03e9 * 4.89 / 8 + 2 * 32 * 8 * 128 * 2 * 4096) / 2**30 + 0.75
    for costs in seed.options:
        assert costs.option.fit.total_gib == pytest.approx(needed)
        assert costs.option.fit.fits


def test_api_prices_include_prompt_tokens(seed: Report) -> None:
    gpt35 = next(a for a in seed.apis if a.name == "gpt-3.5-turbo-4k")
    assert gpt35.usd_per_mtok == pytest.approx((0.002 + 0.0015 * 1.0) * 1000)  # $3.50
    assert gpt35.demand_monthly_usd is None  # the seed states no demand
    cloud = _option(seed, "rented-rtx-4090")
    same_tokens = dict(cloud.api_same_tokens_usd)
    assert same_tokens["gpt-3.5-turbo-4k"] == pytest.approx(3.5 * 130.58 * 3600 * 208 / 1e6)
    assert same_tokens["gpt-4-8k"] == pytest.approx(90 * 130.58 * 3600 * 208 / 1e6)


def test_more_hours_per_day_never_delays_break_even_in_the_sweep(seed: Report) -> None:
    for found in seed.break_evens:
        months = [m if m is not None else math.inf for _, m in found.by_hours_per_day]
        assert months == sorted(months, reverse=True)
        assert dict(found.by_hours_per_day)[8] == found.month_vs_high
