"""Every `llmbox bench` option is explained in --help and in the README's bench section."""

from __future__ import annotations

from pathlib import Path

import click

from llmbox.bench.cli import bench

README = Path(__file__).resolve().parents[2] / "README.md"


def _options() -> list[click.Option]:
    return [p for p in bench.params if isinstance(p, click.Option)]


def test_every_option_has_help_text() -> None:
    missing = [o.opts[0] for o in _options() if not o.help]
    assert missing == []


def test_readme_bench_section_mentions_every_option() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- section:bench -->")[1].split("<!-- /section:bench -->")[0]
    missing = [o.opts[0] for o in _options() if o.opts[0] not in section]
    assert missing == []
