"""`llmbox report`, `llmbox catalog` and `llmbox fit`.

Every failure is one ``click.ClickException`` line naming the bad value; the report is
computed and rendered completely before ``--out`` is touched, and then written
atomically, so a bad input never leaves a partial or clobbered report behind.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import click

from llmbox.cost.catalog import catalog_file, load_catalog
from llmbox.cost.fit import ModelShape, Quantization, check_fit

# `llmbox fit`'s exit status when the model does not fit: apart from 1 (an error such as
# an unknown GPU) and 2 (a usage error), so a script can tell "no" from "wrong question".
FIT_EXIT_DOES_NOT_FIT = 3


class ReportFormat(StrEnum):
    TABLE = "table"
    MD = "md"
    HTML = "html"
    JSON = "json"
    CSV = "csv"


class CatalogTable(StrEnum):
    GPUS = "gpus"
    CLOUD = "cloud"
    HARDWARE = "hardware"
    THROUGHPUT = "throughput"
    API = "api"
    MODELS = "models"
    POWER = "power"


_SUFFIX_FORMATS = {
    ".md": ReportFormat.MD,
    ".markdown": ReportFormat.MD,
    ".html": ReportFormat.HTML,
    ".htm": ReportFormat.HTML,
    ".json": ReportFormat.JSON,
    ".csv": ReportFormat.CSV,
    ".txt": ReportFormat.TABLE,
}


def render_report(
    report_format: ReportFormat, scenario: Path | None, results: Path | None, width: int | None
) -> str:
    """Load, validate, compute and render; ``ValueError`` for anything wrong. Each host
    measured by ``benchmark.yml`` under ``results`` joins the scenario's options; notes
    about the results go into the report and, one line each, to stderr."""
    from llmbox.cost import render_data, render_text  # noqa: PLC0415 - keep --help fast
    from llmbox.cost.hosts import (  # noqa: PLC0415
        hardware_notes,
        result_notes,
        service_level_notes,
        with_measured_hosts,
    )
    from llmbox.cost.report import build_report  # noqa: PLC0415
    from llmbox.cost.results import read_results_tree  # noqa: PLC0415
    from llmbox.cost.scenario import load_scenario  # noqa: PLC0415

    loaded, catalog = load_scenario(scenario), load_catalog()
    bench, notes = None, []
    origin = scenario if scenario is not None else "built-in seed scenario"
    try:
        if results is not None:
            tree = read_results_tree(results)
            loaded = with_measured_hosts(loaded, tree.host_runs, tree.results)
            bench, notes = list(tree.results), list(tree.notes)
            notes += hardware_notes(tree.host_runs, catalog)
            if tree.empty:  # a failed run measured nothing: say so rather than drop it
                names = ", ".join(r.path.name for r in tree.empty)
                notes.append(f"ignored, no request completed: {names}")
            notes += result_notes(loaded, catalog, bench)
            notes += service_level_notes(loaded, catalog, bench)
        built = build_report(loaded, catalog, bench, notes)
    except ValueError as error:  # a catalog name in the scenario or a manifest: say where
        raise ValueError(f"{origin}: {error}") from None
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if report_format is ReportFormat.HTML:
        from llmbox.cost.render_html import render_html  # noqa: PLC0415 - pulls in matplotlib

        return render_html(built)
    renderers = {
        ReportFormat.TABLE: lambda: render_text.render_table(built, width=width),
        ReportFormat.MD: lambda: render_text.render_markdown(built),
        ReportFormat.JSON: lambda: render_data.render_json(built),
        ReportFormat.CSV: lambda: render_data.render_csv(built),
    }
    return renderers[report_format]()


@click.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of `llmbox bench` results (subfolders too): measured figures; each host "
    "benchmark.yml measured becomes an option.",
)
@click.option(
    "--format",
    "report_format",
    type=click.Choice([f.value for f in ReportFormat]),
    help="Output format. Default: from the --out file's extension, else a terminal table.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file (atomically) instead of printing it.",
)
def report(
    scenario: Path | None, results: Path | None, report_format: str | None, out: Path | None
) -> None:
    """Rent or buy? Monthly cost, $ per 1M tokens and break-even for each option.

    SCENARIO is a scenario YAML file; without it the built-in seed scenario is used
    (two office PCs against a rented RTX 4090, 8 h/day x 26 days/month). Every figure
    says whether it was measured, given in the scenario, taken from the catalog or
    estimated.
    """
    if report_format is not None:
        chosen = ReportFormat(report_format)
    elif out is not None and out.suffix.lower() in _SUFFIX_FORMATS:
        chosen = _SUFFIX_FORMATS[out.suffix.lower()]
    else:
        chosen = ReportFormat.TABLE
    try:
        # a terminal's own width; a file or pipe gets a wide, stable layout
        width = shutil.get_terminal_size().columns if out is None and sys.stdout.isatty() else None
        text = render_report(chosen, scenario, results, width)
        if out is None:
            click.echo(text, nl=False)
            return
        from llmbox.cost.output import write_atomic  # noqa: PLC0415

        write_atomic(out, text)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {chosen.value} report to {out}", err=True)


@click.command()
@click.argument(
    "table",
    required=False,
    default=CatalogTable.GPUS.value,
    type=click.Choice([t.value for t in CatalogTable]),
)
@click.option("--csv", "as_csv", is_flag=True, help="Print the catalog file itself (CSV).")
def catalog(table: str, as_csv: bool) -> None:
    """List what the built-in catalog knows: TABLE is gpus (default), cloud, hardware,
    throughput, api, models or power. Every row shows its source and date."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    if as_csv:
        # each TABLE name is its file's stem
        click.echo(catalog_file(f"{table}.csv").read_text(encoding="utf-8"), nl=False)
        return

    data = load_catalog()
    rows = {
        CatalogTable.GPUS: data.gpus,
        CatalogTable.CLOUD: data.cloud_instances,
        CatalogTable.HARDWARE: data.hardware_builds,
        CatalogTable.THROUGHPUT: data.throughputs,
        CatalogTable.API: data.api_prices,
        CatalogTable.MODELS: data.models,
        CatalogTable.POWER: data.system_power,
    }[CatalogTable(table)]
    output = Table(title=f"catalog: {table}", title_justify="left")
    first: Any = rows[0] if rows else None
    names = [field.name for field in dataclasses.fields(first)] if first is not None else []
    for name in names:  # let only the long free text wrap
        output.add_column(name, overflow="fold", no_wrap=name not in {"source", "cpu", "system"})
    for row in rows:
        values = dataclasses.astuple(row)  # type: ignore[call-overload]
        output.add_row(*("" if value is None else f"{value}" for value in values))
    Console(width=None if sys.stdout.isatty() else 400).print(output)


