"""playbooks/benchmark.yml on the served office pair: `llmbox bench` runs on each host
against its own endpoint, results come back per host and run, the report prices each host
from its run manifest; a down server, an unreachable host and a bad identity each fail
alone with one message and lose nothing fetched before."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from playbook_runner import OfficeConverge, PlaybookResult, run_playbook

from llmbox.cost.identity import MANIFEST_NAME, read_manifest
from llmbox.lab.playbooks import ONE_HOST_AT_A_TIME
from llmbox.lab.testhosts import TestHost

pytestmark = pytest.mark.real_host

PLAYBOOK = "playbooks/benchmark.yml"
LEVELS = [1, 2]
# CPU-only test hosts, priced inline as the inventory would (gpu left out: no GPU).
HARDWARE = {
    "office-d12": {"name": "ws-reception", "price_usd": 650, "load_power_w": 65,
                   "idle_power_w": 22, "ram_gb": 8},
    "office-d13": {"price_usd": 720, "ram_gb": 16},
}  # fmt: skip
SCENARIO = """
name: measured office pair
usage: {hours_per_day: 8, days_per_month: 22, concurrency: 2}
model: {name: SmolLM2-135M, quantization: Q4_1, params_b: 0.135, layers: 30, kv_heads: 3,
        head_dim: 64, context_tokens: 2048}
electricity_usd_per_kwh: 0.15
options:
  - hardware: pc-i7-13700k-rtx3060
