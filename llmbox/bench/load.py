"""The load of one level: closed loop (N requests in flight) or open loop (a request rate).

Closed loop sends the next request when one finishes, so a slow
server slows its own load down and its latency never shows queueing. Real users do not
wait for each other: vLLM's bench (``--request-rate``), GuideLLM (``constant``,
``poisson``) and AIPerf send requests on a schedule instead, and that is what this does.

- ``constant``: request *i* is sent at *i*/rate seconds (GuideLLM's constant rate);
- ``poisson``: gaps drawn from an exponential distribution of mean 1/rate (vLLM's bench
  with burstiness 1, GuideLLM's poisson), from a seeded generator so a run repeats.

The first request goes out at once in both, as in vLLM's bench. Requests are never
held back for one another (no concurrency cap): a server that cannot keep up shows it
as queueing in TTFT, and in a goodput below the rate asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx

from llmbox.bench.client import RequestSpec, stream_request
from llmbox.bench.metrics import RequestRecord
from llmbox.bench.prompts import PromptSet
from llmbox.bench.schema import Arrivals


def arrival_offsets(rate: float, arrivals: Arrivals, rng: random.Random) -> Iterator[float]:
    """Send times in seconds from the level's start, without end: 0, then one per gap."""
    if rate <= 0:
        raise ValueError(f"request rate must be > 0, got {rate}")
    if arrivals is Arrivals.CONSTANT:
        yield from (index / rate for index in itertools.count())
        return
    offset = 0.0
    while True:
        yield offset
        offset += rng.expovariate(rate)


def arrival_rng(seed: int, level: int) -> random.Random:
    """The level's own generator: the run's prompt seed and the level number fix it, so
    ``--seed`` repeats the arrivals as it repeats the prompts."""
    return random.Random(f"{seed}:arrivals:{level}")


def achieved_rate(send_times: list[float]) -> float | None:
    """Requests sent per second: (sent - 1) / (last send - first send); None for < 2."""
    if len(send_times) < 2 or send_times[-1] <= send_times[0]:
        return None
    return (len(send_times) - 1) / (send_times[-1] - send_times[0])


# Ctrl-C or a SIGTERM (a CI job cancelled, a test ending a load it no longer needs) ends
# the sweep early but cleanly: nothing new is sent, the requests in flight are answered
# and counted, the level is written with settings.stopped_by, no later level starts.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class StopRequest:
    """Set by a stop signal; the load functions read ``event``."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    by: signal.Signals | None = None

    def request(self, sig: signal.Signals) -> None:
        self.by = self.by or sig
        self.event.set()


@dataclass(frozen=True)
class LevelRun:
    """What one level sent and got back."""

    records: list[RequestRecord]
    duration_s: float  # first send to last answer, as the closed-loop levels count it
    request_rate_achieved: float | None = None  # open loop only


async def run_open_level(
    *,
    client: httpx.AsyncClient,
    spec: RequestSpec,
    prompts: PromptSet,
    schedule: Iterator[float],
    requests: int | None,
    duration_s: float | None,
    on_record: Callable[[RequestRecord, float], None],
    stop: asyncio.Event,
) -> LevelRun:
    """Send on ``schedule`` until ``requests`` are sent, ``duration_s`` has passed or
    ``stop`` is set (whichever comes first), then wait for every answer."""
    records: list[RequestRecord] = []
    sent: list[float] = []
    start = time.perf_counter()

    async def one(index: int) -> None:
        record = await stream_request(client, spec, prompts.for_request(index))
        records.append(record)
        on_record(record, time.perf_counter() - start)

    tasks: list[asyncio.Task[None]] = []
    for index, offset in enumerate(schedule):
        if (requests is not None and index >= requests) or (
            duration_s is not None and offset >= duration_s
        ):
            break
        delay = start + offset - time.perf_counter()
        if delay > 0:
            # the wait ends early when the run is stopped
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            break
        sent.append(time.perf_counter() - start)
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    return LevelRun(records, time.perf_counter() - start, achieved_rate(sent))


async def run_closed_level(
    *,
    client: httpx.AsyncClient,
    spec: RequestSpec,
    prompts: PromptSet,
    concurrency: int,
    requests: int | None,
    duration_s: float | None,
    on_record: Callable[[RequestRecord, float], None],
    stop: asyncio.Event,
) -> LevelRun:
    """``concurrency`` workers, each sending its next request when its last one ends,
    until ``stop`` is set (the requests in flight are still answered and counted)."""
    records: list[RequestRecord] = []
    issued = 0
    start = time.perf_counter()
    deadline = start + duration_s if duration_s is not None else None
    # In --duration mode a dead server would make failures as fast as the loop can
    # spin; stop the level after this many failures in a row instead.
    streak_limit = max(8, 2 * concurrency)
    streak = 0

    async def worker() -> None:
        nonlocal issued, streak
        while True:
            if stop.is_set() or (requests is not None and issued >= requests):
                return
            if deadline is not None and (time.perf_counter() >= deadline or streak >= streak_limit):
                return
            index = issued
            issued += 1
            record = await stream_request(client, spec, prompts.for_request(index))
            streak = 0 if record.ok else streak + 1
            records.append(record)
            on_record(record, time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LevelRun(records, time.perf_counter() - start)


async def run_load(
    *,
    client: httpx.AsyncClient,
    spec: RequestSpec,
    prompts: PromptSet,
    concurrency: int | None,
    rate: float | None,
    arrivals: Arrivals,
    arrival_seed: tuple[int, int],
    requests: int | None,
    duration_s: float | None,
    on_record: Callable[[RequestRecord, float], None],
    stop: asyncio.Event,
) -> LevelRun:
    """One level: open loop at ``rate`` when given, else closed loop at ``concurrency``.
    Setting ``stop`` ends it early: nothing new is sent, what is in flight is answered."""
    if rate is None:
        return await run_closed_level(
            client=client, spec=spec, prompts=prompts, concurrency=concurrency or 1,
            requests=requests, duration_s=duration_s, on_record=on_record, stop=stop,
        )  # fmt: skip
    return await run_open_level(
        client=client, spec=spec, prompts=prompts,
        schedule=arrival_offsets(rate, arrivals, arrival_rng(*arrival_seed)),
        requests=requests, duration_s=duration_s, on_record=on_record, stop=stop,
    )  # fmt: skip
