"""The terminal summary: one row per concurrency level."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from llmbox.bench.schema import BenchResult


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def results_table(results: Sequence[BenchResult]) -> Table:
    first = results[0].metadata if results else None
    title = "llmbox bench"
    if first is not None:
        quant = f" {first.model.quantization}" if first.model.quantization else ""
        title = (
            f"{first.host} · {first.engine.name} · {first.model.name}{quant} · "
            f"{first.settings.prompt_tokens} in / {first.settings.output_tokens} out tokens"
        )
    ceiling = first.engine_ceiling if first is not None else None
    table = Table(title=title, caption=_caption(results))
    for header in (
        "conc", "ok", "failed", "req/s", "out tok/s", "tok/s/stream",
        "TTFT p50 ms", "TTFT p99 ms", "ITL p50 ms", "ITL p99 ms", "e2e p50 ms", "e2e p99 ms",
        "GPU W", "tok/J", "CPU %",
    ):  # fmt: skip
        table.add_column(header, justify="right")
    if ceiling is not None:
        table.add_column("of llama-bench tg", justify="right")
    for result in results:
        m = result.metrics
        row = [
            str(result.metadata.settings.concurrency),
            str(m.completed),
            f"[red]{m.failed}[/]" if m.failed else "0",
            _num(m.request_per_s, 2),
            _num(m.output_tok_s),
            _num(m.output_tok_s_per_stream_mean),
            _num(m.ttft_ms_p50),
            _num(m.ttft_ms_p99),
            _num(m.itl_ms_p50, 2),
            _num(m.itl_ms_p99, 2),
            _num(m.e2e_ms_p50, 0),
            _num(m.e2e_ms_p99, 0),
            _num(m.gpu_power_w_mean),
            _num(m.tokens_per_joule, 2),
            _num(m.cpu_util_pct_mean, 0),
        ]
        if ceiling is not None:
            fraction = m.tg_fraction_of_ceiling
            row.append("—" if fraction is None else f"{fraction:.0%}")
        table.add_row(*row)
    return table


def _caption(results: Sequence[BenchResult]) -> str:
    if not results:
        return "no level finished"
    meta = results[0].metadata
    parts = [
        "all figures measured on this run",
        f"prompt length: {meta.settings.prompt_tokens_method.value}",
        f"output tokens from: {meta.settings.output_tokens_method.value}",
    ]
    if meta.gpu is None:
        parts.append(meta.gpu_note or "no GPU")
    if meta.engine_ceiling is not None:
        c = meta.engine_ceiling
        parts.append(f"llama-bench ceiling: tg {c.tg_tok_s:.1f} tok/s, pp {c.pp_tok_s:.1f} tok/s")
    return "; ".join(parts)
