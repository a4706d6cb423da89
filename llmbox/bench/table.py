"""The terminal summary: one row per concurrency level.

Fifteen columns do not fit 80 characters, and output piped to a file or a CI log is 80
characters wide (rich's default when it finds no terminal, unless ``COLUMNS`` says
otherwise). Squeezed into that, every header and figure became ``c…``. So the columns
come in groups (load, latency, resources), each with the concurrency column, and the
summary prints as one table where it fits the width it is rendered at, else as one table
per group that fits: every header and figure stays whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from llmbox.bench.schema import BenchResult


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


@dataclass(frozen=True)
class _Column:
    header: str
    cell: Callable[[BenchResult], str]


def _fraction(result: BenchResult) -> str:
    fraction = result.metrics.tg_fraction_of_ceiling
    return "—" if fraction is None else f"{fraction:.0%}"


def _groups(results: Sequence[BenchResult], with_ceiling: bool) -> list[list[_Column]]:
    """Column groups, each read on its own; headers break before their unit or percentile."""
    open_loop = [
        _Column("req/s\nasked", lambda r: _num(r.metadata.settings.request_rate, 2)),
        _Column("req/s\nsent", lambda r: _num(r.metrics.request_rate_achieved, 2)),
    ]
    good = [
        _Column("good\nreq/s", lambda r: _num(r.metrics.goodput_request_per_s, 2)),
        _Column("good\ntok/s", lambda r: _num(r.metrics.goodput_output_tok_s)),
    ]
    load = [
        _Column("ok", lambda r: str(r.metrics.completed)),
        _Column("failed", lambda r: f"[red]{r.metrics.failed}[/]" if r.metrics.failed else "0"),
        _Column("req/s", lambda r: _num(r.metrics.request_per_s, 2)),
        _Column("out\ntok/s", lambda r: _num(r.metrics.output_tok_s)),
        _Column("tok/s\n/stream", lambda r: _num(r.metrics.output_tok_s_per_stream_mean)),
    ]
    latency = [
        _Column("TTFT ms\np50", lambda r: _num(r.metrics.ttft_ms_p50)),
        _Column("TTFT ms\np99", lambda r: _num(r.metrics.ttft_ms_p99)),
        _Column("ITL ms\np50", lambda r: _num(r.metrics.itl_ms_p50, 2)),
        _Column("ITL ms\np99", lambda r: _num(r.metrics.itl_ms_p99, 2)),
        _Column("e2e ms\np50", lambda r: _num(r.metrics.e2e_ms_p50, 0)),
        _Column("e2e ms\np99", lambda r: _num(r.metrics.e2e_ms_p99, 0)),
    ]
    resources = [
        _Column("GPU W", lambda r: _num(r.metrics.gpu_power_w_mean)),
        _Column("tok/J", lambda r: _num(r.metrics.tokens_per_joule, 2)),
        _Column("CPU %", lambda r: _num(r.metrics.cpu_util_pct_mean, 0)),
    ]
    if with_ceiling:
        resources.append(_Column("of llama-\nbench tg", _fraction))
    groups = [load, latency, resources]
    if any(r.metadata.settings.request_rate is not None for r in results):
        groups.insert(1, open_loop)
    if any(r.metrics.goodput_request_per_s is not None for r in results):
        groups.insert(1, good)
    return groups


_UNBOUNDED = 10_000  # characters: room enough to measure a table at its natural width
_CONC = _Column("conc", lambda r: str(r.metadata.settings.concurrency))
# An open-loop run's level is its rate (the "req/s asked" column has it in full).
_RATE = _Column("rate", lambda r: f"{r.metadata.settings.request_rate or 0:g}/s")


class ResultsTable:
    """A rich renderable: a title line, one table if it fits the width it is rendered at
    (else one per column group), a caption line saying where the figures come from."""

    def __init__(self, results: Sequence[BenchResult]) -> None:
        self.results = list(results)
        first = self.results[0].metadata if self.results else None
        self.groups = _groups(self.results, first is not None and first.engine_ceiling is not None)
        closed = all(r.metadata.settings.request_rate is None for r in self.results)
        self.level = _CONC if closed else _RATE

    def _table(self, columns: Sequence[_Column]) -> Table:
        table = Table()
        for column in (self.level, *columns):
            table.add_column(column.header, justify="right", no_wrap=True)
        for result in self.results:
            table.add_row(*(column.cell(result) for column in (self.level, *columns)))
        return table

    def _width(self, console: Console, options: ConsoleOptions, columns: list[_Column]) -> int:
        """The width the columns take with nothing cut or wrapped."""
        table = self._table(columns)
        return Measurement.get(console, options.update_width(_UNBOUNDED), table).maximum

    def layout(self, console: Console, options: ConsoleOptions) -> list[list[_Column]]:
        """The column groups packed, in order, into as few tables as fit the width."""
        packed: list[list[_Column]] = []
        for group in self.groups:
            if packed and self._width(console, options, [*packed[-1], *group]) <= options.max_width:
                packed[-1] = [*packed[-1], *group]
            else:
                packed.append(list(group))
        return packed

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table | Text]:
        # Title and caption as lines of their own: they wrap at the console's width, not
        # at the width of the narrowest table.
        yield Text(_title(self.results), style="bold")
        for columns in self.layout(console, options):
            yield self._table(columns)
        yield Text(_caption(self.results), style="dim")


def results_table(results: Sequence[BenchResult]) -> ResultsTable:
    return ResultsTable(results)


def _title(results: Sequence[BenchResult]) -> str:
    if not results:
        return "llmbox bench"
    first = results[0].metadata
    quant = f" {first.model.quantization}" if first.model.quantization else ""
    return (
        f"{first.host} · {first.engine.name} · {first.model.name}{quant} · "
        f"{first.settings.prompt_tokens} in / {first.settings.output_tokens} out tokens"
    )


def _caption(results: Sequence[BenchResult]) -> str:
    if not results:
        return "no level finished"
    meta = results[0].metadata
    parts = [
        "all figures measured on this run",
        f"prompt length: {meta.settings.prompt_tokens_method.value}",
        f"output tokens from: {meta.settings.output_tokens_method.value}",
    ]
    if meta.settings.seed is not None:
        parts.append(f"prompt seed: {meta.settings.seed}")
    if meta.settings.arrivals is not None:
        parts.append(f"open loop, {meta.settings.arrivals.value} arrivals")
    if meta.settings.slo_ttft_ms is not None or meta.settings.slo_itl_ms is not None:
        limits = [f"TTFT ≤ {meta.settings.slo_ttft_ms:g} ms"] if meta.settings.slo_ttft_ms else []
        limits += (
            [f"mean ITL ≤ {meta.settings.slo_itl_ms:g} ms"] if meta.settings.slo_itl_ms else []
        )
        parts.append(f"good: each request's own {' and '.join(limits)}")
    if meta.gpu is None:
        parts.append(meta.gpu_note or "no GPU")
    if meta.engine_ceiling is not None:
        c = meta.engine_ceiling
        parts.append(f"llama-bench ceiling: tg {c.tg_tok_s:.1f} tok/s, pp {c.pp_tok_s:.1f} tok/s")
    return "; ".join(parts)
