"""`llmbox report`, `catalog` and `fit` through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from llmbox.cli import main

COST_COMMANDS = ("report", "catalog", "fit")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_every_cost_command_and_option_has_help() -> None:
    context = click.Context(main)
    for name in COST_COMMANDS:
        command = main.get_command(context, name)
        assert command is not None, name
        assert command.help and len(command.help.strip()) > 20, f"{name} has no help text"
        for parameter in command.params:
            if isinstance(parameter, click.Option):
                assert parameter.help, f"{name} {parameter.opts} has no help text"
        code, output = _run(name, "--help")
        assert code == 0 and "Usage:" in output


def test_report_without_arguments_prints_the_seed_report() -> None:
    code, output = _run("report")
    assert code == 0
    assert "$83.20-187.20" in output  # rented RTX 4090, 8 h x 26 days
    # equal work (3 RTX 3060 PCs against one rented 4090), then the seed's own box for box
    assert re.search(
        r"pc-i9-13900k-rtx4060\s*│\s*rented-rtx-4090 \(cloud\)\s*│\s*never within 36 months"
        r"\s*│\s*month 35 \(34\.2\)\s*│\s*month 19\s*│\s*month 8",
        output,
    )
    assert re.search(
        r"pc-i7-13700k-rtx3060\s*│\s*rented-rtx-4090 \(cloud\)\s*│\s*never within 36 months"
        r"\s*│\s*month 20 \(19\.8\)\s*│\s*month 15\s*│\s*month 7",
        output,
    )
    assert output.index("Verdict") < output.index("Equal work") < output.index("Boxes: cost")
    assert "Where the numbers come from" in output
    assert "estimated (roofline 272 GB/s" in output


def test_markdown_json_csv_formats() -> None:
    code, markdown = _run("report", "--format", "md")
    assert code == 0
    markdown = re.sub(r" {2,}", " ", markdown)  # tables are padded to their columns
    assert (
        "| pc-i9-13900k-rtx4060 | rented-rtx-4090 (cloud) | never within 36 months | "
        "month 35 (34.2) | month 19 | month 8 |"
    ) in markdown
    assert markdown.index("## Verdict") < markdown.index("## Equal work")
    code, text = _run("report", "--format", "json")
    data = json.loads(text)
    assert next(iter(data)) == "schema_version" and list(data)[1] == "verdict"
    assert data["verdict"]["cheapest"] == "deepinfra-llama-3.1-8b-instruct"
    cloud = next(o for o in data["options"] if o["name"] == "rented-rtx-4090")
    assert (cloud["monthly_usd_low"], cloud["monthly_usd_high"]) == pytest.approx((83.2, 187.2))
    assert cloud["usd_per_hour_low"]["provenance"] == "catalog"
    code, text = _run("report", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["Option"] for r in rows][:3] == [
        "pc-i9-13900k-rtx4060", "pc-i7-13700k-rtx3060", "rented-rtx-4090",
    ]  # fmt: skip
    assert float(rows[2]["MonthlyUsdHigh"]) == pytest.approx(187.2)
    assert float(rows[1]["MonthlyUsdPerBoxLow"]) == pytest.approx(1105 / 36 + 6.6768, rel=1e-5)
    assert {r["Kind"] for r in rows[3:]} == {"api"}  # hosted APIs are options too


def test_html_is_self_contained_with_real_svg_charts(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, output = _run("report", "--out", str(out))  # format from the extension
    assert code == 0, output
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert html.index('class="verdict"') < html.index("<table")
    assert html.count("<svg") == 3  # cumulative cost, $/1M tokens, break-even vs hours
    # real drawings: matplotlib paths and the axis labels as text
    assert html.count("<path") > 20
    assert "cumulative cost (USD)" in html and "break-even month" in html
    assert "rented-rtx-4090 (high)" in html
    assert not re.search(r"(src|href)=\"https?://", html)  # nothing fetched from outside
    assert not list(tmp_path.glob(".report.html.*"))  # no temporary file left behind


def test_out_overwrites_atomically_and_keeps_mode(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    out.write_text("old")
    out.chmod(0o640)
    code, _ = _run("report", "--out", str(out))
    assert code == 0
    assert out.read_text().startswith("# Seed")
    assert out.stat().st_mode & 0o777 == 0o640


def test_catalog_lists_each_table_with_sources() -> None:
    code, output = _run("catalog", "cloud")
    assert code == 0
    assert "g6e.xlarge" in output and "rented-rtx-4090" in output and "skypilot" in output
    code, output = _run("catalog")
    assert code == 0 and "RTX 4060" in output and "1008" in output
    code, output = _run("catalog", "hardware", "--csv")
    rows = list(csv.DictReader(io.StringIO(output)))
    assert {r["Name"]: r["PriceUsd"] for r in rows}["pc-i9-13900k-rtx4060"] == "1428"
    code, output = _run("catalog", "nonsense")
    assert code == 2 and "'nonsense' is not one of" in output


def test_fit_prints_the_breakdown() -> None:
    code, output = _run("fit", "Llama 3 8B", "NVIDIA GeForce RTX 4060", "--context", "8192")
    assert code == 0
    assert "weights        4.57 GiB" in output
    assert "KV cache       1.00 GiB" in output  # 2x32x8x128x2 B x 8192 tokens
    assert "total          6.32 GiB of 8 GiB" in output
    assert output.strip().endswith("fits: 1.68 GiB spare")


def test_fit_reports_a_model_that_does_not_fit() -> None:
    _, output = _run("fit", "LLaMA 2 70B", "RTX 4090", "--quant", "q8_0")
    assert "does NOT fit" in output
    assert "Error" not in output  # a verdict, not an error message


def test_fit_exits_3_when_the_model_does_not_fit() -> None:
    # 70 B params at 8.5 bits per weight is about 69 GiB of weights alone: not in 24 GiB.
    code, _ = _run("fit", "LLaMA 2 70B", "RTX 4090", "--quant", "q8_0")
    assert code == 3


def test_fit_unknown_gpu_suggests_names() -> None:
    code, output = _run("fit", "Llama 3 8B", "RTX 4061")
    assert code == 1
    assert output.startswith("Error: unknown GPU 'RTX 4061'; did you mean 'RTX 4060'")
    assert "Traceback" not in output
