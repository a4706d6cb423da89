"""The benchmark's 100-option scenario builds, and its readable views stay readable."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from llmbox.cost import charts
from llmbox.cost.render_common import MAX_BREAK_EVEN_ROWS, break_even_rows, shown_break_evens
from llmbox.cost.report import build_report
from llmbox.cost.scenario import parse_scenario

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "report_speed.py"


def _benchmark_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report_speed", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hundred_options_over_sixty_months() -> None:
    report = build_report(parse_scenario(_benchmark_module().scenario_data()))
    assert len(report.options) == 100
    assert all(len(c.cumulative_low) == 61 for c in report.options if c.priced)
    offices = sum(1 for c in report.options if c.option.kind == "office" and c.option.fit.fits)
    clouds = sum(1 for c in report.options if c.option.kind == "cloud" and c.option.fit.fits)
    apis = len(report.apis)
    assert len(report.break_evens) == offices * (clouds + apis) > MAX_BREAK_EVEN_ROWS
    shown, note = shown_break_evens(report)
    assert len(shown) == offices == len(break_even_rows(report))
    assert note is not None and f"of {offices * (clouds + apis)} pairs shown" in note
    assert len({b.rent for b in shown}) == 1  # the cheapest rental
    charted = charts.charted_options(report)
    assert len(charted) == charts.MAX_SERIES
    assert sum(c.option.kind == "cloud" for c in charted) == charts.MAX_CLOUD_SERIES
    assert 0 < len(charts.charted_pairs(report)) <= charts.MAX_SERIES
