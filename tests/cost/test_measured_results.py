"""Bench result files turn catalogued or estimated figures into measured ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmbox.cost.cli import report
from llmbox.cost.report import build_report
from llmbox.cost.results import read_results
from llmbox.cost.scenario import load_scenario, parse_scenario

BenchWriter = Callable[..., Path]


def test_results_for_a_gpu_make_throughput_and_power_measured(write_bench: BenchWriter) -> None:
    path = write_bench(host="office-pc-1", gpu="NVIDIA GeForce RTX 4060", output_tok_s=40.0,
                       gpu_power_w_mean=100.0)  # fmt: skip
    built = build_report(load_scenario(), results=read_results(path.parent)[0])
    office = next(c for c in built.options if c.option.name == "pc-i9-13900k-rtx4060")
    assert office.option.throughput.value == 40.0
    assert office.option.throughput.provenance == "measured"
    assert path.name in office.option.throughput.detail
    # measured GPU draw + the catalog's idle whole-system figure
    assert office.option.load_power.value == pytest.approx(100.0 + 47.7)
    assert office.option.load_power.provenance == "measured"
    assert office.tokens_per_month == pytest.approx(40.0 * 3600 * 208)
    assert built.results_used == 2
    other = next(c for c in built.options if c.option.name == "pc-i7-13700k-rtx3060")
    assert other.option.throughput.provenance == "estimated"  # no result for an RTX 3060


def test_concurrency_closest_below_the_scenarios_is_used(write_bench: BenchWriter) -> None:
    write_bench(host="rig", gpu="NVIDIA GeForce RTX 4090", concurrency=1, output_tok_s=120.0)
    path = write_bench(host="rig", gpu="NVIDIA GeForce RTX 4090", concurrency=4, output_tok_s=400.0)
    built = build_report(load_scenario(), results=read_results(path.parent)[0])
    cloud = next(c for c in built.options if c.option.name == "rented-rtx-4090")
    assert cloud.option.throughput.value == 120.0  # the seed serves one request at a time


def test_other_model_or_quantization_is_not_used(write_bench: BenchWriter) -> None:
    path = write_bench(host="x", gpu="RTX 4090", model="SmolLM2-135M-Instruct", quantization="Q4_1")
    built = build_report(load_scenario(), results=read_results(path.parent)[0])
    assert all(c.option.throughput.provenance != "measured" for c in built.options)


def test_cli_results_dir_shows_measured_in_json(write_bench: BenchWriter, tmp_path: Path) -> None:
    path = write_bench(host="office-pc-1", gpu="NVIDIA GeForce RTX 3060", output_tok_s=55.5)
    result = CliRunner().invoke(report, ["--results", str(path.parent), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    option = next(o for o in data["options"] if o["name"] == "pc-i7-13700k-rtx3060")
    assert option["throughput_tok_s"] == {
        "value": 55.5,
        "provenance": "measured",
        "detail": f"{path.name}, output_tok_s at concurrency 1",
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (
            '{"schema_version": 3, "metadata": {}, "metrics": {}}',
            "schema_version 3 is not supported (this llmbox reads 1 and 2)",
        ),
        ('{"schema_version": 1, "metadata": {}, "metrics": {}}', "missing key metadata.'model'"),
    ],
)
def test_broken_result_file_is_named_in_one_error(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "bad__llama.cpp__m__c1.json").write_text(content)
    out = tmp_path / "report.md"
    result = CliRunner().invoke(report, ["--results", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 1
    assert "bad__llama.cpp__m__c1.json" in result.output and message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_zero_throughput_in_a_result_is_rejected(write_bench: BenchWriter) -> None:
    path = write_bench(host="x", gpu="RTX 4090", output_tok_s=0)
    result = CliRunner().invoke(report, ["--results", str(path.parent)])
    assert result.exit_code == 1
    assert "output_tok_s is 0, expected > 0" in result.output


def test_file_written_by_llmbox_bench_is_read_as_measured(
    tmp_path: Path, make_bench_result: Callable[..., dict[str, object]]
) -> None:
    """The other side of the contract: a CPU-only SmolLM2 run written by llmbox.bench,
    for a CPU-only box (a GPU option never takes a run that saw no GPU)."""
    from llmbox.bench.schema import BenchResult as BenchFile  # noqa: PLC0415
    from llmbox.bench.schema import write_result  # noqa: PLC0415

    data = make_bench_result(host="ci-box", gpu=None, model="SmolLM2-135M-Instruct",
                        quantization="Q4_1", output_tok_s=87.5)  # fmt: skip
    path = write_result(BenchFile.model_validate(data), tmp_path / "results")
    assert path.name == "ci-box__llama.cpp__smollm2-135m-instruct-q4_1__c1.json"
    scenario = parse_scenario(
        {
            "name": "CPU box",
            "model": {"name": "SmolLM2-135M-Instruct", "quantization": "Q4_1"},
            "electricity_usd_per_kwh": 0.2,
            "options": [
                {"name": "ci-box", "kind": "office", "ram_gb": 16, "price_usd": 800,
                 "host": "ci-box"},
                {"cloud": "g4dn.xlarge"},
            ],
        }
    )  # fmt: skip
    usable, empty = read_results(path.parent)
    assert empty == []
    built = build_report(scenario, results=usable)
    office, cloud = built.options
    assert office.option.throughput.value == 87.5
    assert office.option.throughput.provenance == "measured"
    assert office.option.load_power is not None
    assert office.option.load_power.provenance != "measured"  # no GPU power on a CPU host
    assert cloud.option.throughput.provenance == "estimated"  # no T4 figure for SmolLM2


def test_run_in_which_nothing_completed_is_ignored_and_named(write_bench: BenchWriter) -> None:
    path = write_bench(host="x", gpu="RTX 4060", output_tok_s=0, completed=0)
    result = CliRunner().invoke(report, ["--results", str(path.parent)])
    assert result.exit_code == 0
    assert f"no request completed: {path.name}" in result.stderr
    assert "estimated (roofline 272 GB/s" in result.stdout


def test_missing_results_folder_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(report, ["--results", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "results directory" in result.output and "nope" in result.output
