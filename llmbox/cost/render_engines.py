"""The engines measured on one host, side by side (llama.cpp against vLLM on the same box).

A host whose bench runs name several engines is one report option per engine
(``llmbox.cost.hosts``): same hardware, same price, each with the throughput of its own
engine's runs. This table puts those options next to each other, with the engine and
its version the server reported, the tok/s with its provenance mark, and what a million
tokens costs on the box at that speed.
"""

from __future__ import annotations

from llmbox.cost.render_common import marked, usd_range
from llmbox.cost.report import OptionCosts, Report

ENGINES_TITLE = "Engines measured on the same host"
ENGINE_COLUMNS = (
    "Host",
    "Engine",
    "Option",
    "tok/s per box",
    "$ per 1M, box busy (at that tok/s)",
    "Where the tok/s comes from",
)


def _engine_text(costs: OptionCosts) -> str:
    option = costs.option
    engine = option.engine or "not recorded"
    return f"{engine} {option.engine_version}" if option.engine_version else engine


def same_host_engines(report: Report) -> list[list[OptionCosts]]:
    """The options of each host measured with more than one engine, host by host."""
    by_host: dict[str, list[OptionCosts]] = {}
    for costs in report.options:
        if costs.option.host is not None and costs.option.engine is not None:
            by_host.setdefault(costs.option.host, []).append(costs)
    return [
        sorted(group, key=lambda c: str(c.option.engine))
        for _, group in sorted(by_host.items())
        if len({c.option.engine for c in group}) > 1
    ]


def engine_rows(report: Report) -> list[tuple[str, ...]]:
    """One row per (host, engine); empty when no host was measured with two engines."""
    rows: list[tuple[str, ...]] = []
    for group in same_host_engines(report):
        for costs in group:
            option = costs.option
            tok_s = marked(f"{option.throughput.value:,.1f}", option.throughput)
            rows.append((
                str(option.host), _engine_text(costs), option.name,
                f"{tok_s} ({option.load_label()})",
                usd_range(costs.usd_per_mtok_low, costs.usd_per_mtok_high),
                option.throughput.label,
            ))  # fmt: skip
    return rows
