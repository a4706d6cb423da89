"""Benchmark: how long site.yml takes on systemd-nspawn test hosts (measured, not estimated).

Measures, with the llama.cpp build already in the controller cache (run the role tests
once first, or this script's first converge builds and is reported separately):
  - converge of one fresh Debian 12 host (boot excluded),
  - the idempotent re-run on that host,
  - converge of N fresh hosts in parallel against one, and their re-run.
Writes benchmarks/results/converge.json. Needs root and scripts/setup.d/30-testhosts.sh.

    python benchmarks/converge_site.py --parallel 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "roles"))

from playbook_runner import TEST_API_KEY, run_playbook
from rich.console import Console

from llmbox.lab.playbooks import LLAMA_CPP_BUILD_CACHE, offline_site_vars
from llmbox.lab.testhosts import (
    CACHE,
    REPO_ROOT,
    SETUP_SCRIPT,
    TestHost,
    TestHostPool,
    TestNetwork,
    make_ssh_keypair,
    missing_prerequisites,
)

RESULT = REPO_ROOT / "benchmarks" / "results" / "converge.json"
console = Console(stderr=True)


def busy_core_seconds() -> float:
    """CPU seconds spent busy by the whole machine so far (all cores, /proc/stat): the
    controller, ssh and every test host share these cores, so this is what a converge
    costs the machine (other work running at the same time is included: see the load)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def controller_cpu_seconds() -> float:
    """CPU seconds of ansible-playbook and everything it ran on the controller (ssh)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_converge(
    network: TestNetwork,
    hosts: list[TestHost],
    label: str,
    build_cache: Path = LLAMA_CPP_BUILD_CACHE,
    full: bool = False,
) -> dict[str, Any]:
    """``full``: every task re-applied (llmbox_full_converge), not the converge-stamp fast path."""
    with console.status(f"{label}: site.yml on {len(hosts)} host(s)"):
        load_before = os.getloadavg()[0]
        busy_before, controller_before = busy_core_seconds(), controller_cpu_seconds()
        started = time.monotonic()
        result = run_playbook(
            "playbooks/site.yml",
            hosts,
            offline_site_vars(network, TEST_API_KEY, build_cache=build_cache)
            | ({"llmbox_full_converge": True} if full else {}),
        )
        seconds = time.monotonic() - started
        busy = busy_core_seconds() - busy_before
        controller = controller_cpu_seconds() - controller_before
    if result.rc != 0:
        console.print(result.stdout[-5000:])
        raise SystemExit(f"{label}: site.yml failed (rc={result.rc})")
    built = "Compile llama-server" in result.stdout
    fast = "unchanged since the last complete converge" in result.stdout
    console.print(f"{label}: {seconds:.1f} s, changed={result.changed()}, built={built}")
    return {
        "seconds": round(seconds, 2),
        "hosts": len(hosts),
        "changed": result.changed(),
        "compiled_llama_cpp": built,
        "fast_path": fast,
        "load_avg_1m_before": round(load_before, 2),  # the machine is shared: context
        "machine_busy_core_s": round(busy, 1),
        "controller_cpu_s": round(controller, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=3, help="hosts in the parallel run")
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument(
        "--build",
        action="store_true",
        help="warm up from an empty build cache, so the first converge compiles llama.cpp",
    )
    args = parser.parse_args()
    if missing := missing_prerequisites():
        raise SystemExit(f"missing: {'; '.join(missing)}; run {SETUP_SCRIPT}")

    network = TestNetwork()
    network.up()
    pool = TestHostPool(network, make_ssh_keypair(CACHE / "testhosts" / "bench-ssh"))
    runs: dict[str, Any] = {}
    try:
        warm = [pool.boot("debian12", "bench-warm")]
        if args.build:
            with tempfile.TemporaryDirectory(prefix="llmbox-build-cache-") as empty:
                runs["build_in_host"] = timed_converge(
                    network, warm, "converge with an in-host llama.cpp build", Path(empty)
                )
        else:
            runs["cache_warmup"] = timed_converge(network, warm, "cache warm-up (may build)")
        pool.stop_all()

        started = time.monotonic()
        one = [pool.boot("debian12", "bench-one")]
        runs["boot_one_host_s"] = round(time.monotonic() - started, 2)
        runs["fresh_one_host"] = timed_converge(network, one, "fresh host, cached build")
        runs["rerun_one_host"] = timed_converge(network, one, "idempotent re-run (fast path)")
        runs["rerun_one_host_full"] = timed_converge(
            network, one, "idempotent re-run, every task", full=True
        )
        pool.stop_all()

        many = [pool.boot("debian12", f"bench-p{i}") for i in range(args.parallel)]
        runs["fresh_parallel"] = timed_converge(
            network, many, f"{args.parallel} fresh hosts at once"
        )
        runs["rerun_parallel"] = timed_converge(network, many, f"re-run on {args.parallel} hosts")
        runs["rerun_parallel_full"] = timed_converge(
            network, many, f"re-run on {args.parallel} hosts, every task", full=True
        )
    finally:
        pool.stop_all()
        network.down()

    one_s = runs["fresh_one_host"]["seconds"]
    par_s = runs["fresh_parallel"]["seconds"]
    cpus = os.cpu_count() or 1
    # However well the hosts overlap, N converges cannot end before the machine has done
    # their CPU work on its cores: busy core-seconds / cores is the floor of the wall time.
    floor_s = runs["fresh_parallel"]["machine_busy_core_s"] / cpus
    report = {
        "schema_version": 1,
        "what": "wall-clock seconds of ansible-playbook playbooks/site.yml on nspawn test hosts",
        "figures": "measured (time.monotonic around ansible-playbook; boot and ssh-ready excluded)",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "profile": "CPU (llama.cpp from the controller cache), SmolLM2-135M from its wheel",
        "reruns": (
            "rerun_*: the converge-stamp fast path (playbooks/tasks/converge_stamp_check.yml);"
            " rerun_*_full: every task applied again (-e llmbox_full_converge=true)"
        ),
        "runs": runs,
        "parallel_vs_one": {
            "hosts": args.parallel,
            "seconds_per_host_parallel": round(par_s / args.parallel, 2),
            "slowdown_vs_one_host": round(par_s / one_s, 2),
            "cpu_bound_floor_s": round(floor_s, 1),
            "cpu_bound_floor_slowdown": round(floor_s / one_s, 2),
            "one_host_average_busy_cores": round(
                runs["fresh_one_host"]["machine_busy_core_s"] / one_s, 2
            ),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
