"""A command run on an install without its extra says in one line which extra to install
(exit 2), instead of a traceback. The missing package is simulated the way Python
sees one: ``sys.modules[name] = None`` makes ``import name`` fail."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from llmbox.cli import main, missing_extra


def _without(monkeypatch: pytest.MonkeyPatch, package: str, llmbox_package: str) -> None:
    """Make ``package`` unimportable, and forget the modules of ``llmbox_package`` an
    earlier test may have imported while it was there (all but the light CLI module)."""
    monkeypatch.setitem(sys.modules, package, None)
    for name in list(sys.modules):
        if name.startswith(f"{llmbox_package}.") and name != f"{llmbox_package}.cli":
            monkeypatch.delitem(sys.modules, name)


def _run(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, list(args), prog_name="llmbox")
    return result.exit_code, result.output.splitlines()


def test_bench_without_httpx_names_the_bench_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "httpx", "llmbox.bench")
    code, lines = _run("bench", "http://127.0.0.1:1", "--model", "m")
    assert code == 2, lines
    assert lines == [
        "Error: llmbox bench needs httpx, which is not installed: pip install 'llmbox[bench]'"
    ]


def test_cloud_check_without_boto3_names_the_cloud_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without(monkeypatch, "boto3", "llmbox.cloud")
    code, lines = _run("cloud", "check", "--instance-type", "g5.xlarge")
    assert code == 2, lines
    assert lines == [
        "Error: llmbox cloud needs boto3, which is not installed: pip install 'llmbox[cloud]'"
    ]


def test_a_missing_module_no_extra_provides_is_not_hidden() -> None:
    # e.g. a broken install of a core dependency: the full traceback is the useful answer
    assert missing_extra(ModuleNotFoundError("no yaml", name="yaml"), "llmbox report") is None
