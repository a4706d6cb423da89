"""The `llmbox` command line.

Subcommands live beside the code they drive (``llmbox.cost.cli``, ``llmbox.bench.cli``,
``llmbox.cloud.cli``) and are imported only when used, so ``llmbox report`` never
imports the cloud SDKs or the benchmark client. Those modules keep heavy imports
inside their command functions for the same reason.
"""

from __future__ import annotations

import importlib

import click

from llmbox import __version__

# command name -> "module:attribute" of a click.Command
SUBCOMMANDS: dict[str, str] = {
    "report": "llmbox.cost.cli:report",
    "catalog": "llmbox.cost.cli:catalog",
    "fit": "llmbox.cost.cli:fit",
    "bench": "llmbox.bench.cli:bench",
    "cloud": "llmbox.cloud.cli:cloud",
    "inventory": "llmbox.cloud.cli:inventory",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: object, lazy_subcommands: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_subcommands = lazy_subcommands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_subcommands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_subcommands:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = self.lazy_subcommands[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        return command


@click.group(cls=LazyGroup, lazy_subcommands=SUBCOMMANDS)
@click.version_option(__version__, prog_name="llmbox")
def main() -> None:
    """Run open LLMs on your own terms: provision, serve, measure, and decide.

    \b
    llmbox report      rent or buy? cost per 1M tokens, monthly cost, break-even
    llmbox bench URL   measure tokens/s, latency and power of a served model
    llmbox cloud check ask AWS whether an instance type fits before `pulumi up`
    """
