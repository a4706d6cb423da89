"""Options whose GPU cannot hold the scenario's model are flagged and kept out of break-even."""

from __future__ import annotations

import re

import pytest

from llmbox.cost.render_text import render_markdown
from llmbox.cost.report import build_report
from llmbox.cost.scenario import parse_scenario


def test_seventy_b_model_flags_small_gpus() -> None:
    scenario = parse_scenario(
        {
            "name": "70B",
            "model": {"name": "LLaMA 2 70B", "quantization": "Q4_K_M"},
            "electricity_usd_per_kwh": 0.2,
            "options": [
                {"hardware": "pc-i9-13900k-rtx4060"},
                {"name": "two-4090s", "kind": "office", "gpu": "RTX 4090", "gpu_count": 2,
                 "price_usd": 4000},
                {"cloud": "g6e.xlarge"},
                {"cloud": "g5.xlarge"},
            ],
        }
    )  # fmt: skip
    report = build_report(scenario)
    fits = {c.option.name: c.option.fit.fits for c in report.options}
    # 68.98e9 x 4.89 / 8 B = 39.3 GiB of weights: only 2 x 24 and 48 GiB hold it
    assert fits == {
        "pc-i9-13900k-rtx4060": False,
        "two-4090s": True,
        "g6e.xlarge": True,
        "g5.xlarge": False,
    }
    assert [(b.office, b.rent) for b in report.break_evens] == [("two-4090s", "g6e.xlarge")]
    markdown = re.sub(r" {2,}", " ", render_markdown(report))  # tables are padded
    assert "| pc-i9-13900k-rtx4060 | office | RTX 4060 | NO (" in markdown
    assert "(model does not fit)" in markdown
    assert "| two-4090s | office | 2x RTX 4090 | yes (" in markdown


def test_split_model_estimate_says_it_is_no_faster() -> None:
    scenario = parse_scenario(
        {
            "name": "split",
            "model": {"name": "LLaMA 2 70B", "quantization": "Q4_K_M"},
            "electricity_usd_per_kwh": 0.2,
            "options": [{"name": "two-4090s", "kind": "office", "gpu": "RTX 4090", "gpu_count": 2,
                         "price_usd": 4000}],
        }
    )  # fmt: skip
    (costs,) = build_report(scenario).options
    throughput = costs.option.throughput
    assert throughput.provenance == "estimated"
    assert "about one GPU's 1008 GB/s, not the sum (2016 GB/s)" in throughput.detail
    # two GPUs: idle system + 2 x 450 W TDP, not one 4090 PC's measured wall power
    assert costs.option.load_power is not None
    assert costs.option.load_power.value == pytest.approx(47.7 + 2 * 450)
    assert costs.option.load_power.provenance == "estimated"
    weights_gb = 68.98 * 4.89 / 8
    assert throughput.value < 1008 / weights_gb  # below one 4090's roofline
