"""What the load generator itself costs: CPU seconds of the `llmbox bench` process per
1,000 streamed tokens at concurrency 64, against a real llama-server (SmolLM2-135M).

Target: the harness must not be the bottleneck. The server is a separate process, so
the CPU time counted here (time.process_time: every thread of this process, including
the telemetry sampler) is the client's alone. Bounded: a fixed number of requests.

    python benchmarks/bench_harness_cost.py [--requests 128] [--output-tokens 64]

Writes benchmarks/results/bench_harness_cost.json.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console

from llmbox.bench.hostinfo import cpu_info
from llmbox.bench.runner import BenchConfig, run_sweep
from llmbox.bench.schema import Endpoint

sys.path.insert(0, str(Path(__file__).parent))
from bench_server import REPO, llama_server

CONCURRENCY = 64


@click.command()
@click.option("--requests", default=128, show_default=True, help="Measured requests (bounded).")
@click.option("--output-tokens", default=64, show_default=True)
@click.option("--prompt-tokens", default=16, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=REPO / "benchmarks/results/bench_harness_cost.json",
    show_default=True,
)
def run(requests: int, output_tokens: int, prompt_tokens: int, out: Path) -> None:
    """Measure the harness's CPU seconds per 1,000 streamed tokens at concurrency 64."""
    console = Console(stderr=True)
    with llama_server(parallel=8) as server:
        results_dir = out.parent / ".harness-cost-levels"
        config = BenchConfig(
            url=server.url,
            model="smollm2",
            api_key=server.api_key,
            concurrency=(CONCURRENCY,),
            requests=requests,
            duration_s=None,
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            endpoint=Endpoint.CHAT,
            out_dir=results_dir,
            host_label=platform.node(),
            warmup_requests=2,
            # 64 requests queue behind the server's 8 slots: the last ones wait long
            # for their first byte on a 2-core machine, which is not a failure here.
            request_timeout_s=900.0,
        )
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        outcome = run_sweep(config, console)
        cpu_s, wall_s = time.process_time() - cpu_before, time.perf_counter() - wall_before
    for path in outcome.files:
        path.unlink()
    results_dir.rmdir()
    metrics = outcome.results[0].metrics
    tokens = metrics.output_tok_s * metrics.duration_s
    record = {
        "benchmark": "bench_harness_cost",
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "what": "CPU seconds of the llmbox bench process per 1,000 streamed output tokens",
        "method": (
            "time.process_time() around run_sweep (prompt building, warm-up, streaming, "
            "telemetry thread, result write); llama-server runs in its own process"
        ),
        "measured": True,
        "host": {"cpu": cpu_info().model, "logical_cores": cpu_info().logical_cores},
        "server": "llama-server (built from llama-cpp-python 0.3.36 sdist), SmolLM2-135M "
        "Q4_1, --parallel 8, CPU",
        "concurrency": CONCURRENCY,
        "requests": requests,
        "completed": metrics.completed,
        "failed": metrics.failed,
        "first_error": outcome.results[0].metadata.run_error,
        "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "streamed_tokens": round(tokens),
        "client_cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "cpu_s_per_1k_tokens": round(cpu_s / tokens * 1000, 4),
        "client_cpu_share_of_one_core": round(cpu_s / wall_s, 4),
        "server_output_tok_s": round(metrics.output_tok_s, 1),
        "itl_ms_p50": round(metrics.itl_ms_p50 or 0.0, 2),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)
    console.print_json(data=record)


if __name__ == "__main__":
    run()
