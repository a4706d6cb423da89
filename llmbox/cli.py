"""The `llmbox` command line.

Subcommands live beside the code they drive (``llmbox.cost.cli``, ``llmbox.bench.cli``,
``llmbox.cloud.cli``) and are imported only when used, so ``llmbox report`` never
imports the cloud SDKs or the benchmark client. Those modules keep heavy imports
inside their command functions for the same reason, so a command run on an install
without its extra fails on that import: :class:`LazyGroup` turns it into one line that
names the extra to install, exit status 2.
"""

from __future__ import annotations

import importlib

import click

from llmbox import __version__

# top-level module of a third-party dependency -> the llmbox extra that installs it
EXTRA_OF_MODULE: dict[str, str] = {
    "httpx": "bench",
    "psutil": "bench",
    "pynvml": "bench",
    "fabric": "bench",
    "invoke": "bench",
    "paramiko": "bench",
    "boto3": "cloud",
    "botocore": "cloud",
    "pulumi": "cloud",
    "pulumi_aws": "cloud",
}

# command name -> "module:attribute" of a click.Command
SUBCOMMANDS: dict[str, str] = {
    "report": "llmbox.cost.cli:report",
    "catalog": "llmbox.cost.cli:catalog",
    "fit": "llmbox.cost.cli:fit",
    "bench": "llmbox.bench.cli:bench",
    "cloud": "llmbox.cloud.cli:cloud",
    "inventory": "llmbox.cloud.cli:inventory",
    "demo": "llmbox.lab.cli:demo",
    "model": "llmbox.model.cli:model",
}


class MissingExtraError(click.ClickException):
    """A command needs a dependency that comes with an extra this install lacks."""

    exit_code = 2


def missing_extra(error: ModuleNotFoundError, command: str) -> MissingExtraError | None:
    """The one-line error for an import that failed because an extra is not installed,
    or None when ``error`` is about something else (then it is a bug to show in full)."""
    module = (error.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    return MissingExtraError(
        f"{command} needs {module}, which is not installed: pip install 'llmbox[{extra}]'"
    )


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use; a subcommand that
    needs an extra this install lacks fails with one line saying which to install."""

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

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta["llmbox.command"] = f"{ctx.command_path} {name}"
        return name, command, rest

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as error:
            friendly = missing_extra(error, ctx.meta.get("llmbox.command", ctx.command_path))
            if friendly is None:
                raise
            raise friendly from None


@click.group(cls=LazyGroup, lazy_subcommands=SUBCOMMANDS)
@click.version_option(__version__, prog_name="llmbox")
def main() -> None:
    """Run open LLMs on your own terms: provision, serve, measure, and decide.

    \b
    llmbox report      rent or buy? cost per 1M tokens, monthly cost, break-even
    llmbox bench URL   measure tokens/s, latency and power of a served model
    llmbox cloud check ask AWS whether an instance type fits before `pulumi up`
    llmbox demo        the whole loop on throw-away local workstations (root)
    """
