"""The report as JSON (everything, with provenance) and CSV (one row per option)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from llmbox.cost.provenance import Figure
from llmbox.cost.report import OptionCosts, Report
from llmbox.cost.scenario import OptionKind

# 2: verdict, demand, ranking (APIs as options), sensitivity, fractional break-even
# 3: "never" is null in every break-even field, and means never within horizon_months
#    (the hours-per-day sweep and the fractional months too, which were unbounded)
REPORT_SCHEMA_VERSION = 3
CSV_HEADER = (
    "Option", "Kind", "Gpu", "GpuCount", "FitsModel", "NeededGiB", "VramGiB",
    "TokPerS", "TokPerSProvenance", "PurchaseUsd", "UsdPerHourLow", "UsdPerHourHigh",
    "PriceProvenance", "LoadPowerW", "PowerProvenance", "MonthlyUsdLow", "MonthlyUsdHigh",
    "TokensPerMonthPerBox", "UsdPerMTokLow", "UsdPerMTokHigh", "Boxes",
    "Rank", "MonthlyUsdPerBoxLow", "MonthlyUsdPerBoxHigh",
)  # fmt: skip


def _figure(figure: Figure | None) -> dict[str, Any] | None:
    if figure is None:
        return None
    return {"value": figure.value, "provenance": figure.provenance.value, "detail": figure.detail}


def _option(costs: OptionCosts) -> dict[str, Any]:
    option, fit = costs.option, costs.option.fit
    return {
        "name": option.name,
        "kind": option.kind.value,
        "gpu": option.gpu.name,
        "gpu_count": option.gpu_count,
        "price_basis": option.price_basis,
        "fit": {
            "fits": fit.fits,
            "weights_gib": fit.weights_gib,
            "kv_cache_gib": fit.kv_cache_gib,
            "overhead_gib": fit.overhead_gib,
            "total_gib": fit.total_gib,
            "vram_gib": fit.vram_gib,
            "kv_cache_method": fit.kv_cache_method,
            "gpu_count": fit.gpu_count,
            # several GPUs: whole layers per GPU under llama.cpp's --split-mode layer
            "layers": fit.layers,
            "layers_per_gpu": fit.layers_per_gpu if fit.split else None,
            "split": fit.split_text(),
        },
        "throughput_tok_s": _figure(option.throughput),
        "purchase_usd": _figure(option.purchase),
        "load_power_w": _figure(option.load_power),
        "idle_power_w": _figure(option.idle_power),
        "usd_per_hour_low": _figure(option.hourly_low),
        "usd_per_hour_high": _figure(option.hourly_high),
        "throughput_streams": option.streams,
        # the bench host and the engine (with its version) its throughput was measured on
        "host": option.host,
        "engine": option.engine,
        "engine_version": option.engine_version,
        # the measured run's load when the throughput is capacity at the service level
        "throughput_at_service_level": option.at_service_level,
        "per_box": {
            "monthly_usd_low": costs.monthly_per_box_low,
            "monthly_usd_high": costs.monthly_per_box_high,
            "tokens_per_month": costs.tokens_per_month,
            "usd_per_mtok_low": costs.usd_per_mtok_low,
            "usd_per_mtok_high": costs.usd_per_mtok_high,
        },
        "boxes": costs.boxes,
        "upfront_usd": costs.upfront_usd,
        "running_monthly_usd_low": costs.running_monthly_low,
        "running_monthly_usd_high": costs.running_monthly_high,
        "monthly_usd_low": costs.monthly_low,
        "monthly_usd_high": costs.monthly_high,
        "tokens_per_month_per_box": costs.tokens_per_month,
        "usd_per_mtok_low": costs.usd_per_mtok_low,
        "usd_per_mtok_high": costs.usd_per_mtok_high,
        "demand_usd_per_mtok_low": costs.demand_usd_per_mtok_low,
        "demand_usd_per_mtok_high": costs.demand_usd_per_mtok_high,
        "cumulative_usd_low": list(costs.cumulative_low),
        "cumulative_usd_high": list(costs.cumulative_high),
    }


def _verdict(report: Report) -> dict[str, Any]:
    verdict = report.verdict
    if verdict is None:
        return {}

    horizon = report.scenario.horizon_months

    def name(ranked: Any) -> str | None:
        return None if ranked is None else str(ranked.name)

    return {
        "sentences": list(verdict.sentences),
        "cheapest": name(verdict.winner),
        "runner_up": name(verdict.runner_up),
        "best_purchase": name(verdict.best_purchase),
        "best_rental": name(verdict.best_rental),
        "cheaper_at_its_low_price": name(verdict.undercut_by),
        "payback": _pair(verdict.payback, horizon) if verdict.payback else None,
        "payback_against_best_cloud": _pair(verdict.payback_cloud, horizon)
        if verdict.payback_cloud
        else None,
        "figures": [
            {"option": option, "figure": what, "provenance": p.value, "detail": detail}
            for option, what, p, detail in verdict.figures
        ],
        "figures_by_provenance": verdict.provenance_counts(),
    }


def _within(month: float | None, horizon: int) -> float | None:
    """A break-even month, or ``None`` for never within the horizon: one meaning of
    null in every break-even field."""
    return month if month is not None and month <= horizon else None


def _pair(b: Any, horizon: int) -> dict[str, Any]:
    return {
        "office": b.office,
        "rent": b.rent,
        "rent_kind": b.rent_kind.value,
        "horizon_months": horizon,
        "month_vs_low_price": _within(b.month_vs_low, horizon),
        "month_vs_high_price": _within(b.month_vs_high, horizon),
        "fractional_month_vs_low_price": _within(b.fraction_vs_low, horizon),
        "fractional_month_vs_high_price": _within(b.fraction_vs_high, horizon),
        "per_box_month_vs_low_price": _within(b.per_box_month_vs_low, horizon),
        "per_box_month_vs_high_price": _within(b.per_box_month_vs_high, horizon),
        "month_vs_high_price_by_hours_per_day": {
            str(h): _within(m, horizon) for h, m in b.by_hours_per_day
        },
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "verdict": _verdict(report),
        "demand": {
            "tokens_per_month": report.demand.tokens_per_month,
            "stated_in_scenario": report.demand.stated,
            "basis": report.demand.basis,
            "sized_by": report.demand.sized_by,
        },
        "ranking": [
            {
                "name": r.name,
                "kind": r.kind.value,
                "how": r.how,
                "upfront_usd": r.upfront_usd,
                "monthly_usd_low": r.monthly_low,
                "monthly_usd_high": r.monthly_high,
                "usd_per_mtok_of_demand_low": r.usd_per_mtok_low,
                "usd_per_mtok_of_demand_high": r.usd_per_mtok_high,
            }
            for r in report.ranking
        ],
        "sensitivity": [
            {
                "input": row.name,
                "unit": row.unit,
                "scenario_value": row.base,
                "low": row.low,
                "high": row.high,
                "cheapest_at_low": row.winner_at_low,
                "cheapest_at_high": row.winner_at_high,
                "flips": [{"at": v, "from": a, "to": b} for v, a, b in row.flips],
                "tornado_lead_usd_per_month_at_low": row.lead_at_low_usd,
                "tornado_lead_usd_per_month_at_high": row.lead_at_high_usd,
            }
            for row in report.sensitivity
        ],
        "scenario": report.scenario.model_dump(mode="json"),
        "loaded_hours_per_month": report.loaded_hours,
        "idle_hours_per_month": report.idle_hours,
        "roofline_efficiency": {
            "factor": report.calibration.efficiency,
            "catalog_rows": report.calibration.rows,
        },
        "bench_figures_used": report.results_used,
        "notes": list(report.notes),
        "options": [_option(costs) for costs in report.options],
        "horizon_months": report.scenario.horizon_months,
        "break_evens": [_pair(b, report.scenario.horizon_months) for b in report.break_evens],
        "hosted_apis": [
            {
                "name": api.name,
                "input_usd_per_mtok": _figure(api.api.input_usd_per_mtok),
                "output_usd_per_mtok": _figure(api.api.output_usd_per_mtok),
                "usd_per_mtok": api.usd_per_mtok,
                "demand_monthly_usd": api.demand_monthly_usd,
                "source": api.source,
                "cumulative_usd": list(api.cumulative),
            }
            for api in report.apis
        ],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2) + "\n"


def _cell(value: float | Figure | None) -> str:
    """A number written in full, never in exponent form ("27874176", not "2.78742e+07"),
    to 12 significant figures (float noise such as 83.19999999999999 dropped)."""
    if isinstance(value, Figure):
        value = value.value
    if value is None:
        return ""
    text = format(Decimal(f"{value:.12g}"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _bool(value: bool) -> str:
    return "true" if value else "false"


def render_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    rank = {r.name: index for index, r in enumerate(report.ranking, start=1)}
    for costs in report.options:
        option = costs.option
        price = option.hourly_low or option.purchase
        writer.writerow(
            [
                option.name, option.kind.value, option.gpu.name, option.gpu_count,
                _bool(option.fit.fits), f"{option.fit.total_gib:.3f}",
                _cell(option.fit.vram_gib), _cell(option.throughput),
                option.throughput.label, _cell(option.purchase),
                _cell(option.hourly_low),
                _cell(option.hourly_high),
                price.label if price else "not priced",
                _cell(option.load_power),
                option.load_power.label if option.load_power else "",
                _cell(costs.monthly_low), _cell(costs.monthly_high),
                _cell(costs.tokens_per_month), _cell(costs.usd_per_mtok_low),
                _cell(costs.usd_per_mtok_high), costs.boxes, rank.get(option.name, ""),
                _cell(costs.monthly_per_box_low), _cell(costs.monthly_per_box_high),
            ]
        )  # fmt: skip
    for api in report.apis:  # a hosted API is an option too: priced per token
        row = [api.name, OptionKind.API.value] + [""] * (len(CSV_HEADER) - 3)
        row[CSV_HEADER.index("Rank")] = str(rank.get(api.name, ""))
        row[CSV_HEADER.index("MonthlyUsdLow")] = _cell(api.demand_monthly_usd)
        row[CSV_HEADER.index("MonthlyUsdHigh")] = _cell(api.demand_monthly_usd)
        row[CSV_HEADER.index("UsdPerMTokLow")] = _cell(api.usd_per_mtok)
        row[CSV_HEADER.index("UsdPerMTokHigh")] = _cell(api.usd_per_mtok)
        row[CSV_HEADER.index("PriceProvenance")] = api.source
        writer.writerow(row)
    return buffer.getvalue()
