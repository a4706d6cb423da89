"""Results as benchmark.yml brings them back (results/<host>/<run id>/ + llmbox-run.json):
each benchmarked host becomes a measured option priced from its manifest; the newest run
is used and named; mismatches and foreign files are notes, not crashes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llmbox.cost.cli import report
from llmbox.cost.identity import MANIFEST_NAME, IdentityError, check_identity
from llmbox.cost.results import read_results_tree

SCENARIO = """
name: measured hosts
usage: {hours_per_day: 8, days_per_month: 22}
model: {name: Llama 3 8B, quantization: Q4_K_M}
electricity_usd_per_kwh: 0.15
options:
  - cloud: g5.xlarge
"""


@pytest.fixture
def write_run(
    tmp_path: Path, make_bench_result: Callable[..., dict[str, Any]]
) -> Callable[..., Path]:
    """Write one benchmark.yml run of ``host`` as the role does (files + manifest)."""

    def write(
        host: str,
        run_id: str,
        hardware: dict[str, Any],
        *,
        gpu: str | None = None,
        tok_s: float = 50.0,
        created_at: str | None = None,
    ) -> Path:
        folder = tmp_path / "results" / host / run_id
        folder.mkdir(parents=True)
        name = f"{host}__llama.cpp__meta-llama-3-8b-instruct-q4_k_m__c1.json"
        data = make_bench_result(host=host, gpu=gpu, output_tok_s=tok_s)
        (folder / name).write_text(json.dumps(data))
        manifest = {
            "manifest_version": 1, "run_id": run_id, "host": host,
            "created_at": created_at or f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T00:00:00Z",
            "engine": "llama_cpp", "hardware": hardware, "gpu_seen": gpu,
            "result_files": [name], "bench_exit_code": 0,
        }  # fmt: skip
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
        return folder

    return write


def _report(tmp_path: Path) -> dict[str, Any]:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    args = [str(scenario), "--results", str(tmp_path / "results"), "--format", "json"]
    result = CliRunner().invoke(report, args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _option(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(o for o in data["options"] if o["name"] == name)
    return found


def test_each_host_becomes_an_option_priced_from_its_manifest(
    write_run: Callable[..., Path], tmp_path: Path
) -> None:
    write_run("ws-1", "20261101T000000Z", {"build": "pc-i7-13700k-rtx3060"},
              gpu="NVIDIA GeForce RTX 3060", tok_s=61.5)  # fmt: skip
    write_run("aws-1", "20261101T000000Z", {"cloud": "g6.xlarge", "spot": True},
              gpu="NVIDIA L4", tok_s=44.0)  # fmt: skip
    write_run("ws-2", "20261101T000000Z", {"name": "my box", "price_usd": 1234, "gpu": "RTX 4070"},
              gpu="NVIDIA GeForce RTX 4070", tok_s=70.0)  # fmt: skip
    data = _report(tmp_path)
    ws1 = _option(data, "ws-1")
    assert ws1["throughput_tok_s"]["provenance"] == "measured"
    assert ws1["throughput_tok_s"]["value"] == 61.5
    assert ws1["purchase_usd"]["value"] == 1105  # the catalog's price of that build
    aws = _option(data, "aws-1")
    assert aws["throughput_tok_s"]["value"] == 44.0
    assert aws["usd_per_hour_low"]["value"] == 0.388  # g6.xlarge spot, catalog
    mine = _option(data, "my box")
    assert mine["purchase_usd"]["value"] == 1234
    assert "llm_benchmark_hardware of ws-2" in mine["purchase_usd"]["detail"]
    assert _option(data, "g5.xlarge")["throughput_tok_s"]["provenance"] != "measured"


def test_the_newest_run_is_used_and_named(write_run: Callable[..., Path], tmp_path: Path) -> None:
    hardware = {"build": "pc-i7-13700k-rtx3060"}
    write_run("ws-1", "20261101T000000Z", hardware, gpu="RTX 3060", tok_s=40.0)
    write_run("ws-1", "20261115T000000Z", hardware, gpu="RTX 3060", tok_s=45.0)
    data = _report(tmp_path)
    assert _option(data, "ws-1")["throughput_tok_s"]["value"] == 45.0
    assert any(
        "ws-1: the newest of 2 runs is used (20261115T000000Z" in note for note in data["notes"]
    )


def test_a_cpu_only_run_is_never_measured_for_a_gpu_option(
    write_run: Callable[..., Path], tmp_path: Path
) -> None:
    write_run("ws-1", "20261101T000000Z", {"build": "pc-i7-13700k-rtx3060"}, gpu=None)
    data = _report(tmp_path)
    assert _option(data, "ws-1")["throughput_tok_s"]["provenance"] != "measured"
    assert any("ran with no GPU (gpu: null), the option has a RTX 3060" in n for n in data["notes"])


def test_a_run_on_another_gpu_is_never_measured(
    write_run: Callable[..., Path], tmp_path: Path
) -> None:
    write_run("ws-1", "20261101T000000Z", {"build": "pc-i7-13700k-rtx3060"},
              gpu="NVIDIA GeForce RTX 4090")  # fmt: skip
    data = _report(tmp_path)
    assert _option(data, "ws-1")["throughput_tok_s"]["provenance"] != "measured"
    assert any("ran on a NVIDIA GeForce RTX 4090" in note for note in data["notes"])


def test_a_cpu_only_box_is_priced_and_measured(
    write_run: Callable[..., Path], tmp_path: Path
) -> None:
    write_run("ws-cpu", "20261101T000000Z", {"price_usd": 600, "ram_gb": 64, "load_power_w": 90},
              gpu=None, tok_s=9.5)  # fmt: skip
    data = _report(tmp_path)
    option = _option(data, "ws-cpu")
    assert option["gpu"] == "none (CPU only)"
    assert option["throughput_tok_s"] == pytest.approx(
        {"value": 9.5, "provenance": "measured", "detail": option["throughput_tok_s"]["detail"]}
    )
    assert option["load_power_w"]["value"] == 90
    assert option["fit"]["vram_gib"] == 64  # a CPU box holds the model in system memory


def test_foreign_json_and_unmatched_results_are_notes(
    write_run: Callable[..., Path],
    tmp_path: Path,
    make_bench_result: Callable[..., dict[str, Any]],
) -> None:
    write_run("ws-1", "20261101T000000Z", {"build": "pc-i7-13700k-rtx3060"}, gpu="RTX 3060")
    (tmp_path / "results" / "package.json").write_text('{"name": "something else"}')
    loose = make_bench_result(host="lab-a100", gpu="NVIDIA A100-SXM4-80GB")
    (tmp_path / "results" / "lab__c1.json").write_text(json.dumps(loose))
    data = _report(tmp_path)
    notes = "\n".join(data["notes"])
    assert "package.json: not a bench result" in notes
    assert "lab__c1.json: host lab-a100 (NVIDIA A100-SXM4-80GB) matches no option" in notes
    assert _option(data, "ws-1")["throughput_tok_s"]["provenance"] == "measured"


def test_notes_appear_in_every_format(write_run: Callable[..., Path], tmp_path: Path) -> None:
    write_run("ws-1", "20261101T000000Z", {"build": "pc-i7-13700k-rtx3060"}, gpu=None)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    for fmt in ("table", "md", "html", "json", "csv"):
        args = [str(scenario), "--results", str(tmp_path / "results"), "--format", fmt]
        result = CliRunner().invoke(report, args)
        assert result.exit_code == 0, result.output
        # CSV stays one row per option: its notes go to stderr, as every format's do
        assert "ran with no GPU (gpu: null)" in result.stderr, fmt
        if fmt != "csv":
            assert "ran with no GPU (gpu: null)" in result.stdout, fmt


def test_a_manifest_naming_an_unknown_build_is_one_error(
    write_run: Callable[..., Path], tmp_path: Path
) -> None:
    write_run("ws-1", "20261101T000000Z", {"build": "pc-i7-13700k-rtx306"}, gpu="RTX 3060")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        report, [str(scenario), "--results", str(tmp_path / "results"), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "unknown hardware build 'pc-i7-13700k-rtx306'; did you mean" in result.output
    assert not out.exists()


def test_a_manifest_listing_a_missing_file_is_named(
    write_run: Callable[..., Path], tmp_path: Path
) -> None:
    folder = write_run("ws-1", "20261101T000000Z", {"build": "pc-i7-13700k-rtx3060"})
    next(folder.glob("*__c1.json")).unlink()
    with pytest.raises(ValueError, match=r"lists ws-1__llama\.cpp__.*, which is missing"):
        read_results_tree(tmp_path / "results")


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ({}, "give exactly one of build"),
        ({"build": "pc-i7-13700k-rtx3060", "price_usd": 9}, "got build, price_usd"),
        ({"cloud": "g5.xlarg"}, "did you mean 'g5.xlarge'"),
        ({"price_usd": 500, "gpu": "RTX 407"}, "RTX 407"),
        ({"build": "pc-i7-13700k-rtx3060", "spot": True}, "spot applies to a cloud instance"),
        ({"price_usd": 500, "colour": "red"}, "colour"),
    ],
)
def test_bad_identities_name_the_value(identity: dict[str, Any], message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        check_identity(identity, "ws-1: llm_benchmark_hardware")
