"""The sweep: warm up, then per level (a concurrency, or an open-loop request rate) stream
requests, sample telemetry, reduce, and write the level's result file before the next.

Results are written level by level, so a server that dies mid-sweep still leaves every
finished level (and the broken one, failures counted) on disk.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from llmbox import __version__
from llmbox.bench import hostinfo
from llmbox.bench.client import (
    BenchError,
    RequestSpec,
    auth_headers,
    check_server,
    server_props,
    stream_request,
    tls_verify,
)
from llmbox.bench.load import STOP_SIGNALS, StopRequest, run_load
from llmbox.bench.metrics import (
    RequestRecord,
    ServiceLevel,
    first_error,
    goodput,
    reduce_records,
    weakest_output_method,
)
from llmbox.bench.prompts import PromptSet, build_prompts, new_seed
from llmbox.bench.schema import (
    Arrivals,
    BenchResult,
    Endpoint,
    EngineCeiling,
    GpuInfo,
    Metadata,
    Metrics,
    Settings,
    write_result,
)
from llmbox.bench.telemetry import GpuSource, TelemetrySampler, TelemetrySummary, detect_gpu

_PROMPT_POOL = 64  # distinct prompts per run; requests beyond that reuse them in turn


@dataclass(frozen=True)
class BenchConfig:
    url: str
    model: str
    api_key: str | None
    concurrency: tuple[int, ...]
    requests: int | None
    duration_s: float | None
    prompt_tokens: int
    output_tokens: int
    endpoint: Endpoint
    out_dir: Path
    host_label: str
    model_file: Path | None = None
    warmup_requests: int = 2
    per_request: bool = False
    ceiling: EngineCeiling | None = None
    request_timeout_s: float = 300.0
    # Prompt seed; None draws a fresh one, so a second run never meets the first's prompts.
    seed: int | None = None
    # Open loop: when given, one level per request rate replaces the concurrency sweep.
    rates: tuple[float, ...] = ()
    arrivals: Arrivals = Arrivals.POISSON
    # Goodput counts the requests that met this; None: no goodput figures.
    service_level: ServiceLevel | None = None
    # CA certificates an https endpoint is verified against; None: the system's store.
    ca_file: Path | None = None

    def levels(self) -> list[tuple[int | None, float | None]]:
        """(concurrency, request rate) per level, one of the two set."""
        if self.rates:
            return [(None, rate) for rate in self.rates]
        return [(concurrency, None) for concurrency in self.concurrency]


@dataclass
class SweepOutcome:
    results: list[BenchResult] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    error: str | None = None  # set when any request failed or the sweep stopped early
    stopped_by: signal.Signals | None = None  # Ctrl-C (SIGINT) or SIGTERM during the sweep


class _ProgressUpdater:
    """Advances a level's bar by requests (--requests) or by seconds (--duration)."""

    def __init__(self, progress: Progress, task: TaskID, by_requests: bool) -> None:
        self._progress = progress
        self._task = task
        self._by_requests = by_requests
        self._ok = 0
        self._failed = 0

    def __call__(self, record: RequestRecord, elapsed_s: float) -> None:
        self._ok += record.ok
        self._failed += not record.ok
        done = self._ok + self._failed if self._by_requests else elapsed_s
        status = f"ok {self._ok}  failed {self._failed}"
        self._progress.update(self._task, completed=done, status=status)


