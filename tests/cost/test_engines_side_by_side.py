"""One host measured with llama.cpp and with vLLM: the report keeps both runs and shows
them side by side (engine named, each with its own measured tok/s and $ per 1M tokens)
in JSON, the terminal table, Markdown and the HTML page.

The result files are made with the bench's own schema (``llmbox.bench.schema``: the
pydantic models and ``write_result``, the file name included), so they cannot drift from
what ``llmbox bench`` writes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llmbox.bench import schema
from llmbox.cost.cli import report
from llmbox.cost.identity import MANIFEST_NAME, MANIFEST_VERSION
from llmbox.cost.money import usd_range
from llmbox.cost.results import read_results_tree
from llmbox.cost.scenario import parse_scenario

GPU = "NVIDIA GeForce RTX 4090"
HARDWARE = {"name": "ws-1", "price_usd": 2600, "gpu": "RTX 4090"}
SCENARIO: dict[str, Any] = {
    "name": "two engines on one box",
    "usage": {"hours_per_day": 8, "days_per_month": 22, "concurrency": 4},
    "model": {"name": "Llama 3 8B", "quantization": "Q4_K_M"},
    "electricity_usd_per_kwh": 0.15,
    "options": [{"cloud": "g5.xlarge"}],
}
ENGINES = {"llama_cpp": ("llama.cpp", "b6000-abc"), "vllm": ("vllm", "0.32.0")}


def contract_result(
    host: str, engine: str, version: str | None, tok_s: float, concurrency: int = 4
) -> schema.BenchResult:
    """A bench result as `llmbox bench` builds it, through the schema's own models."""
    settings = schema.Settings(
        url="http://127.0.0.1:8000", endpoint=schema.Endpoint.CHAT, concurrency=concurrency,
        requests=32, duration_s=None, prompt_tokens=128, output_tokens=128,
        prompt_tokens_method=schema.PromptTokensMethod.TOKENIZE,
        output_tokens_method=schema.OutputTokensMethod.USAGE, warmup_requests=2,
    )  # fmt: skip
    metadata = schema.Metadata(
        tool="llmbox", tool_version="0.1.0", created_at="2026-12-01T04:00:00Z", host=host,
        engine=schema.EngineInfo(name=engine, version=version),
        model=schema.ModelInfo(name="Meta-Llama-3-8B-Instruct", quantization="Q4_K_M",
                               sha256=None, file_bytes=None),
        gpu=schema.GpuInfo(name=GPU, count=1, driver="580.95", cuda="13.0",
                           memory_total_mib=24564),
        gpu_note=None, cpu=schema.CpuInfo(model="test cpu", logical_cores=16),
        settings=settings,
    )  # fmt: skip
    nothing = dict.fromkeys(
        f"{m}_ms_{s}" for m in ("ttft", "itl", "e2e") for s in ("mean", "p50", "p90", "p99")
    )
    metrics = schema.Metrics(
        completed=32, failed=0, duration_s=30.0, request_per_s=1.1, output_tok_s=tok_s,
        output_tok_s_per_stream_mean=tok_s / concurrency, gpu_power_w_mean=300.0,
        gpu_util_pct_mean=90.0, gpu_mem_used_mib_max=20000.0, gpu_energy_j=9000.0,
        tokens_per_joule=tok_s / 300.0, cpu_util_pct_mean=20.0, mem_used_mib_max=3000.0,
        **nothing,
    )  # fmt: skip
    return schema.BenchResult(metadata=metadata, metrics=metrics)


