"""The HTML report as a person sees it: rendered by a real browser (Debian's chromium,
driven by Playwright) at a desktop and a phone width, for the seed and for an
eight-option scenario. Screenshots go to out/screenshots/ for review (CI keeps out/).

The browser test is marked ``real_browser``: with chromium missing it fails, naming the
setup step, rather than skipping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmbox.cost import charts
from llmbox.cost.render_html import render_html
from llmbox.cost.report import Report, build_report
from llmbox.cost.scenario import load_scenario, parse_scenario

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parents[2] / "out" / "screenshots"
WIDTHS = {"desktop": (1400, 900), "phone": (420, 860)}
EIGHT = {
    "name": "Eight options: office builds, cloud instances and APIs",
    "usage": {"hours_per_day": 10, "days_per_month": 22, "demand_tokens_per_month": 150e6},
    # a 24k context: 8.3 GiB, too much for the 8 GiB cards (RTX 4060, RTX 3070)
    "model": {"name": "Llama 3 8B", "quantization": "Q4_K_M", "context_tokens": 24576},
    "electricity_usd_per_kwh": 0.25,
    "amortisation_months": 36,
    "horizon_months": 36,
    "options": [
        {"hardware": "pc-i9-13900k-rtx4060"},
        {"hardware": "pc-i7-13700k-rtx3060"},
        {"hardware": "rtx5090-box-pan-et-al"},
        {"name": "ws-rtx4090", "kind": "office", "gpu": "RTX 4090", "price_usd": 2600},
        {"name": "ws-2x-rtx3090", "kind": "office", "gpu": "RTX 3090", "gpu_count": 2,
         "price_usd": 2400},
        {"name": "tiny-rtx3070", "kind": "office", "gpu": "RTX 3070", "price_usd": 600},
        {"cloud": "rented-rtx-4090"},
        {"cloud": "g5.xlarge"},
        {"cloud": "g6.xlarge", "spot": True},
        {"cloud": "g4dn.xlarge"},
    ],
    "apis": ["deepinfra-llama-3.1-8b-instruct", "together-llama-3.1-8b-instruct", "gpt-5"],
}  # fmt: skip
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _seed() -> Report:
    return build_report(load_scenario(None))


def _eight() -> Report:
    return build_report(parse_scenario(EIGHT))


def test_same_report_twice_is_byte_identical() -> None:
    assert render_html(_eight()) == render_html(_eight())
    assert render_html(_seed()) == render_html(_seed())


@pytest.mark.parametrize("build", [_seed, _eight])
def test_every_element_id_is_unique(build: Any) -> None:
    ids = re.findall(r'\sid="([^"]+)"', render_html(build()))
    assert len(ids) > 50
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_svgs_carry_no_date_and_say_what_is_left_out() -> None:
    html = render_html(_eight())
    assert "<dc:date>" not in html  # matplotlib's timestamp, dropped
    assert re.search(r"Report date \d{4}-\d{2}-\d{2}", html)
    assert "catalog as of 2023-07-29 to " in html
    assert "tiny-rtx3070: the model does not fit" in html  # 8.3 GiB on an 8 GiB card
    # two boxes at about $1-3 per 1M: GPT-5's $11.25 would squash their bars
    pair = {**EIGHT, "options": EIGHT["options"][1:2] + EIGHT["options"][6:7], "apis": ["gpt-5"]}
    assert "left out for scale: $11.25 per 1M" in render_html(build_report(parse_scenario(pair)))
    assert '<meta name="viewport"' in html


def test_eight_options_each_get_their_own_colour() -> None:
    report = _eight()
    colours = charts.swatches(report)
    assert len(colours) >= 8
    assert len({s.colour for s in colours.values()}) == len(colours)


def test_the_date_comes_from_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01T00:00:00Z
    assert "Report date 2026-01-01 (SOURCE_DATE_EPOCH)" in render_html(_seed())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.d/20-browser.sh (installs chromium)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        pytest.fail("playwright is missing: it is in the dev group (pip install --group dev)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


# JavaScript run in the page: every pair of SVG text boxes (screen rectangles) that
# overlap by more than half a pixel each way, per chart
_OVERLAPS = """() => {
  const found = [];
  for (const svg of document.querySelectorAll('figure svg')) {
    const boxes = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim())
      .map(t => [t.textContent.trim(), t.getBoundingClientRect()]);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, r] = boxes[i], [b, s] = boxes[j];
      const w = Math.min(r.right, s.right) - Math.max(r.left, s.left);
      const h = Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top);
      if (w > 0.5 && h > 0.5) found.push(`${svg.closest('figure').id}: "${a}" x "${b}"`);
    }
  }
  return found;
}"""
# each option's colour in each chart: the stroke, or the fill, of its elements
_COLOURS = """() => {
  const found = {};
  for (const g of document.querySelectorAll('figure [id*="opt-"]')) {
    const key = g.id.match(/opt-(o\\d+)-/)[1];
    const chart = g.closest('figure').id;
    for (const path of [...g.querySelectorAll("path")].filter(p => !p.closest("defs"))) {
      const style = getComputedStyle(path);
      const colour = style.stroke !== 'none' ? style.stroke : style.fill;
      if (colour.startsWith('url')) continue;
      (found[key] ??= {})[chart] ??= [];
      found[key][chart].push(colour);
    }
  }
  return found;
}"""


def _rgb(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


@pytest.mark.real_browser
@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("name", ["seed", "eight"])
def test_page_in_a_real_browser(browser: Any, tmp_path: Path, name: str, width: str) -> None:
    report = _seed() if name == "seed" else _eight()
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    size = WIDTHS[width]
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"))
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}-full.png"), full_page=True)
    assert errors == []
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    verdict = page.locator("#verdict").bounding_box()
    assert verdict is not None and verdict["y"] >= 0
    assert verdict["y"] + verdict["height"] <= size[1], "verdict not in the first viewport"
    assert page.evaluate(_OVERLAPS) == []
    seen = page.evaluate(_COLOURS)
    for option, swatch in charts.swatches(report).items():
        by_chart = seen.get(swatch.key, {})
        assert len(by_chart) >= 1, f"{option} is in no chart"
        colours = {c for found in by_chart.values() for c in found}
        assert colours == {_rgb(swatch.colour)}, (option, by_chart)
    bought = [c.option.name for c in charts.charted_options(report) if c.option.kind == "office"]
    assert all(len(seen[charts.swatches(report)[n].key]) == 3 for n in bought)  # every chart
    page.close()
