"""The report as JSON (everything, with provenance) and CSV (one row per option)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from llmbox.cost.provenance import Figure
from llmbox.cost.report import OptionCosts, Report

REPORT_SCHEMA_VERSION = 1
CSV_HEADER = (
    "Option", "Kind", "Gpu", "GpuCount", "FitsModel", "NeededGiB", "VramGiB",
    "TokPerS", "TokPerSProvenance", "PurchaseUsd", "UsdPerHourLow", "UsdPerHourHigh",
    "PriceProvenance", "LoadPowerW", "PowerProvenance", "MonthlyUsdLow", "MonthlyUsdHigh",
    "TokensPerMonthPerBox", "UsdPerMTokLow", "UsdPerMTokHigh", "Boxes",
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
        },
        "throughput_tok_s": _figure(option.throughput),
        "purchase_usd": _figure(option.purchase),
        "load_power_w": _figure(option.load_power),
        "idle_power_w": _figure(option.idle_power),
        "usd_per_hour_low": _figure(option.hourly_low),
        "usd_per_hour_high": _figure(option.hourly_high),
        "boxes": costs.boxes,
        "upfront_usd": costs.upfront_usd,
        "running_monthly_usd_low": costs.running_monthly_low,
        "running_monthly_usd_high": costs.running_monthly_high,
        "monthly_usd_low": costs.monthly_low,
        "monthly_usd_high": costs.monthly_high,
        "tokens_per_month_per_box": costs.tokens_per_month,
        "usd_per_mtok_low": costs.usd_per_mtok_low,
        "usd_per_mtok_high": costs.usd_per_mtok_high,
        "hosted_api_usd_per_month_for_same_tokens": dict(costs.api_same_tokens_usd),
        "cumulative_usd_low": list(costs.cumulative_low),
        "cumulative_usd_high": list(costs.cumulative_high),
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "scenario": report.scenario.model_dump(mode="json"),
        "loaded_hours_per_month": report.loaded_hours,
        "idle_hours_per_month": report.idle_hours,
        "roofline_efficiency": {
            "factor": report.calibration.efficiency,
            "catalog_rows": report.calibration.rows,
        },
        "bench_figures_used": report.results_used,
        "options": [_option(costs) for costs in report.options],
        "break_evens": [
            {
                "office": b.office,
                "cloud": b.cloud,
                "month_vs_low_price": b.month_vs_low,
                "month_vs_high_price": b.month_vs_high,
                "month_vs_high_price_by_hours_per_day": {str(h): m for h, m in b.by_hours_per_day},
            }
            for b in report.break_evens
        ],
        "hosted_apis": [
            {
                "name": api.name,
                "usd_per_mtok": api.usd_per_mtok,
                "demand_monthly_usd": api.demand_monthly_usd,
                "source": api.source,
            }
            for api in report.apis
        ],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2) + "\n"


def _cell(value: float | Figure | None) -> str:
    if isinstance(value, Figure):
        value = value.value
    return "" if value is None else f"{value:.6g}"


def render_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for costs in report.options:
        option = costs.option
        price = option.hourly_low or option.purchase
        writer.writerow(
            [
                option.name, option.kind.value, option.gpu.name, option.gpu_count,
                "yes" if option.fit.fits else "no", f"{option.fit.total_gib:.3f}",
                f"{option.fit.vram_gib:g}", _cell(option.throughput),
                option.throughput.label, _cell(option.purchase),
                _cell(option.hourly_low),
                _cell(option.hourly_high),
                price.label if price else "not priced",
                _cell(option.load_power),
                option.load_power.label if option.load_power else "",
                _cell(costs.monthly_low), _cell(costs.monthly_high),
                _cell(costs.tokens_per_month), _cell(costs.usd_per_mtok_low),
                _cell(costs.usd_per_mtok_high), costs.boxes,
            ]
        )  # fmt: skip
    return buffer.getvalue()
