"""Test-only pieces of the role tests: the throw-away hosts' API key and the shared
office converge. The runner itself is ``llmbox.lab.playbooks`` (the demo uses it too)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmbox.lab.playbooks import PlaybookResult, converge_role, run_playbook
from llmbox.lab.testhosts import TestHost

__all__ = [
    "TEST_API_KEY",
    "OfficeConverge",
    "PlaybookResult",
    "assert_untouched",
    "converge_role",
    "run_playbook",
    "unit_exposure",
]

TEST_API_KEY = "llmbox-test-key-5f0c2a9e"  # a test-only key for the throw-away hosts


@dataclass(frozen=True)
class OfficeConverge:
    """site.yml on the office pair: first run; a second and a check-mode run that apply
    every task (llmbox_full_converge), so they prove the roles idempotent and check-mode
    clean; a plain re-run, which takes the converge-stamp fast path."""

    hosts: tuple[TestHost, TestHost]
    first: PlaybookResult
    second: PlaybookResult
    check: PlaybookResult
    fast: PlaybookResult


def assert_untouched(host: TestHost) -> None:
    """Nothing under the paths the roles write changed since the test touched
    /run/llmbox-before-play on ``host`` (a refused run must change nothing)."""
    written = host.ssh(
        "find /etc /opt /usr /var/lib/dpkg /var/lib/llmbox -xdev -newer /run/llmbox-before-play"
        " -print 2>/dev/null",
        check=False,
    ).stdout.split()
    assert written == [], written


def unit_exposure(host: TestHost, unit: str, *, offline_file: str | None = None) -> float:
    """``systemd-analyze security``'s overall exposure of ``unit`` on ``host``: of the
    running unit, or with ``offline_file`` of a unit file read as it is (--offline=yes,
    for units that cannot run there, such as the CUDA ones on a host without a GPU)."""
    target = f"--offline=yes {offline_file}" if offline_file else unit
    report = host.ssh(f"systemd-analyze security --no-pager {target}", check=False).stdout
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: ([0-9.]+)", report)
    assert match, report[-3000:]
    return float(match[1])
