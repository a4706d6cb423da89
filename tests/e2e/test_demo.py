"""The whole loop as a user runs it: `llmbox demo` boots two workstations, serves,
measures with benchmark.yml and reports; the report's measured options are the figures
the playbook fetched, priced as the inventory named them, and nothing is left running."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llmbox.lab.demo import HARDWARE, HOSTS
from llmbox.lab.testhosts import TESTHOSTS

pytestmark = pytest.mark.real_host

SCENARIO_CONCURRENCY = 2  # llmbox/cost/scenarios/demo.yaml usage.concurrency


def _machine_state(bridge: str) -> set[str]:
    """What of the demo's network is on this machine: its bridge, the overlay mounts and
    the nspawn processes of its hosts (other test sessions may run their own meanwhile)."""
    number = bridge.removeprefix("llmbox")
    links = subprocess.run(
        ["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    mounts = [m.split()[1] for m in Path("/proc/mounts").read_text().splitlines()]
    nspawn = subprocess.run(
        ["pgrep", "-a", "systemd-nspawn"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return (
        {f"bridge {bridge}" for link in links if link.split(":")[1].strip() == bridge}
        | {f"mount {m}" for m in mounts if m.startswith(str(TESTHOSTS / "run" / f"net{number}"))}
        | {f"process {p}" for p in nspawn if f" -M n{number}-" in p}
    )


@dataclass(frozen=True)
class Demo:
    out: Path
    stderr: str
    bridge: str
    left_over: set[str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    out = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, "-m", "llmbox", "demo", "--out", str(out)],
        capture_output=True, text=True, timeout=3000, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-8000:]
    bridge = re.search(r"workstations on bridge (llmbox\d+) ", done.stderr)
    assert bridge is not None, done.stderr[-3000:]
    return Demo(out, done.stderr, bridge.group(1), _machine_state(bridge.group(1)))


def _newest_run(out: Path, host: str) -> Path:
    return sorted(p for p in (out / "results" / host).iterdir() if p.is_dir())[-1]


@pytest.mark.parametrize("host", HOSTS)
def test_each_workstation_is_a_measured_option_with_the_fetched_figure(
    demo: Demo, host: str
) -> None:
    report: dict[str, Any] = json.loads((demo.out / "report.json").read_text())
    option = next(o for o in report["options"] if o["name"] == HARDWARE[host]["name"])
    fetched = next(_newest_run(demo.out, host).glob(f"*__c{SCENARIO_CONCURRENCY}.json"))
    metrics = json.loads(fetched.read_text())["metrics"]
    assert option["throughput_tok_s"]["provenance"] == "measured"
    assert option["throughput_tok_s"]["value"] == metrics["output_tok_s"]
    assert fetched.name in option["throughput_tok_s"]["detail"]
    assert option["purchase_usd"]["value"] == HARDWARE[host]["price_usd"]
    assert option["load_power_w"]["value"] == HARDWARE[host]["load_power_w"]
    # beside the seed's catalog options, which stay estimates for this model
    names = {o["name"] for o in report["options"]}
    assert {"pc-i9-13900k-rtx4060", "pc-i7-13700k-rtx3060", "rented-rtx-4090"} <= names


def test_the_report_files_and_stage_times_are_written(demo: Demo) -> None:
    assert (demo.out / "report.html").read_text().lstrip().lower().startswith("<!doctype html>")
    assert "demo-ws-1 (CPU only)" in (demo.out / "report.md").read_text()
    for stage in ("boot two Debian 12 workstations", "converge site.yml", "run benchmark.yml"):
        assert f"done {stage}" in demo.stderr
    assert "whole loop:" in demo.stderr


def test_nothing_is_left_running(demo: Demo) -> None:
    assert "demo-ws-1 10.213." in demo.stderr  # the hosts were on the bridge named
    assert demo.left_over == set()