"""


@dataclass(frozen=True)
class Runs:
    results: Path
    first: PlaybookResult
    second: PlaybookResult


def _benchmark_vars(office_vars: dict[str, object], results: Path) -> dict[str, object]:
    return office_vars | {
        "llm_benchmark_results_dir": str(results),
        "llm_benchmark_concurrency": LEVELS,
        "llm_benchmark_requests": 4,
        "llm_benchmark_prompt_tokens": 32,
        "llm_benchmark_output_tokens": 16,
        "llm_benchmark_warmup": 1,
    }


def _run_folders(results: Path, host: str) -> list[Path]:
    return sorted(p for p in (results / host).iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def runs(
    converged_office: OfficeConverge,
    office_vars: dict[str, object],
    tmp_path_factory: pytest.TempPathFactory,
) -> Runs:
    results = tmp_path_factory.mktemp("results")
    extra = _benchmark_vars(office_vars, results)
    hosts = list(converged_office.hosts)
    # the pair shares this machine's cores: each host is measured while the other idles
    first = run_playbook(PLAYBOOK, hosts, extra, host_vars=_hardware_vars(), env=ONE_HOST_AT_A_TIME)
    assert first.rc == 0, first.stdout[-6000:]
    second = run_playbook(
        PLAYBOOK, hosts, extra, host_vars=_hardware_vars(), env=ONE_HOST_AT_A_TIME
    )
    assert second.rc == 0, second.stdout[-6000:]
    return Runs(results, first, second)


def _hardware_vars() -> dict[str, dict[str, object]]:
    return {host: {"llm_benchmark_hardware": hw} for host, hw in HARDWARE.items()}


@pytest.mark.parametrize("host", sorted(HARDWARE))
def test_every_run_adds_its_own_folder_with_a_manifest(runs: Runs, host: str) -> None:
    folders = _run_folders(runs.results, host)
    assert len(folders) == 2, folders
    for folder in folders:
        manifest = read_manifest(folder / MANIFEST_NAME)
        assert manifest.host == host
        assert manifest.hardware.model_dump(exclude_defaults=True) == HARDWARE[host]
        assert manifest.gpu_seen is None  # NVML finds no GPU on a test host
        assert manifest.engine == "llama_cpp"
        assert sorted(p.name for p in folder.glob("*__c*.json")) == manifest.result_files
        assert len(manifest.result_files) == len(LEVELS)
        for name in manifest.result_files:
            data = json.loads((folder / name).read_text())
            assert data["metadata"]["host"] == host
            assert data["metadata"]["engine"]["name"] == "llama.cpp"
            assert data["metadata"]["model"]["quantization"] == "Q4_1"
            assert data["metrics"]["completed"] == 4 and data["metrics"]["failed"] == 0


def test_the_bench_runs_as_its_own_user_and_keeps_no_copy(
    runs: Runs, converged_office: OfficeConverge
) -> None:
    host = converged_office.hosts[0].testinfra()
    assert host.user("llmbox-bench").shell == "/usr/sbin/nologin"
    assert host.check_output("ls -A /var/lib/llmbox-bench/runs") == ""
    assert "llmbox-test-key" not in runs.first.stdout + runs.second.stdout


def test_a_second_install_changes_nothing(
    runs: Runs, converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    again = run_playbook(
        PLAYBOOK, list(converged_office.hosts), _benchmark_vars(office_vars, runs.results),
        host_vars=_hardware_vars(), tags=["llm_benchmark_install"],
    )  # fmt: skip
    assert again.rc == 0, again.stdout[-4000:]
    assert again.changed() == 0, again.stdout[-4000:]


def test_check_mode_measures_and_writes_nothing(
    runs: Runs, converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    before = {h: _run_folders(runs.results, h) for h in HARDWARE}
    check = run_playbook(
        PLAYBOOK, list(converged_office.hosts), _benchmark_vars(office_vars, runs.results),
        host_vars=_hardware_vars(), check=True,
    )  # fmt: skip
    assert check.rc == 0, check.stdout[-4000:]
    assert "would run llmbox bench" in check.stdout
    assert {h: _run_folders(runs.results, h) for h in HARDWARE} == before


def test_the_report_prices_each_host_from_its_newest_run(runs: Runs, tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    report = subprocess.run(
        [sys.executable, "-m", "llmbox", "report", str(scenario),
         "--results", str(runs.results), "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    data = json.loads(report.stdout)
    options = {o["name"]: o for o in data["options"]}
    for host, hardware in HARDWARE.items():
        option = options[str(hardware.get("name", host))]
        newest = _run_folders(runs.results, host)[-1]
        c2 = json.loads(next(newest.glob("*__c2.json")).read_text())
        assert option["throughput_tok_s"]["provenance"] == "measured"
        assert option["throughput_tok_s"]["value"] == c2["metrics"]["output_tok_s"]
        assert option["purchase_usd"]["value"] == hardware["price_usd"]
        assert f"llm_benchmark_hardware of {host}" in option["purchase_usd"]["detail"]
        assert option["gpu"] == "none (CPU only)"
    notes = "\n".join(data["notes"])
    assert "the newest of 2 runs is used" in notes
    # the catalog RTX 3060 PC never takes a CPU-only run's figures
    assert options["pc-i7-13700k-rtx3060"]["throughput_tok_s"]["provenance"] != "measured"


def test_a_down_server_fails_its_host_alone(
    runs: Runs, converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    d12, d13 = converged_office.hosts
    before = _run_folders(runs.results, d12.name)
    d13.ssh("systemctl stop llama-server")
    try:
        result = run_playbook(
            PLAYBOOK, [d12, d13], _benchmark_vars(office_vars, runs.results),
            host_vars=_hardware_vars(),
        )  # fmt: skip
    finally:
        d13.ssh("systemctl start llama-server")
    assert result.rc != 0
    assert result.stats[d13.name]["failed"] == 1
    assert f"the llama_cpp server on {d13.name} does not answer" in result.stdout
    assert result.stats[d12.name]["failed"] == 0
    assert len(_run_folders(runs.results, d12.name)) == len(before) + 1


def test_an_unreachable_host_loses_nothing_fetched(
    runs: Runs, converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    d12 = converged_office.hosts[0]
    ghost = TestHost("ghost", d12.address.rsplit(".", 1)[0] + ".251", "debian12",
                     d12.ssh_user, d12.ssh_key)  # fmt: skip
    before = {h: _run_folders(runs.results, h) for h in HARDWARE}
    ghost_hardware = {"llm_benchmark_hardware": {"price_usd": 1, "ram_gb": 1}}
    result = run_playbook(
        PLAYBOOK, [d12, ghost], _benchmark_vars(office_vars, runs.results),
        host_vars=_hardware_vars() | {"ghost": ghost_hardware},
    )  # fmt: skip
    assert result.rc != 0
    assert result.stats["ghost"]["unreachable"] == 1
    after = {h: _run_folders(runs.results, h) for h in HARDWARE}
    assert set(before[d12.name]) < set(after[d12.name])
    assert before["office-d13"] == after["office-d13"]


def test_an_unknown_hardware_build_is_named_before_anything_runs(
    runs: Runs, converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    d12 = converged_office.hosts[0]
    before = _run_folders(runs.results, d12.name)
    result = run_playbook(
        PLAYBOOK, [d12], _benchmark_vars(office_vars, runs.results),
        host_vars={d12.name: {"llm_benchmark_hardware": {"build": "pc-i7-13700k-rtx306"}}},
    )  # fmt: skip
    assert result.rc != 0
    assert "unknown hardware build 'pc-i7-13700k-rtx306'; did you mean 'pc-i7-13700k-rtx3060'" in (
        result.stdout
    )
    assert result.stats[d12.name]["changed"] == 0
    assert _run_folders(runs.results, d12.name) == before
