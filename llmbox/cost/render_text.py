"""The report as a terminal table (rich) and as Markdown."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import astuple

from rich.console import Console
from rich.table import Table

from llmbox.cost.render_common import (
    LEGEND,
    break_even_rows,
    columns,
    option_row,
    provenance_lines,
    shown_break_evens,
    summary_lines,
    usd,
)
from llmbox.cost.report import Report

# indices into render_common.columns(): the terminal splits the option table in two
COST_COLUMNS = (0, 2, 3, 4, 5, 6, 8)  # option, GPU, fits, tok/s, price, monthly, $/1M
TOKEN_COLUMNS = (0, 1, 7, 9, 10)  # option, kind, tokens/month, boxes, same tokens on an API
BREAK_EVEN_COLUMNS = ("Buy (office)", "vs rent (cloud)", "Break-even at low price", "at high price")
API_COLUMNS = ("Hosted API", "$ per 1M tokens (with prompt tokens)", "At the demand", "Source")


def _api_rows(report: Report) -> list[tuple[str, str, str, str]]:
    return [
        (
            api.name,
            usd(api.usd_per_mtok),
            usd(api.demand_monthly_usd) if api.demand_monthly_usd is not None else "-",
            api.source,
        )
        for api in report.apis
    ]


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
    for line in summary_lines(report):
        console.print(line, highlight=False)
    # two narrower tables rather than one wide one, so an 80-100 column terminal copes
    headings = columns(report)
    rows = [astuple(option_row(costs)) for costs in report.options]
    for title, picked in (("Options: cost", COST_COLUMNS), ("Options: tokens", TOKEN_COLUMNS)):
        table = Table(title=title, title_justify="left")
        for index in picked:  # names and money never break mid-figure
            table.add_column(headings[index], overflow="fold", no_wrap=index in {0, 6, 8})
        for row in rows:
            table.add_row(*(row[index] for index in picked))
        console.print(table)
    console.print(LEGEND, highlight=False)
    if report.break_evens:
        table = Table(
            title="Break-even: first month the office box has cost no more", title_justify="left"
        )
        for column in BREAK_EVEN_COLUMNS:
            table.add_column(column)
        for row in break_even_rows(report):
            table.add_row(*row)
        console.print(table)
        note = shown_break_evens(report)[1]
        if note:
            console.print(note, highlight=False)
    if report.apis:
        table = Table(title="Hosted APIs for the same tokens", title_justify="left")
        for column in API_COLUMNS:
            table.add_column(column, overflow="fold")
        for api_row in _api_rows(report):
            table.add_row(*api_row)
        console.print(table)
    console.print("[bold]Where the numbers come from[/bold]")
    for line in provenance_lines(report):
        console.print(f"  {line}", highlight=False, markup=False)
    return buffer.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_escape(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    lines = [f"# {report.scenario.name}", ""]
    if report.scenario.description:
        lines += [report.scenario.description, ""]
    lines += [f"- {line}" for line in summary_lines(report)] + [""]
    lines += ["## Options", ""]
    lines += _md_table(columns(report), [astuple(option_row(c)) for c in report.options])
    lines += [f"Marks: {LEGEND}.", ""]
    if report.break_evens:
        lines += ["## Break-even (buy vs rent)", ""]
        lines += _md_table(BREAK_EVEN_COLUMNS, list(break_even_rows(report)))
        note = shown_break_evens(report)[1]
        lines += [note, ""] if note else []
    if report.apis:
        lines += ["## Hosted APIs for the same tokens", ""]
        lines += _md_table(API_COLUMNS, list(_api_rows(report)))
    lines += ["## Where the numbers come from", ""]
    lines += [f"- {_md_escape(line)}" for line in provenance_lines(report)]
    return "\n".join(lines) + "\n"