def level_metrics(
    records: list[RequestRecord],
    duration_s: float,
    telemetry: TelemetrySummary,
    ceiling: EngineCeiling | None,
    *,
    service_level: ServiceLevel | None = None,
    request_rate_achieved: float | None = None,
) -> Metrics:
    load = reduce_records(records, duration_s) | goodput(records, duration_s, service_level)
    energy = telemetry.gpu_energy_j
    output_tokens = sum(r.output_tokens for r in records if r.ok)
    per_stream = load["output_tok_s_per_stream_mean"]
    return Metrics(
        **load,
        gpu_power_w_mean=telemetry.gpu_power_w_mean,
        gpu_util_pct_mean=telemetry.gpu_util_pct_mean,
        gpu_mem_used_mib_max=telemetry.gpu_mem_used_mib_max,
        gpu_energy_j=energy,
        gpu_temp_c_max=telemetry.gpu_temp_c_max,
        gpu_sm_clock_mhz_mean=telemetry.gpu_sm_clock_mhz_mean,
        tokens_per_joule=output_tokens / energy if energy else None,
        cpu_util_pct_mean=telemetry.cpu_util_pct_mean,
        mem_used_mib_max=telemetry.mem_used_mib_max,
        tg_fraction_of_ceiling=(
            per_stream / ceiling.tg_tok_s if ceiling is not None and per_stream else None
        ),
        request_rate_achieved=request_rate_achieved,
    )


def _settings(
    config: BenchConfig,
    concurrency: int | None,
    rate: float | None,
    prompts: PromptSet,
    records: list[RequestRecord],
    *,
    seed: int,
    no_cache: bool,
    stopped_by: signal.Signals | None,
) -> Settings:
    level = config.service_level
    return Settings(
        url=config.url,
        endpoint=config.endpoint,
        concurrency=concurrency,
        requests=config.requests,
        duration_s=config.duration_s,
        prompt_tokens=config.prompt_tokens,
        output_tokens=config.output_tokens,
        prompt_tokens_method=prompts.method,
        output_tokens_method=weakest_output_method(records),
        warmup_requests=config.warmup_requests,
        seed=seed,
        cache_prompt=False if no_cache else None,
        request_rate=rate,
        arrivals=config.arrivals if rate is not None else None,
        slo_ttft_ms=level.ttft_ms if level else None,
        slo_itl_ms=level.itl_ms if level else None,
        stopped_by=stopped_by.name if stopped_by else None,
    )


async def _level_error(
    client: httpx.AsyncClient,
    url: str,
    records: list[RequestRecord],
    concurrency: int | None,
    rate: float | None,
) -> tuple[str | None, bool]:
    """The level's error (None when no request failed), and whether the server is gone."""
    failed = [r for r in records if not r.ok]
    if not failed:
        return None, False
    level_error = (
        f"{len(failed)} of {len(records)} requests failed at "
        f"{f'concurrency {concurrency}' if rate is None else f'rate {rate:g} req/s'}; "
        f"first error: {first_error(records)}"
    )
    try:
        await check_server(client, url)
    except BenchError as exc:
        return f"server at {url} stopped answering ({exc}); {level_error}", True
    return level_error, False


