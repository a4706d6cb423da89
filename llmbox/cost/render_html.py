"""The report as one self-contained HTML page: tables, inline SVG charts, no external files.

The page is the Jinja2 template ``templates/report.html.j2`` (autoescaped); this module
only gathers what it shows. Identical input gives identical bytes: no clock, no random
ids (the date shown comes from the inputs, see ``report_date``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import astuple
from typing import Any

import jinja2
from markupsafe import Markup

from llmbox import __version__
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
    power_text,
    provenance_groups,
    ranking_rows,
    sensitivity_rows,
    shown_break_evens,
    summary_lines,
    verdict_lines,
)
from llmbox.cost.render_engines import ENGINE_COLUMNS, ENGINES_TITLE, engine_rows
from llmbox.cost.render_text import API_COLUMNS, BREAK_EVEN_TITLE, api_rows
from llmbox.cost.report import Report
from llmbox.cost.report_date import catalog_dates, report_date

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1rem auto; max-width: 90rem; color: #222;
       padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.5rem; margin: 0.5rem 0; } h2 { font-size: 1.2rem; }
.scroll { overflow-x: auto; max-width: 100%; margin: 0.5rem 0 1.5rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; white-space: nowrap; }
td.no { color: #b00; font-weight: bold; }
figure { margin: 1rem 0; } .chart { overflow-x: auto; }
.chart svg { display: block; max-width: 100%; height: auto; }
.legend, figcaption, .meta { color: #555; font-size: 0.85rem; }
.verdict { border-left: 4px solid #2a6; background: #f4faf6; padding: 0.25rem 1rem; }
.verdict h2 { margin: 0.4rem 0; } .verdict p { margin: 0.4rem 0; }
summary { cursor: pointer; } summary h2 { display: inline; }
@media (max-width: 40rem) {
  body { padding: 0 0.6rem; margin-top: 0.5rem; } h1 { font-size: 1.25rem; }
  .verdict { padding: 0.1rem 0.6rem; font-size: 0.95rem; }
  /* charts keep a legible size on a phone and scroll sideways inside their frame */
  .chart svg { max-width: none; width: 36rem; }
}
@media print { .scroll, .chart { overflow: visible; } .chart svg { width: 100%; } }
"""
_MONEY = re.compile(r"^-?\$|^[\d,.]+$|^x\d|^-$")  # money, counts, the dash for none
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("llmbox.cost", "templates"),
    autoescape=True,  # every string the page shows is escaped; only the SVGs are marked safe
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def _cell(text: str) -> tuple[str, str]:
    if text.startswith("NO"):
        return text, "no"
    return text, "num" if _MONEY.match(text) else ""


def _table(ident: str, title: str, heads: Sequence[str], rows: Sequence[Sequence[str]],
           after: Sequence[str] = ()) -> dict[str, Any]:  # fmt: skip
    return {
        "id": ident, "title": title, "label": title, "columns": list(heads),
        "rows": [[_cell(cell) for cell in row] for row in rows], "after": list(after),
    }  # fmt: skip


def _tables(report: Report) -> list[dict[str, Any]]:
    found = []
    if report.ranking:
        title = "Equal work: every way of getting the demand's tokens, cheapest first"
        found.append(_table("ranking", title, RANKING_COLUMNS, ranking_rows(report)))
    heads = (*columns(report), "Power under load per box")
    rows = [(*astuple(option_row(c)), power_text(c)) for c in by_cost(report)]
    title = "Boxes (per box, then the total for the demand)"
    found.append(_table("boxes", title, heads, rows, [f"Marks: {LEGEND}."]))
    engines = engine_rows(report)
    if engines:
        found.append(_table("engines", ENGINES_TITLE, ENGINE_COLUMNS, engines,
                            [f"Marks: {LEGEND}."]))  # fmt: skip
    if report.break_evens:
        note = shown_break_evens(report)[1]
        found.append(_table("break-even", BREAK_EVEN_TITLE, BREAK_EVEN_COLUMNS,
                            break_even_rows(report), [note] if note else []))  # fmt: skip
    if report.sensitivity:
        title = "Sensitivity: the cheapest option as each input moves"
        found.append(_table("sensitivity", title, SENSITIVITY_COLUMNS, sensitivity_rows(report)))
    return found


def _charts(report: Report) -> list[dict[str, Any]]:
    cloud, api = charts.cheapest_rentals(report)
    against = " and ".join(f"the cheapest {k}, {n}" for k, n in (("cloud", cloud), ("API", api))
                           if n)  # fmt: skip
    found = [
        ("chart-cumulative", charts.cumulative_cost_chart(report),
         "All for the same tokens: each purchase (boxes for the demand bought up front, then "
         f"electricity) against {against or 'the rentals'}; a cloud rental's band runs from "
         "its low to its high price. Every option is in the next chart and the tables."),
        ("chart-per-mtok", charts.cost_per_mtok_chart(report),
         "Monthly cost for the demand / the demand's tokens x 1e6, each option in its colour "
         "of every chart."),
    ]  # fmt: skip
    if report.break_evens:
        found.append(("chart-hours", charts.break_even_by_hours_chart(report),
                      "More use per day pays a purchase back sooner; above the horizon it "
                      "never does."))  # fmt: skip
    return [{"id": i, "svg": Markup(svg), "caption": c} for i, svg, c in found]


def render_html(report: Report) -> str:
    scenario = report.scenario
    date, basis = report_date(report)
    dates = catalog_dates(report)
    after = []
    if report.apis:
        after.append(_table("apis", "Hosted APIs", API_COLUMNS, api_rows(report)))
    return _ENV.get_template("report.html.j2").render(
        name=scenario.name, style=Markup(_STYLE), version=__version__,
        verdict=verdict_lines(report), date=date, date_basis=basis,
        catalog_dates=f"{dates[0]} to {dates[-1]}" if len(dates) > 1 else (dates or ["-"])[0],
        description=scenario.description, summary=summary_lines(report),
        notes=list(report.notes), notes_title=NOTES_TITLE, tables=_tables(report),
        left_out=charts.left_out(report), charts=_charts(report), after_charts=after,
        provenance=provenance_groups(report),
    )  # fmt: skip
