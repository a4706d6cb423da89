"""The report as one self-contained HTML page: tables, inline SVG charts, no external files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple
from html import escape

from llmbox.cost import charts
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
    verdict_lines,
)
from llmbox.cost.render_text import API_COLUMNS, BREAK_EVEN_TITLE, api_rows
from llmbox.cost.report import Report

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
td.no { color: #b00; font-weight: bold; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
.legend, figcaption { color: #555; font-size: 0.85rem; }
.verdict { border-left: 4px solid #2a6; background: #f4faf6; padding: 0.5rem 1rem; }
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
        '<section class="verdict"><h2>Verdict</h2>'
        + "".join(f"<p>{escape(line)}</p>" for line in verdict_lines(report))
        + "</section>",
    ]
    if scenario.description:
        parts.append(f"<p>{escape(scenario.description)}</p>")
    parts.append(
        "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in summary_lines(report)) + "</ul>"
    )
    if report.notes:
        parts.append(f"<h2>{escape(NOTES_TITLE)}</h2>")
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>")
    if report.ranking:
        parts.append(
            "<h2>Equal work: every way of getting the demand's tokens, cheapest first</h2>"
        )
        parts.append(_table(RANKING_COLUMNS, ranking_rows(report)))
    parts.append("<h2>Boxes (per box, then the total for the demand)</h2>")
    parts.append(_table(columns(report), [astuple(option_row(c)) for c in by_cost(report)]))
    parts.append(f'<p class="legend">Marks: {escape(LEGEND)}.</p>')
    if report.break_evens:
        parts.append(f"<h2>{escape(BREAK_EVEN_TITLE)}</h2>")
        parts.append(_table(BREAK_EVEN_COLUMNS, list(break_even_rows(report))))
        note = shown_break_evens(report)[1]
        if note:
            parts.append(f'<p class="legend">{escape(note)}</p>')
    if report.sensitivity:
        parts.append("<h2>Sensitivity: the cheapest option as each input moves</h2>")
        parts.append(_table(SENSITIVITY_COLUMNS, sensitivity_rows(report)))
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
            "All for the same tokens: office boxes for the demand bought up front, then "
            "electricity; cloud instances for the demand rented each month; hosted APIs billed "
            "for the demand.",
        )
    )
    parts.append(
        _figure(
            charts.cost_per_mtok_chart(report),
            "Monthly cost for the demand / the demand's tokens x 1e6.",
        )
    )
    if report.break_evens:
        parts.append(
            _figure(
                charts.break_even_by_hours_chart(report),
                "More use per day pays a purchase back sooner.",
            )
        )
    if report.apis:
        parts.append("<h2>Hosted APIs</h2>")
        parts.append(_table(API_COLUMNS, api_rows(report)))
    parts.append("<h2>Where the numbers come from</h2>")
    parts.append(
        "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in provenance_lines(report)) + "</ul>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
