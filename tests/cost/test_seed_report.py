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


def _break_even(report: Report, office: str, rent: str = "rented-rtx-4090") -> BreakEven:
    return next(b for b in report.break_evens if b.office == office and b.rent == rent)


def _efficiency() -> float:
    # (tg tok/s, bandwidth GB/s, params B, bits/weight) of the 10 catalog throughput rows
    rows = [
        (130.58, 1008, 8.03, 4.89), (108.15, 716.8, 8.03, 4.89), (83.50, 504, 8.03, 4.89),
        (115.42, 936, 8.03, 4.89), (109.57, 760, 8.03, 4.89), (72.79, 448, 8.03, 4.89),
        (149.37, 1008, 6.74, 4.5), (118.01, 716.8, 6.74, 4.5), (136.24, 2039, 6.74, 4.5),
        (119.9, 716.8, 7.62, 4.89),
    ]  # fmt: skip
    return statistics.median(tg / (bw / (p * bpw / 8)) for tg, bw, p, bpw in rows)


MODEL_GB = 8.03 * 4.89 / 8
DEMAND = 130.58 * 3600 * LOADED_HOURS  # the seed states none: the rented 4090 busy 208 h


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
    assert office.running_monthly_low == pytest.approx(4 * electricity)  # 4 boxes: see below
    found = _break_even(seed, "pc-i9-13900k-rtx4060")
    # the seed's own comparison, one box against one rented 4090
    assert found.per_box_month_vs_high == math.ceil(1428 / (187.20 - electricity)) == 8
    assert found.per_box_month_vs_low == math.ceil(1428 / (83.20 - electricity)) == 19
    # equal work: the 4090's 97.8M tokens need ceil(130.58 / 37.2) = 4 of these PCs
    tok_s = 272 / MODEL_GB * _efficiency()
    assert office.boxes == math.ceil(130.58 / tok_s) == 4
    assert office.monthly_low == pytest.approx(4 * (1428 / 36 + electricity))  # total
    assert office.monthly_per_box_low == pytest.approx(1428 / 36 + electricity)
    assert found.fraction_vs_high == pytest.approx(4 * 1428 / (187.20 - 4 * electricity))
    assert found.month_vs_high == 35  # 34.2 months
    assert found.month_vs_low is None  # 90.8 months: past the 36-month horizon


def test_rtx3060_pc_uses_similar_system_power_and_breaks_even(seed: Report) -> None:
    office = _option(seed, "pc-i7-13700k-rtx3060")
    # 214 W measured at the wall on another PC with an RTX 3060: labelled as an estimate
    assert office.option.load_power.value == 214
    assert office.option.load_power.provenance == "estimated"
    assert "another PC with this GPU" in office.option.load_power.detail
    electricity = 214 * LOADED_HOURS / 1000 * KWH_PRICE  # 6.6768 $/month
    found = _break_even(seed, "pc-i7-13700k-rtx3060")
    assert found.per_box_month_vs_high == math.ceil(1105 / (187.20 - electricity)) == 7
    assert found.per_box_month_vs_low == math.ceil(1105 / (83.20 - electricity)) == 15
    # equal work: 3 PCs ($3,315) do what one rented 4090 does
    assert office.boxes == 3
    assert found.fraction_vs_high == pytest.approx(3315 / (187.20 - 3 * electricity))  # 19.83
    assert found.month_vs_high == 20
    assert found.fraction_vs_low == pytest.approx(3315 / (83.20 - 3 * electricity))  # 52.5
    assert found.month_vs_low is None


def test_unmeasured_gpus_get_a_labelled_roofline_estimate(seed: Report) -> None:
    efficiency = _efficiency()
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


def test_current_api_prices_include_prompt_tokens_and_price_the_demand(seed: Report) -> None:
    deepinfra = next(a for a in seed.apis if a.name == "deepinfra-llama-3.1-8b-instruct")
    assert deepinfra.usd_per_mtok == pytest.approx(0.055 + 0.055 * 1.0)  # one prompt per output
    assert deepinfra.demand_monthly_usd == pytest.approx(0.11 * DEMAND / 1e6)  # $10.76
    gpt5 = next(a for a in seed.apis if a.name == "gpt-5")
    assert gpt5.usd_per_mtok == pytest.approx(10 + 1.25)
    assert seed.demand.tokens_per_month == pytest.approx(DEMAND)
    assert not seed.demand.stated and seed.demand.sized_by == "rented-rtx-4090"


def test_seed_ranking_and_verdict(seed: Report) -> None:
    assert [r.name for r in seed.ranking] == [
        "deepinfra-llama-3.1-8b-instruct",  # $10.76
        "together-llama-3.1-8b-instruct",  # (0.2 + 0.6) x 97.78 = $78.22
        "cloudflare-llama-3.1-8b-instruct",  # (0.28 + 0.83) x 97.78 = $108.53
        "pc-i7-13700k-rtx3060",  # 3 x (1105 / 36 + 6.6768) = $112.11
        "pc-i9-13900k-rtx4060",  # 4 x (1428 / 36 + 5.07624) = $178.97
        "rented-rtx-4090",  # $83.20-187.20: ranked by its high price
        "gpt-5-mini",  # (0.25 + 2) x 97.78 = $220.00
        "gpt-5",  # (1.25 + 10) x 97.78 = $1,100.01
    ]
    verdict = seed.verdict
    assert verdict is not None and verdict.winner is not None
    assert verdict.winner.monthly_high == pytest.approx(0.11 * DEMAND / 1e6)
    assert (
        verdict.best_purchase is not None and verdict.best_purchase.name == "pc-i7-13700k-rtx3060"
    )
    assert verdict.payback is not None and verdict.payback.month_vs_high is None  # never vs API
    assert verdict.payback_cloud is not None and verdict.payback_cloud.month_vs_high == 20
    first = verdict.sentences[0]
    assert first.startswith("For 97.8M generated tokens a month")
    assert "deepinfra-llama-3.1-8b-instruct (api) at $10.76 a month ($0.110 per 1M tokens)" in first
    assert "$67.47 a month less than together-llama-3.1-8b-instruct" in first
    assert "month 20 (19.8 months) at its high price" in verdict.sentences[1]
    # behind it: 3060 PC tok/s and power estimated, price catalogued; APIs catalogued
    assert verdict.provenance_counts() == {"measured": 0, "scenario": 0, "catalog": 3,
                                           "estimated": 2}  # fmt: skip


def test_more_hours_per_day_never_delays_break_even_in_the_sweep(seed: Report) -> None:
    for found in seed.break_evens:
        months = [m if m is not None else math.inf for _, m in found.by_hours_per_day]
        assert months == sorted(months, reverse=True)
        if found.month_vs_high is not None:  # the sweep has no horizon
            assert dict(found.by_hours_per_day)[8] == found.month_vs_high
