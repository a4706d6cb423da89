"""Project-wide test policy.

CI sets ``LLMBOX_REQUIRE_REAL=real_server,real_host,real_browser``: a test carrying one of those
markers that is skipped then fails instead, and the run fails if no test of a
required marker passed. A skipped real-host test proves nothing, so it must not
pass quietly.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

_REQUIRED = tuple(m for m in os.environ.get("LLMBOX_REQUIRE_REAL", "").split(",") if m)
_passed_by_marker: dict[str, int] = dict.fromkeys(_REQUIRED, 0)


def _required_markers(item: pytest.Item) -> list[str]:
    return [m for m in _REQUIRED if item.get_closest_marker(m) is not None]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    markers = _required_markers(item)
    if not markers:
        return
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} is marked {', '.join(markers)}, which CI requires to run, "
            f"but it was skipped: {report.longrepr}"
        )
    elif report.when == "call" and report.passed:
        for marker in markers:
            _passed_by_marker[marker] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.option.collectonly or exitstatus != 0:
        return
    missing = [m for m, n in _passed_by_marker.items() if n == 0]
    if missing and not session.config.option.keyword and not session.config.option.markexpr:
        print(f"\nLLMBOX_REQUIRE_REAL: no test marked {', '.join(missing)} passed")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
