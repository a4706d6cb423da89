"""How long does `llmbox report` take for 100 options over 60 months?

Times the cost model (scenario validation, option resolution, costs, break-even table
with its 24-point hours/day sweep for every office x cloud pair) plus the text
renderers, as the median of several runs, and separately the HTML page with its three
SVG charts. Writes ``benchmarks/results/report_speed.json``. Target: well under 1 s
for the model and text report.

    python benchmarks/report_speed.py [--runs 7] [--out benchmarks/results/report_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmbox import __version__
from llmbox.cost.catalog import load_catalog
from llmbox.cost.render_data import render_csv, render_json
from llmbox.cost.render_text import render_markdown, render_table
from llmbox.cost.report import build_report
from llmbox.cost.scenario import parse_scenario

OPTIONS = 100
MONTHS = 60
TARGET_S = 1.0
GPUS = ["RTX 3060", "RTX 4060", "RTX 4070", "RTX 4080", "RTX 4090", "RTX 3090"]
INSTANCES = ["g4dn.xlarge", "g5.xlarge", "g6.xlarge", "g6e.xlarge", "rented-rtx-4090"]


def scenario_data() -> dict[str, Any]:
    """50 office boxes (inline, various GPUs and prices) and 50 cloud options."""
    options: list[dict[str, Any]] = []
    for index in range(OPTIONS // 2):
        options.append(
            {"name": f"office-{index}", "kind": "office", "gpu": GPUS[index % len(GPUS)],
             "price_usd": 900 + 40 * index}
        )  # fmt: skip
        instance = INSTANCES[index % len(INSTANCES)]
        spot = index % 2 == 1 and instance != "rented-rtx-4090"
        options.append({"cloud": instance, "spot": spot, "name": f"cloud-{index}-{instance}"})
    return {
        "name": "benchmark: 100 options x 60 months",
        "usage": {"hours_per_day": 8, "days_per_month": 26, "demand_tokens_per_month": 2e8,
                  "office_stays_on": True},
        "model": {"name": "Llama 3 8B", "quantization": "Q4_K_M"},
        "electricity_usd_per_kwh": 0.2,
        "amortisation_months": 36,
        "horizon_months": MONTHS,
        "options": options,
        "apis": ["deepinfra-llama-3.1-8b-instruct", "gpt-5-mini"],
    }  # fmt: skip


def time_runs(work: Callable[[], object], runs: int) -> list[float]:
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        durations.append(time.perf_counter() - start)
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs (median is reported)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "report_speed.json"
    )
    args = parser.parse_args()
    data = scenario_data()
    load_catalog()  # read the CSVs once, as the CLI process does before building

    def model_and_text() -> None:
        report = build_report(parse_scenario(data))
        for render in (render_table, render_markdown, render_json, render_csv):
            render(report)

    built = build_report(parse_scenario(data))
    pairs = len(built.break_evens)
    from llmbox.cost.render_html import render_html  # noqa: PLC0415 - imports matplotlib

    render_html(built)  # warm matplotlib's font cache outside the timing
    model_runs = time_runs(model_and_text, args.runs)
    build_runs = time_runs(lambda: build_report(parse_scenario(data)), args.runs)
    html_runs = time_runs(lambda: render_html(built), max(3, args.runs // 2))
    result = {
        "benchmark": "report_speed",
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "llmbox_version": __version__,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_1m_at_start": os.getloadavg()[0],  # other work shares the cores
        },
        "workload": {
            "options": len(data["options"]),
            "months": MONTHS,
            "break_even_pairs": pairs,
            "hours_per_day_sweep_points": 24,
        },
        "target_s": TARGET_S,
        "build_report_s": {"median": statistics.median(build_runs), "runs": build_runs},
        "build_and_render_text_md_json_csv_s": {
            "median": statistics.median(model_runs),
            "runs": model_runs,
        },
        "render_html_with_3_svg_charts_s": {
            "median": statistics.median(html_runs),
            "runs": html_runs,
        },
        "meets_target": statistics.median(model_runs) < TARGET_S,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