async def _sweep(
    config: BenchConfig,
    console: Console,
    gpu_found: tuple[GpuInfo | None, str | None, GpuSource | None],
    stop: StopRequest,
) -> SweepOutcome:
    outcome = SweepOutcome()
    gpu, gpu_note, gpu_source = gpu_found
    sampler = TelemetrySampler(gpu_source)
    # Open loop: no connection cap, or the client would queue what the server should.
    limits = httpx.Limits(max_connections=None if config.rates else max(config.concurrency) + 4)
    timeout = httpx.Timeout(config.request_timeout_s, connect=10.0)
    async with httpx.AsyncClient(
        headers=auth_headers(config.api_key),
        limits=limits,
        timeout=timeout,
        verify=tls_verify(config.ca_file),
    ) as client:
        models = await check_server(client, config.url)
        props = await server_props(client, config.url)
        engine = await hostinfo.detect_engine(client, config.url, props, models)
        model = hostinfo.model_info(config.model, config.model_file, props)
        cpu = hostinfo.cpu_info()
        # Where the engine has a switch for it, ask it not to reuse cached prompt prefixes
        # either: fresh prompts still share the chat template's opening tokens.
        no_cache = engine.name == "llama.cpp"
        spec = RequestSpec(
            config.url, config.model, config.endpoint, config.output_tokens, no_cache
        )
        seed = config.seed if config.seed is not None else new_seed()
        pool = _PROMPT_POOL if config.requests is None else min(_PROMPT_POOL, config.requests)
        warmup = await build_prompts(
            client, config.url, config.prompt_tokens, config.warmup_requests,
            run_seed=seed, part="warmup",
        )  # fmt: skip
        # Warm-up, not counted. The first one also proves the server streams OpenAI SSE:
        # if it does not, stop with that one error instead of N identical failures.
        for index in range(config.warmup_requests):
            await stream_request(client, spec, warmup.for_request(index), strict=True)

        for level, (concurrency, rate) in enumerate(config.levels(), start=1):
            if stop.event.is_set():
                break
            prompts = await build_prompts(
                client, config.url, config.prompt_tokens, pool, run_seed=seed, part=f"level{level}"
            )
            total = config.requests if config.requests is not None else config.duration_s
            name = f"c={concurrency}" if rate is None else f"{rate:g} req/s"
            with Progress(
                TextColumn(f"[bold]{name}[/]"),
                BarColumn(),
                MofNCompleteColumn() if config.requests is not None else TextColumn(""),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("level", total=total, status="")
                load_avg_1m = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
                on_record = _ProgressUpdater(progress, task, config.requests is not None)
                sampler.start()
                try:
                    run = await run_load(
                        client=client, spec=spec, prompts=prompts, concurrency=concurrency,
                        rate=rate, arrivals=config.arrivals, arrival_seed=(seed, level),
                        requests=config.requests, duration_s=config.duration_s,
                        on_record=on_record, stop=stop.event,
                    )  # fmt: skip
                    records, duration_s = run.records, run.duration_s
                finally:
                    telemetry = sampler.stop()

            level_error, server_gone = await _level_error(
                client, config.url, records, concurrency, rate
            )

            settings = _settings(
                config, concurrency, rate, prompts, records, seed=seed, no_cache=no_cache,
                stopped_by=stop.by,
            )  # fmt: skip
            metadata = Metadata(
                tool="llmbox",
                tool_version=__version__,
                created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                host=config.host_label,
                engine=engine,
                model=model,
                gpu=gpu,
                gpu_note=gpu_note,
                cpu=cpu,
                settings=settings,
                engine_ceiling=config.ceiling,
                host_load_avg_1m=load_avg_1m,
                run_error=level_error,
            )
            result = BenchResult(
                metadata=metadata,
                metrics=level_metrics(
                    records,
                    duration_s,
                    telemetry,
                    config.ceiling,
                    service_level=config.service_level,
                    request_rate_achieved=run.request_rate_achieved,
                ),
                requests=[r.to_json() for r in records] if config.per_request else None,
            )
            outcome.results.append(result)
            outcome.files.append(write_result(result, config.out_dir))
            if level_error is not None:
                outcome.error = level_error
            if server_gone:
                break
    return outcome


async def _sweep_until_stopped(
    config: BenchConfig,
    console: Console,
    gpu_found: tuple[GpuInfo | None, str | None, GpuSource | None],
) -> SweepOutcome:
    """The sweep, with STOP_SIGNALS ending it early instead of killing it (only Python's
    main thread can receive signals: a sweep run from another thread keeps the defaults)."""
    stop = StopRequest()
    loop = asyncio.get_running_loop()
    signals = STOP_SIGNALS if threading.current_thread() is threading.main_thread() else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.request, sig)
    try:
        outcome = await _sweep(config, console, gpu_found, stop)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    outcome.stopped_by = stop.by
    return outcome


def run_sweep(config: BenchConfig, console: Console) -> SweepOutcome:
    """Run the whole sweep; BenchError before any level means nothing was measured."""
    gpu_found = detect_gpu()
    try:
        return asyncio.run(_sweep_until_stopped(config, console, gpu_found))
    finally:
        if gpu_found[2] is not None:
            gpu_found[2].close()