@click.command()
@click.argument("model")
@click.argument("gpu")
@click.option("--context", default=4096, show_default=True, type=click.IntRange(min=1),
              help="Context length in tokens, per parallel slot.")  # fmt: skip
@click.option("--parallel", default=1, show_default=True, type=click.IntRange(min=1),
              help="Parallel sequences (server slots), each with its own KV cache.")  # fmt: skip
@click.option("--quant", default=Quantization.Q4_K_M.value, show_default=True,
              type=click.Choice([q.value for q in Quantization], case_sensitive=False),
              help="Weight quantization (sets the bits per weight).")  # fmt: skip
@click.option("--gpus", default=1, show_default=True, type=click.IntRange(min=1),
              help="Number of such GPUs the model is split across.")  # fmt: skip
def fit(  # noqa: PLR0917 - click passes every option as an argument
    model: str, gpu: str, context: int, parallel: int, quant: str, gpus: int
) -> None:
    """Does MODEL fit in GPU's memory? Prints weights, KV cache and overhead in GiB.

    With --gpus N the model is split by whole layers as llama.cpp's default
    --split-mode layer does: the GPUs' memory adds up, each GPU keeps its own overhead,
    and the verdict says how many layers each GPU holds.

    MODEL and GPU are catalog names (see `llmbox catalog models` and `llmbox catalog gpus`).
    Exits 0 when it fits and 3 when it does not (1 or 2: bad input), so a script can
    ask, e.g. `llmbox fit "Llama 3 8B" "RTX 4060" --context 8192 && …`.
    """
    data = load_catalog()
    quantization = Quantization(quant.upper())
    try:
        row, card = data.model(model), data.gpu(gpu)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    shape = ModelShape(row.name, row.params_b, row.layers, row.kv_heads, row.head_dim,
                       row.active_params_b)  # fmt: skip
    result = check_fit(shape, quantization, card.vram_gb, gpu_count=gpus,
                       context_tokens=context, parallel_slots=parallel)  # fmt: skip
    click.echo(
        f"{shape.name} {quantization.value} on {gpus} x {card.name} ({card.vram_gb:g} GiB each)"
    )
    click.echo(f"  weights    {result.weights_gib:8.2f} GiB  ({shape.params_b:g} B params x "
               f"bits per weight of {quantization.value} / 8)")  # fmt: skip
    click.echo(f"  KV cache   {result.kv_cache_gib:8.2f} GiB  ({result.kv_cache_method})")
    overhead = "CUDA context + compute buffers, rule of thumb"
    if gpus > 1:
        overhead = f"{result.overhead_gib / gpus:g} GiB per GPU: {overhead}"
    click.echo(f"  overhead   {result.overhead_gib:8.2f} GiB  ({overhead})")
    click.echo(f"  total      {result.total_gib:8.2f} GiB of {result.vram_gib:g} GiB")
    split = result.split_text()
    if split is not None:
        click.echo(f"  split      {split}")
    if result.fits:
        click.echo(f"fits: {result.headroom_gib:.2f} GiB spare")
    elif result.headroom_gib >= 0:  # enough memory in all, but not in whole layers per GPU
        click.echo("does NOT fit: the layers do not divide over the GPUs (see split)")
    else:
        click.echo(f"does NOT fit: {-result.headroom_gib:.2f} GiB short")
    if not result.fits:
        raise click.exceptions.Exit(FIT_EXIT_DOES_NOT_FIT)
