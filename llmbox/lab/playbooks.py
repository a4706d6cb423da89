"""Runs playbooks against test hosts and reads what Ansible reports back.

``run_playbook`` writes a throw-away inventory for the given hosts and runs
``ansible-playbook`` from the repo root with the project's ansible.cfg; the
``PlaybookResult`` carries the return code, the output and the PLAY RECAP per host.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmbox.lab.testhosts import CACHE, REPO_ROOT, TestHost, TestNetwork


@dataclass(frozen=True)
class PlaybookResult:
    rc: int
    stdout: str
    stats: dict[str, dict[str, int]]  # host name -> {"ok": n, "changed": n, "failed": n, ...}

    def changed(self) -> int:
        return sum(s.get("changed", 0) for s in self.stats.values())


_RECAP = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.MULTILINE)


# What site.yml needs from the controller on hosts with no internet (filled by
# scripts/setup.d/05-llama-cpp-source.sh and by the roles' own controller caches).
LLAMA_CPP_SOURCE = CACHE / "src" / "llama_cpp_python-0.3.36.tar.gz"
LLAMA_CPP_BUILD_CACHE = CACHE / "llama_cpp_builds"

# benchmark.yml's environment where the hosts share one machine's cores (test hosts, the
# demo's workstations): with one fork Ansible runs each task host by host, so each host's
# bench runs while the other engines are idle. Benchmarked at once, their llama.cpp
# threads fight over the same cores and each figure is a fraction of what the host
# delivers alone: on 2 cores the demo's benchmark.yml took 466 s and measured 2.3 and
# 3.0 tok/s with both hosts at once, 107 s and 42.9 and 42.5 tok/s host by host.
ONE_HOST_AT_A_TIME = {"ANSIBLE_FORKS": "1"}


def offline_site_vars(
    network: TestNetwork,
    api_key: str,
    *,
    build_jobs: int = 2,
    build_cache: Path = LLAMA_CPP_BUILD_CACHE,
) -> dict[str, Any]:
    """site.yml's variables for test hosts on ``network`` (CPU profile): llama.cpp source,
    builds and the model from the controller, the API and SSH open to that network only.
    ``api_key`` is the key itself or a template that looks it up (never logged either way:
    the roles mark it no_log)."""
    return {
        "llama_cpp_api_key": api_key,
        "llama_cpp_source_local_path": str(LLAMA_CPP_SOURCE),
        "llama_cpp_build_cache_dir": str(build_cache),
        "llama_cpp_build_jobs": build_jobs,
        "model_store_controller_cache_dir": str(CACHE / "model_store"),
        "firewall_client_networks": [network.subnet],
        "firewall_admin_networks": [network.subnet],
    }


def parse_recap(stdout: str) -> dict[str, dict[str, int]]:
    recap = stdout.rsplit("PLAY RECAP", 1)[-1] if "PLAY RECAP" in stdout else ""
    return {
        m.group(1): {k: int(v) for k, v in (kv.split("=") for kv in m.group(2).split())}
        for m in _RECAP.finditer(recap)
    }


def write_inventory(
    path: Path,
    hosts: list[TestHost],
    group: str = "llm_servers",
    host_vars: dict[str, dict[str, Any]] | None = None,
) -> None:
    """An inventory of ``hosts`` in ``group``; ``host_vars`` adds variables per host name."""
    ssh_args = f"-F {hosts[0].ssh_key.parent / 'ssh_config'}" if hosts else ""
    extra = host_vars or {}
    inventory = {
        "all": {
            "children": {
                group: {
                    "hosts": {
                        h.name: {
                            "ansible_host": h.address,
                            "ansible_user": h.ssh_user,
                            "ansible_ssh_private_key_file": str(h.ssh_key),
                            "ansible_ssh_common_args": ssh_args,
                            "ansible_python_interpreter": "/usr/bin/python3",
                            **extra.get(h.name, {}),
                        }
                        for h in hosts
                    }
                }
            }
        }
    }
    path.write_text(json.dumps(inventory, indent=2))  # JSON is YAML


def playbook_command(
    workdir: Path,
    playbook: str | Path,
    hosts: list[TestHost],
    extra_vars: dict[str, Any] | None = None,
    *,
    check: bool = False,
    tags: list[str] | None = None,
    limit: str | None = None,
    host_vars: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The ``ansible-playbook`` argv and environment ``run_playbook`` runs (from the repo
    root), its inventory and extra vars written into ``workdir``; for callers that must
    hold the process themselves (to interrupt it mid-run)."""
    inventory = workdir / "inventory.yml"
    write_inventory(inventory, hosts, host_vars=host_vars)
    argv = ["ansible-playbook", "-i", str(inventory), str(REPO_ROOT / playbook)]
    if extra_vars:
        (workdir / "extra.json").write_text(json.dumps(extra_vars))
        argv += ["-e", f"@{workdir / 'extra.json'}"]
    if check:
        argv.append("--check")
    if tags:
        argv += ["--tags", ",".join(tags)]
    if limit:
        argv += ["--limit", limit]
    environment = (
        dict(os.environ)
        | {
            "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        | (env or {})
    )
    return argv, environment


def run_playbook(
    playbook: str | Path,
    hosts: list[TestHost],
    extra_vars: dict[str, Any] | None = None,
    *,
    check: bool = False,
    tags: list[str] | None = None,
    limit: str | None = None,
    host_vars: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 3000,
) -> PlaybookResult:
    """Runs ``ansible-playbook`` from the repo root with the project's ansible.cfg;
    ``env`` adds environment variables (e.g. a key the inventory reads with a lookup)."""
    with tempfile.TemporaryDirectory(prefix="llmbox-play-") as tmp:
        argv, environment = playbook_command(
            Path(tmp), playbook, hosts, extra_vars,
            check=check, tags=tags, limit=limit, host_vars=host_vars, env=env,
        )  # fmt: skip
        proc = subprocess.run(
            argv, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=timeout_s,
            check=False,
        )  # fmt: skip
    output = proc.stdout + proc.stderr
    return PlaybookResult(proc.returncode, output, parse_recap(proc.stdout))


def converge_role(
    role: str,
    hosts: list[TestHost],
    tmp_path: Path,
    extra_vars: dict[str, Any] | None = None,
    *,
    check: bool = False,
) -> PlaybookResult:
    """Converges one role alone on ``hosts`` through a one-play playbook in ``tmp_path``."""
    play = [{"name": f"Converge {role}", "hosts": "llm_servers", "roles": [role]}]
    playbook = tmp_path / f"{role}.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    return run_playbook(playbook, hosts, extra_vars, check=check)
