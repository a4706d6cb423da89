"""The report as one self-contained HTML page: tables, inline SVG charts, no external files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple
from html import escape

from llmbox.cost import charts
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
from llmbox.cost.render_text import API_COLUMNS, BREAK_EVEN_COLUMNS
from llmbox.cost.report import Report

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
td.no { color: #b00; font-weight: bold; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
.legend, figcaption { color: #555; font-size: 0.85rem; }
"""


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="no">{escape(cell)}</td>'
            if cell.startswith("NO")
            else f"<td>{escape(cell)}</td>"
            for cell in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def render_html(report: Report) -> str:
    scenario = report.scenario
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(scenario.name)} - llmbox report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(scenario.name)}</h1>",
    ]
    if scenario.description:
        parts.append(f"<p>{escape(scenario.description)}</p>")
    parts.append(
        "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in summary_lines(report)) + "</ul>"
    )
    parts.append("<h2>Options</h2>")
    parts.append(_table(columns(report), [astuple(option_row(c)) for c in report.options]))
    parts.append(f'<p class="legend">Marks: {escape(LEGEND)}.</p>')
    if report.break_evens:
        parts.append("<h2>Break-even: buy vs rent</h2>")
        parts.append(_table(BREAK_EVEN_COLUMNS, list(break_even_rows(report))))
        note = shown_break_evens(report)[1]
        if note:
            parts.append(f'<p class="legend">{escape(note)}</p>')
    parts.append("<h2>Charts</h2>")
    charted = len(charts.charted_options(report))
    priced = sum(1 for c in report.options if c.priced)
    if charted < priced:
        parts.append(
            f'<p class="legend">Charts show {charted} of {priced} priced options, the cheapest '
            "per 1M tokens of each kind; the tables list them all.</p>"
        )
    parts.append(
        _figure(
            charts.cumulative_cost_chart(report),
            "Office: purchase up front, then electricity each month. Cloud: rent each month.",
        )
    )
    parts.append(
        _figure(charts.cost_per_mtok_chart(report), "Monthly cost / tokens generated x 1e6.")
    )
    if report.break_evens:
        parts.append(
            _figure(
                charts.break_even_by_hours_chart(report),
                "More use per day pays a purchase back sooner.",
            )
        )
    if report.apis:
        parts.append("<h2>Hosted APIs for the same tokens</h2>")
        rows = [
            (api.name, usd(api.usd_per_mtok),
             usd(api.demand_monthly_usd) if api.demand_monthly_usd is not None else "-", api.source)
            for api in report.apis
        ]  # fmt: skip
        parts.append(_table(API_COLUMNS, rows))
    parts.append("<h2>Where the numbers come from</h2>")
    parts.append(
        "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in provenance_lines(report)) + "</ul>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
