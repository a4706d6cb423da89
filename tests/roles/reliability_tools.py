"""What the reliability tests do to a served test host: load it with `llmbox bench`,
probe it, interrupt a playbook mid-run, and keep the figures they measure.

The figures go to ``LLMBOX_RELIABILITY_RESULTS`` (a directory) when it is set, as the
recorded run in benchmarks/results/reliability/ was made; ``LLMBOX_RELIABILITY_LOAD_S``
sets the load run's length (CI: 20 s; the recorded run: 60 s).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmbox.lab.playbooks import PlaybookResult, parse_recap, playbook_command
from llmbox.lab.testhosts import REPO_ROOT, TestHost

MODEL_ALIAS = "smollm2-135m-instruct"  # llama_cpp_model_alias's default
KEY_ENV = "LLMBOX_RELIABILITY_KEY"  # the bench reads the key from here, never argv
LOAD_S = float(os.environ.get("LLMBOX_RELIABILITY_LOAD_S", "20"))
# One load shape for every run here: short prompts and answers, so a queue of 32 on a
# 2-core host (llama_cpp_parallel=2 slots) drains in seconds after the deadline.
PROMPT_TOKENS = 64
OUTPUT_TOKENS = 32


def health(address: str) -> int:
    """/health's status code, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{address}:8080/health", timeout=1) as response:
            return int(response.status)
    except OSError:
        return 0


def main_pid(host: TestHost) -> int:
    return int(host.ssh("systemctl show -p MainPID --value llama-server").stdout.strip())


def wait_serving_again(host: TestHost, old_pid: int, since: float, limit_s: float) -> float:
    """Seconds from ``since`` (monotonic) until a new llama-server answers /health."""
    while time.monotonic() - since < limit_s:
        pid = main_pid(host)
        if pid not in (0, old_pid) and health(host.address) == 200:
            return time.monotonic() - since
        time.sleep(0.2)
    raise AssertionError(f"llama-server on {host.name} not serving {limit_s:.0f} s after")


def bench_command(
    host: TestHost,
    out: Path,
    *,
    concurrency: int = 32,
    duration_s: float | None = None,
    requests: int | None = None,
    model_file: Path | None = None,
) -> list[str]:
    """`llmbox bench` from the controller against ``host`` over the test bridge."""
    argv = [
        sys.executable, "-m", "llmbox", "bench", f"http://{host.address}:8080",
        "--model", MODEL_ALIAS, "--api-key-env", KEY_ENV,
        "--concurrency", str(concurrency),
        "--prompt-tokens", str(PROMPT_TOKENS), "--output-tokens", str(OUTPUT_TOKENS),
        "--host-label", host.name, "--out", str(out), "--per-request",
    ]  # fmt: skip
    argv += ["--duration", str(duration_s)] if duration_s else ["--requests", str(requests)]
    if model_file is not None:
        argv += ["--model-file", str(model_file)]
    return argv


def bench_env(api_key: str) -> dict[str, str]:
    return dict(os.environ) | {KEY_ENV: api_key, "COLUMNS": "100"}


def bench_result(out: Path, concurrency: int = 32) -> dict[str, Any]:
    files = sorted(out.glob(f"*__c{concurrency}.json"))
    assert len(files) == 1, f"expected one c={concurrency} result in {out}: {files}"
    data: dict[str, Any] = json.loads(files[0].read_text())
    return data


def error_kinds(result: dict[str, Any]) -> dict[str, int]:
    """Failed requests grouped by the first words of their error (per-request records)."""
    kinds: dict[str, int] = {}
    for record in result.get("requests") or []:
        if not record["ok"]:
            kind = " ".join(str(record["error"]).split()[:6])
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


@dataclass(frozen=True)
class Interrupted:
    result: PlaybookResult
    seconds_to_signal: float  # from the start of ansible-playbook to the signal


def interrupted_playbook(
    playbook: str,
    hosts: list[TestHost],
    extra_vars: dict[str, Any],
    *,
    at: str,
    after_s: float,
    signum: int = signal.SIGINT,
    timeout_s: float = 600,
) -> Interrupted:
    """Runs ``playbook`` and, ``after_s`` seconds after a line containing ``at`` is
    printed, sends ``signum`` to its whole process group, as Ctrl-C in a terminal does
    (workers and ssh connections included)."""
    with tempfile.TemporaryDirectory(prefix="llmbox-play-") as tmp:
        argv, environment = playbook_command(Path(tmp), playbook, hosts, extra_vars)
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        assert proc.stdout is not None
        lines: list[str] = []
        signalled_at = 0.0
        for line in proc.stdout:
            lines.append(line)
            if not signalled_at and at in line:
                time.sleep(after_s)
                signalled_at = time.monotonic() - started
                os.killpg(proc.pid, signum)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
    output = "".join(lines)
    assert signalled_at, f"{playbook} never printed {at!r}:\n{output[-4000:]}"
    return Interrupted(PlaybookResult(rc, output, parse_recap(output)), signalled_at)


# Where site.yml writes on a host; a temporary or partial file in any of them after a
# run means something was left half-written.
MANAGED_DIRS = [
    "/var/lib/llmbox",
    "/opt/llama.cpp",
    "/etc/llama-server",
    "/etc/llmbox",
    "/etc/systemd/system",
]


def leftovers(host: TestHost) -> list[str]:
    """Temporary or partial files (model_store's .partial, Ansible's .ansible_tmp*) in
    the directories site.yml manages."""
    out = host.ssh(
        f"find {' '.join(MANAGED_DIRS)} -xdev \\( -name '*.partial' -o -name '.ansible_tmp*' "
        "-o -name '*.tmp' \\) -print 2>/dev/null",
        check=False,
    ).stdout
    return sorted(line for line in out.splitlines() if line)


class Figures:
    """Measured figures of this module's run, written as JSON where the results go."""

    def __init__(self, results: Path | None) -> None:
        self.results = results
        self.data: dict[str, Any] = {
            "what": "llmbox reliability tests on a served nspawn test host (tests/roles/"
            "test_reliability.py); every figure measured in this run",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                "cpus": os.cpu_count(),
                "kernel": platform.release(),
                "python": platform.python_version(),
                "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
            },
        }

    def record(self, name: str, figures: dict[str, Any]) -> None:
        print(f"{name}: {json.dumps(figures)}")
        self.data[name] = figures
        if self.results is not None:
            self.results.mkdir(parents=True, exist_ok=True)
            (self.results / "figures.json").write_text(json.dumps(self.data, indent=2) + "\n")
