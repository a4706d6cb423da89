"""The scenario example in the README's manager section is valid and builds a report."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from llmbox.cost.report import build_report
from llmbox.cost.scenario import parse_scenario

README = Path(__file__).parents[2] / "README.md"


def test_readme_scenario_example_builds() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("<!-- section:manager -->") : text.index("<!-- /section:manager -->")]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "the manager section shows a scenario"
    report = build_report(parse_scenario(yaml.safe_load(blocks[0]), "README"))
    names = [c.option.name for c in report.options]
    assert names == ["pc-i7-13700k-rtx3060", "g5.xlarge (spot)", "my-4090-box", "marketplace-4090"]
    apis = [a.name for a in report.apis]
    assert apis == ["in-house-gateway", "deepinfra-llama-3.1-8b-instruct", "gpt-5-mini"]
    # two office boxes x (two cloud options + three hosted APIs)
    assert len(report.break_evens) == 10
    assert report.verdict is not None and report.verdict.winner is not None
