"""`llmbox demo`: the whole loop (provision, serve, measure, decide) on this machine."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="Folder for the results (each run adds one per host) and the report files.",
)
def demo(out: Path) -> None:
    """Boot two throw-away workstations, serve, measure and report - no GPU, no cloud.

    \b
    Needs root on a Linux machine, an llmbox checkout installed with the office and
    bench extras, and the package registries. It installs (once, then cached under
    .cache/): debootstrap, systemd-container, apt-cacher-ng, iproute2, openssh-client
    (apt); a Debian 12 root filesystem; the llama.cpp source (the llama-cpp-python sdist).
    Then: boots two Debian 12 hosts with systemd-nspawn on a private bridge, converges
    them with playbooks/site.yml (llama.cpp built in the first host, SmolLM2-135M from
    its wheel, a random API key, nftables), runs playbooks/benchmark.yml, and writes
    report.html/.json/.md to --out with both hosts as measured options beside the seed's
    catalog options. Hosts, bridge and mounts are removed afterwards, also on failure
    and on Ctrl-C.
    """
    from rich.console import Console  # noqa: PLC0415

    from llmbox.lab.demo import DemoError, run_demo  # noqa: PLC0415

    console = Console(stderr=True)
    try:
        run_demo(out.resolve(), console)
    except DemoError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        console.print("interrupted: the workstations were stopped and removed")
        raise SystemExit(130) from None
