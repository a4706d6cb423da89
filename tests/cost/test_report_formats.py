"""How the text and data formats write figures: padded Markdown tables with money
right-aligned, CSV numbers in full and booleans as true/false, one JSON "never"."""

from __future__ import annotations

import csv
import io
import json
import re

from llmbox.cost.render_data import render_csv, render_json
from llmbox.cost.render_text import render_markdown
from llmbox.cost.report import build_report
from llmbox.cost.scenario import load_scenario


def test_markdown_tables_are_padded_with_money_right_aligned() -> None:
    markdown = render_markdown(build_report(load_scenario(None)))
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    ranking = table[: table.index(next(t for t in table if t.startswith("| Option ")))]
    assert len({len(line) for line in ranking}) == 1  # every row as wide as the header
    rule = next(line for line in markdown.splitlines() if line.startswith("|----:"))
    cells = rule.strip("|").split("|")
    # "#" and the four money columns end in ":" (right), option/kind/how do not
    assert [c.endswith(":") for c in cells] == [True, False, False, False, True, True, True, True]
    assert re.search(r"\|\s+\$83\.20-187\.20 \|", markdown)  # right-aligned: spaces before


def test_csv_writes_numbers_in_full_and_booleans_as_true_false() -> None:
    text = render_csv(build_report(load_scenario(None)))
    assert "e+" not in text and "e-0" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    cloud = next(r for r in rows if r["Option"] == "rented-rtx-4090")
    assert cloud["TokensPerMonthPerBox"] == "97778304"  # 130.58 tok/s x 3600 x 208 h
    assert cloud["MonthlyUsdLow"] == "83.2"
    assert {r["FitsModel"] for r in rows if r["Kind"] != "api"} == {"true"}


def test_json_never_is_null_within_the_horizon_everywhere() -> None:
    data = json.loads(render_json(build_report(load_scenario(None))))
    horizon = data["horizon_months"]
    assert horizon == 36
    for pair in data["break_evens"] + [data["verdict"]["payback"]]:
        assert pair["horizon_months"] == horizon
        months = [v for k, v in pair.items() if k.startswith(("month_", "fractional_", "per_box"))]
        sweep = pair["month_vs_high_price_by_hours_per_day"]
        for value in [m for m in months if not isinstance(m, dict)] + list(sweep.values()):
            assert value is None or 0 < value <= horizon
        # a fractional month is null exactly when its month is
        assert (pair["month_vs_low_price"] is None) == (
            pair["fractional_month_vs_low_price"] is None
        )
