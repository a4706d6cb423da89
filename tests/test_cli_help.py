"""Every llmbox command, subcommand and option carries help text, and the README names
every top-level command: a command nobody can discover is a defect."""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.testing import CliRunner

from llmbox.cli import SUBCOMMANDS, main

README = Path(__file__).resolve().parent.parent / "README.md"


def _walk(
    command: click.Command, context: click.Context, path: str
) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, f"{path} {name} cannot be loaded"
            found += _walk(sub, click.Context(sub, parent=context), f"{path} {name}")
    return found


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in _walk(main, click.Context(main), "llmbox"):
        if not (command.help or command.short_help):
            missing.append(path)
        missing += [
            f"{path} {'/'.join(p.opts)}"
            for p in command.params
            if isinstance(p, click.Option) and not p.help and "--help" not in p.opts
        ]
    assert missing == []


def test_every_command_answers_help() -> None:
    runner = CliRunner()
    for path, _ in _walk(main, click.Context(main), "llmbox"):
        args = [*path.split()[1:], "--help"]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_readme_names_every_top_level_command() -> None:
    text = README.read_text(encoding="utf-8")
    absent = [name for name in SUBCOMMANDS if not re.search(rf"llmbox {name}\b", text)]
    assert absent == []
