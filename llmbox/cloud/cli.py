"""``llmbox cloud check`` and ``llmbox inventory``: the platform engineer's helpers.

boto3 is imported only inside ``cloud check`` (via :mod:`llmbox.cloud.preflight`), so
``llmbox inventory`` needs no AWS SDK and no credentials.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click
import yaml

from llmbox.cloud.inventory import InventoryError, write_atomically
from llmbox.cloud.stack_outputs import inventory_from_stack_outputs

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_INVENTORY = Path("inventories/cloud.yml")


@click.group()
def cloud() -> None:
    """Cloud GPU hosts: ask AWS before `pulumi up`."""


@cloud.command("check")
@click.option(
    "--instance-type",
    "-t",
    required=True,
    help="EC2 instance type to check, e.g. g5.xlarge (see `llmbox catalog`).",
)
@click.option(
    "--region",
    "-r",
    default="us-east-1",
    show_default=True,
    help="AWS region that should offer it.",
)
@click.option("--spot", is_flag=True, help="Also require a spot market and show its prices.")
def check(instance_type: str, region: str, spot: bool) -> None:
    """Ask AWS whether REGION offers INSTANCE_TYPE, which GPU it has, and its spot price.

    Uses your AWS credentials (read-only EC2 Describe* calls). Exits non-zero with the
    reason when the type would not work, so a wrong choice fails before `pulumi up`.
    """
    from rich.console import Console  # noqa: PLC0415 - keep `llmbox inventory` light
    from rich.table import Table  # noqa: PLC0415

    # boto3 is imported here, only when AWS is asked.
    from llmbox.cloud.preflight import PreflightError, check_instance_type  # noqa: PLC0415

    try:
        report = check_instance_type(instance_type, region, spot=spot)
    except PreflightError as error:
        raise click.ClickException(str(error)) from None
    gpu = report.gpu
    each, total = gpu.memory_mib_each / 1024, gpu.total_memory_mib / 1024
    console = Console(soft_wrap=True)  # long lines stay whole when piped
    console.print(
        f"[bold]{report.instance_type}[/] in {report.region}: "
        f"{gpu.count}x {gpu.manufacturer} {gpu.name} ({each:.1f} GiB each, {total:.1f} GiB "
        f"total), {report.vcpus} vCPU, {report.memory_mib / 1024:.0f} GiB RAM  [dim](from AWS)[/]"
    )
    console.print(f"offered in: {', '.join(report.zones)}")
    if spot:
        table = Table(title="latest Linux spot price (from AWS DescribeSpotPriceHistory)")
        table.add_column("zone")
        table.add_column("USD/h", justify="right")
        table.add_column("as of")
        for price in report.spot_prices:
            table.add_row(
                price.availability_zone,
                f"{price.usd_per_hour:.4f}",
                price.timestamp.isoformat(timespec="minutes"),
            )
        console.print(table)
    _print_catalog_price(console, report.instance_type)


def _print_catalog_price(console: Console, instance_type: str) -> None:
    """The catalogued price next to AWS's answer, labelled with its source and date."""
    from llmbox.cost.catalog import load_catalog  # noqa: PLC0415

    try:
        row = load_catalog().cloud_instance(instance_type)
    except ValueError:
        console.print("catalog: no price catalogued for this type (llmbox cannot estimate it)")
        return
    spot = (
        f", spot {row.spot_low_usd_per_hour:g}-{row.spot_high_usd_per_hour:g} USD/h"
        if row.spot_low_usd_per_hour is not None and row.spot_high_usd_per_hour is not None
        else ""
    )
    console.print(
        f"catalog ({row.region}): on-demand {row.on_demand_high_usd_per_hour:g} USD/h{spot} "
        f"[dim](source: {row.source}, as of {row.as_of})[/]"
    )


@click.command("inventory")
@click.argument("stack_output_json", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=DEFAULT_INVENTORY,
    show_default=True,
    help="Inventory file to write (replaced atomically); '-' prints it.",
)
def inventory(stack_output_json: IO[str], out: Path) -> None:
    """Turn `pulumi stack output --json` into an Ansible inventory.

    STACK_OUTPUT_JSON is a saved copy of the outputs, or '-' (the default) to read
    them from standard input:

    \b
        pulumi stack output --json | llmbox inventory
        ansible-playbook -i inventories/cloud.yml playbooks/site.yml
    """
    text = stack_output_json.read()
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise click.ClickException(
            f"{stack_output_json.name} is not JSON ({error}); pass the output of "
            "`pulumi stack output --json`"
        ) from None
    try:
        document = inventory_from_stack_outputs(outputs)
    except InventoryError as error:
        raise click.ClickException(f"{stack_output_json.name}: {error}") from None
    if str(out) == "-":
        click.echo(document, nl=False)
        return
    write_atomically(out, document)
    groups = yaml.safe_load(document)["all"]["children"]
    counts = ", ".join(
        f"{len(group['hosts'])} hosts in group {name}" for name, group in groups.items()
    )
    click.echo(f"wrote {out} ({counts})")