def write_run(root: Path, host: str, role_engine: str, run_id: str, tok_s: float) -> Path:
    """One `benchmark.yml` run of ``host``: the result file plus the run manifest."""
    folder = root / host / run_id
    engine, version = ENGINES[role_engine]
    path = schema.write_result(contract_result(host, engine, version, tok_s), folder)
    manifest = {
        "manifest_version": MANIFEST_VERSION, "run_id": run_id, "host": host,
        "created_at": f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T00:00:00Z",
        "engine": role_engine, "hardware": HARDWARE, "gpu_seen": GPU, "gpu_count_seen": 1,
        "result_files": [path.name], "bench_exit_code": 0,
    }  # fmt: skip
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def _report(tmp_path: Path, fmt: str, scenario: dict[str, Any] = SCENARIO) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(scenario))  # YAML reads JSON
    args = [str(path), "--results", str(tmp_path / "results"), "--format", fmt]
    result = CliRunner().invoke(report, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _options(tmp_path: Path, scenario: dict[str, Any] = SCENARIO) -> dict[str, dict[str, Any]]:
    data = json.loads(_report(tmp_path, "json", scenario))
    return {o["name"]: o for o in data["options"]}


@pytest.fixture
def two_engines(tmp_path: Path) -> Path:
    """ws-1 measured with llama.cpp, then two weeks later with vLLM."""
    root = tmp_path / "results"
    write_run(root, "ws-1", "llama_cpp", "20261115T000000Z", tok_s=120.0)
    write_run(root, "ws-1", "vllm", "20261130T000000Z", tok_s=300.0)
    return root


def test_the_newer_engine_run_does_not_hide_the_other(two_engines: Path) -> None:
    """Before, the newest run of a host was its only run: vLLM's replaced llama.cpp's."""
    tree = read_results_tree(two_engines)
    assert sorted((r.host, r.engine) for r in tree.host_runs) == [
        ("ws-1", "llama.cpp"), ("ws-1", "vllm")
    ]  # fmt: skip
    assert sorted((r.engine, r.engine_version, r.output_tok_s) for r in tree.results) == [
        ("llama.cpp", "b6000-abc", 120.0), ("vllm", "0.32.0", 300.0)
    ]  # fmt: skip
    assert not tree.notes


def test_each_engine_is_an_option_with_its_own_measured_figures(
    two_engines: Path, tmp_path: Path
) -> None:
    options = _options(tmp_path)
    assert "ws-1" not in options  # never one option mixing the two engines' runs
    llama, vllm = options["ws-1 (llama.cpp)"], options["ws-1 (vllm)"]
    for option, engine, version, tok_s in (
        (llama, "llama.cpp", "b6000-abc", 120.0), (vllm, "vllm", "0.32.0", 300.0)
    ):  # fmt: skip
        assert (option["host"], option["engine"], option["engine_version"]) == (
            "ws-1", engine, version
        )  # fmt: skip
        throughput = option["throughput_tok_s"]
        assert (throughput["value"], throughput["provenance"]) == (tok_s, "measured")
        assert f"ws-1__{engine}__" in throughput["detail"]  # the file it came from
        assert option["purchase_usd"]["value"] == 2600  # the same box, the same price
    # the same box at 2.5x the tokens: about 2.5x cheaper per token
    ratio = llama["usd_per_mtok_low"] / vllm["usd_per_mtok_low"]
    assert ratio == pytest.approx(2.5, rel=0.01)


def test_markdown_and_terminal_show_the_engines_side_by_side(
    two_engines: Path, tmp_path: Path
) -> None:
    options = _options(tmp_path)
    markdown = _report(tmp_path, "md")
    section = markdown.split("## Engines measured on the same host", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ws-1")]
    assert len(rows) == 2
    for row, name, engine in (
        (rows[0], "ws-1 (llama.cpp)", "llama.cpp b6000-abc"),
        (rows[1], "ws-1 (vllm)", "vllm 0.32.0"),
    ):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        low, high = options[name]["usd_per_mtok_low"], options[name]["usd_per_mtok_high"]
        tok_s = options[name]["throughput_tok_s"]["value"]
        assert cells[:3] == ["ws-1", engine, name]
        assert cells[3] == f"{tok_s:,.1f} [M] (aggregate of 4 streams)"
        assert cells[4] == usd_range(low, high)  # the JSON's figures, as the tables print
        assert cells[5].startswith("measured (")
    table = _report(tmp_path, "table")
    assert "Engines measured on the same host" in table
    assert "vllm 0.32.0" in table and "llama.cpp b6000-abc" in table


def test_the_html_page_has_the_engine_table(two_engines: Path, tmp_path: Path) -> None:
    page = _report(tmp_path, "html")
    match = re.search(r'id="engines".*?</table>', page, re.S)
    assert match is not None, "no engines section in the page"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", match.group(0), re.S)
    assert "vllm 0.32.0" in cells and "llama.cpp b6000-abc" in cells
    assert "300.0 [M] (aggregate of 4 streams)" in cells
    assert "120.0 [M] (aggregate of 4 streams)" in cells


def test_a_scenario_option_naming_the_host_is_split_per_engine(
    two_engines: Path, tmp_path: Path
) -> None:
    own = {"name": "my 4090", "kind": "office", "gpu": "RTX 4090", "price_usd": 2500,
           "host": "ws-1"}  # fmt: skip
    options = _options(tmp_path, {**SCENARIO, "options": [own]})
    assert {"my 4090 (llama.cpp)", "my 4090 (vllm)"} <= set(options)
    assert options["my 4090 (vllm)"]["purchase_usd"]["value"] == 2500  # the scenario's
    assert options["my 4090 (vllm)"]["throughput_tok_s"]["value"] == 300.0
    pinned = {**own, "engine": "llama.cpp"}  # one engine asked for: no split
    options = _options(tmp_path, {**SCENARIO, "options": [pinned]})
    assert options["my 4090"]["throughput_tok_s"]["value"] == 120.0
    assert "my 4090 (vllm)" not in options


def test_the_newest_run_per_engine_is_used_and_named(two_engines: Path, tmp_path: Path) -> None:
    write_run(two_engines, "ws-1", "llama_cpp", "20261120T000000Z", tok_s=130.0)
    data = json.loads(_report(tmp_path, "json"))
    options = {o["name"]: o for o in data["options"]}
    assert options["ws-1 (llama.cpp)"]["throughput_tok_s"]["value"] == 130.0
    assert options["ws-1 (vllm)"]["throughput_tok_s"]["value"] == 300.0
    assert any(
        n.startswith("ws-1 (llama.cpp): the newest of 2 runs is used (20261120T000000Z")
        for n in data["notes"]
    )


def test_one_engine_keeps_the_plain_name_and_no_engine_table(tmp_path: Path) -> None:
    write_run(tmp_path / "results", "ws-1", "vllm", "20261130T000000Z", tok_s=300.0)
    options = _options(tmp_path)
    assert options["ws-1"]["engine"] == "vllm"
    assert "Engines measured on the same host" not in _report(tmp_path, "md")


def test_engine_without_host_is_refused_naming_it() -> None:
    bad = {**SCENARIO, "options": [{"hardware": "pc-i7-13700k-rtx3060", "engine": "vllm"}]}
    with pytest.raises(ValueError, match="engine 'vllm' picks among a host's bench runs"):
        parse_scenario(bad)


def test_a_run_with_no_result_files_still_counts_as_its_engines(tmp_path: Path) -> None:
    """A llama_cpp run whose bench wrote nothing is still a llama.cpp run: the newest."""
    root = tmp_path / "results"
    write_run(root, "ws-1", "llama_cpp", "20261115T000000Z", tok_s=120.0)
    empty = root / "ws-1" / "20261130T000000Z"
    empty.mkdir(parents=True)
    manifest = json.loads((root / "ws-1" / "20261115T000000Z" / MANIFEST_NAME).read_text())
    manifest.update(run_id=empty.name, created_at="2026-11-30T00:00:00Z", result_files=[])
    (empty / MANIFEST_NAME).write_text(json.dumps(manifest))
    tree = read_results_tree(root)
    assert [r.manifest.run_id for r in tree.host_runs] == [empty.name]
    assert tree.results == ()
