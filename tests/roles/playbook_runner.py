"""Test-only pieces of the role tests: the throw-away hosts' API key and the shared
office converge. The runner itself is ``llmbox.lab.playbooks`` (the demo uses it too)."""

from __future__ import annotations

from dataclasses import dataclass

from llmbox.lab.playbooks import PlaybookResult, converge_role, run_playbook
from llmbox.lab.testhosts import TestHost

__all__ = ["TEST_API_KEY", "OfficeConverge", "PlaybookResult", "converge_role", "run_playbook"]

TEST_API_KEY = "llmbox-test-key-5f0c2a9e"  # a test-only key for the throw-away hosts


@dataclass(frozen=True)
class OfficeConverge:
    """site.yml on the office pair: first run, idempotent second run, check-mode run."""

    hosts: tuple[TestHost, TestHost]
    first: PlaybookResult
    second: PlaybookResult
    check: PlaybookResult
