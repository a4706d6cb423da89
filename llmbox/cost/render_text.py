"""The report as a terminal table (rich) and as Markdown."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import astuple

from rich.console import Console
from rich.table import Table

from llmbox.cost.render_common import (
    BREAK_EVEN_COLUMNS,
    LEGEND,
    NOTES_TITLE,
    RANKING_COLUMNS,
    SENSITIVITY_COLUMNS,
    break_even_rows,
    by_cost,
    columns,
    option_row,
    provenance_lines,
    ranking_rows,
    sensitivity_rows,
    shown_break_evens,
    summary_lines,
    usd,
    verdict_lines,
)
from llmbox.cost.render_engines import ENGINE_COLUMNS, ENGINES_TITLE, engine_rows
from llmbox.cost.report import Report

# indices into render_common.columns(): the terminal splits the option table in two
COST_COLUMNS = (0, 2, 3, 4, 5, 6, 8)  # option, GPU, fits, tok/s, price, monthly, $/1M (per box)
TOKEN_COLUMNS = (0, 1, 7, 9, 10)  # option, kind, tokens/month per box, boxes, total
API_COLUMNS = (
    "Hosted API", "$ per 1M input", "$ per 1M output",
    "$ per 1M generated, prompt tokens included", "For the demand, $/month", "Source",
)  # fmt: skip
BREAK_EVEN_TITLE = "Break-even: first month buying has cost no more (fractional month in brackets)"


def api_rows(report: Report) -> list[tuple[str, ...]]:
    return [
        (
            api.name, usd(api.api.input_usd_per_mtok.value),
            usd(api.api.output_usd_per_mtok.value), usd(api.usd_per_mtok),
            usd(api.demand_monthly_usd), api.source,
        )
        for api in report.apis
    ]  # fmt: skip


def _rich_table(title: str, headings: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for heading in headings:
        table.add_column(heading, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def render_table(report: Report, width: int | None = None, color: bool = False) -> str:
    """A rich rendering; plain text unless ``color``."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width or 160,
        force_terminal=color,
        color_system=None if not color else "auto",
    )
    console.print(f"[bold]{report.scenario.name}[/bold]")
    console.print("[bold]Verdict[/bold]")
    for line in verdict_lines(report):
        console.print(f"  {line}", highlight=False, markup=False)
    for line in summary_lines(report):
        console.print(line, highlight=False)
    if report.notes:
        _print_list(console, NOTES_TITLE, report.notes)
    if report.ranking:
        title = "Equal work: every way of getting the demand's tokens, cheapest first"
        console.print(_rich_table(title, RANKING_COLUMNS, ranking_rows(report)))
    # two narrower tables rather than one wide one, so an 80-100 column terminal copes
    headings = columns(report)
    rows = [astuple(option_row(costs)) for costs in by_cost(report)]
    for title, picked in (("Boxes: cost", COST_COLUMNS), ("Boxes: tokens", TOKEN_COLUMNS)):
        table = Table(title=title, title_justify="left")
        for index in picked:  # names and money never break mid-figure
            table.add_column(headings[index], overflow="fold", no_wrap=index in {0, 6, 8})
        for row in rows:
            table.add_row(*(row[index] for index in picked))
        console.print(table)
    console.print(LEGEND, highlight=False)
    engines = engine_rows(report)
    if engines:
        console.print(_rich_table(ENGINES_TITLE, ENGINE_COLUMNS, engines))
    if report.break_evens:
        console.print(_rich_table(BREAK_EVEN_TITLE, BREAK_EVEN_COLUMNS, break_even_rows(report)))
        note = shown_break_evens(report)[1]
        if note:
            console.print(note, highlight=False)
    if report.sensitivity:
        title = "Sensitivity: the cheapest option as each input moves (others at the scenario's)"
        console.print(_rich_table(title, SENSITIVITY_COLUMNS, sensitivity_rows(report)))
    if report.apis:
        console.print(_rich_table("Hosted APIs", API_COLUMNS, api_rows(report)))
    _print_list(console, "Where the numbers come from", provenance_lines(report))
    return buffer.getvalue()


def _print_list(console: Console, title: str, lines: Sequence[str]) -> None:
    console.print(f"[bold]{title}[/bold]")
    for line in lines:
        console.print(f"  {line}", highlight=False, markup=False)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


# a money or count cell (or the dash for none): such columns are right-aligned
_FIGURE = re.compile(r"^-?\$[\d,.]|^[\d,.]+M?$|^-$|^not priced$")


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A padded table, readable as plain text too; money and count columns right-aligned."""
    cells = [[_md_escape(cell) for cell in row] for row in rows]
    widths = [max(3, len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    right = [
        all(_FIGURE.match(row[i]) for row in cells)
        and any(row[i] not in {"-", "not priced"} for row in cells)
        for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|".join(
        "-" * (w + 1) + ":" if r else "-" * (w + 2) for w, r in zip(widths, right, strict=True)
    )
    return [line(columns), f"|{rule}|", *(line(row) for row in cells), ""]


def render_markdown(report: Report) -> str:
    lines = [f"# {report.scenario.name}", "", "## Verdict", ""]
    lines += [" ".join(verdict_lines(report)), ""]
    if report.scenario.description:
        lines += [report.scenario.description, ""]
    lines += [f"- {line}" for line in summary_lines(report)] + [""]
    if report.notes:
        lines += [f"## {NOTES_TITLE}", ""] + [f"- {_md_escape(n)}" for n in report.notes] + [""]
    if report.ranking:
        lines += ["## Equal work: every way of getting the demand's tokens, cheapest first", ""]
        lines += _md_table(RANKING_COLUMNS, ranking_rows(report))
    lines += ["## Boxes (per box, then the total for the demand)", ""]
    lines += _md_table(columns(report), [astuple(option_row(c)) for c in by_cost(report)])
    lines += [f"Marks: {LEGEND}.", ""]
    engines = engine_rows(report)
    if engines:
        lines += [f"## {ENGINES_TITLE}", ""]
        lines += _md_table(ENGINE_COLUMNS, engines)
    if report.break_evens:
        lines += [f"## {BREAK_EVEN_TITLE}", ""]
        lines += _md_table(BREAK_EVEN_COLUMNS, break_even_rows(report))
        note = shown_break_evens(report)[1]
        lines += [note, ""] if note else []
    if report.sensitivity:
        lines += ["## Sensitivity: the cheapest option as each input moves", ""]
        lines += _md_table(SENSITIVITY_COLUMNS, sensitivity_rows(report))
    if report.apis:
        lines += ["## Hosted APIs", ""]
        lines += _md_table(API_COLUMNS, api_rows(report))
    lines += ["## Where the numbers come from", ""]
    lines += [f"- {_md_escape(line)}" for line in provenance_lines(report)]
    return "\n".join(lines) + "\n"
