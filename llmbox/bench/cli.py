"""``llmbox bench``: measure what an OpenAI-compatible server delivers on its host."""

# Imports sit inside the functions on purpose: `llmbox report` loads this module's
# neighbours only, and `llmbox --help` must not pay for httpx, rich progress or fabric.
# ruff: noqa: PLC0415

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from llmbox.bench.schema import Arrivals, Endpoint

if TYPE_CHECKING:
    from rich.console import Console

    from llmbox.bench.metrics import ServiceLevel
    from llmbox.bench.runner import BenchConfig


def parse_concurrency(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> (1, 2, 4); anything else, a repeated level included, is one clear
    error (each level writes one file, ``…__c<N>.json``: a repeat would overwrite it)."""
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        levels = ()
    if not levels or any(level < 1 for level in levels):
        raise click.BadParameter(
            f"{text!r} is not a comma-separated list of positive integers, e.g. 1,2,4,8",
            param_hint="--concurrency",
        )
    repeated = sorted({level for level in levels if levels.count(level) > 1})
    if repeated:
        raise click.BadParameter(
            f"{text!r} repeats level {', '.join(map(str, repeated))}: give each level once "
            "(each writes its own result file)",
            param_hint="--concurrency",
        )
    return levels


def parse_rates(text: str | None) -> tuple[float, ...]:
    """``"0.5,1,2"`` -> (0.5, 1.0, 2.0) requests per second; None -> () (no open loop)."""
    if text is None:
        return ()
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError:
        rates = ()
    if not rates or any(not 0 < rate < float("inf") for rate in rates):
        raise click.BadParameter(
            f"{text!r} is not a comma-separated list of positive request rates "
            "(requests per second), e.g. 0.5,1,2",
            param_hint="--rate",
        )
    repeated = sorted({f"{rate:g}" for rate in rates if rates.count(rate) > 1})
    if repeated:
        raise click.BadParameter(
            f"{text!r} repeats rate {', '.join(repeated)}: give each rate once "
            "(each writes its own result file)",
            param_hint="--rate",
        )
    return rates


@click.command()
@click.argument("url")
@click.option("--model", required=True, help="Model name the server is asked for.")
@click.option(
    "--api-key-env",
    metavar="VAR",
    help="Name of the environment variable that holds the API key (never the key itself).",
)
@click.option(
    "--concurrency",
    default="1,2,4,8",
    show_default=True,
    callback=lambda _ctx, _param, value: parse_concurrency(value),
    help="Comma-separated concurrency levels to sweep, each once (a repeat is refused).",
)
@click.option(
    "--rate",
    "rates",
    metavar="REQ_PER_S[,…]",
    callback=lambda _ctx, _param, value: parse_rates(value),
    help="Open loop instead of the concurrency sweep: send requests at each of these "
    "rates (requests/s, e.g. 0.5,1,2), whatever the server's pace; one file per rate.",
)
@click.option(
    "--arrivals",
    type=click.Choice([a.value for a in Arrivals]),
    default=Arrivals.POISSON.value,
    show_default=True,
    help="With --rate: poisson (exponential gaps of mean 1/rate, drawn from --seed) or "
    "constant (exactly 1/rate apart).",
)
@click.option(
    "--slo-ttft-ms",
    type=click.FloatRange(min=0, min_open=True),
    help="Service level for goodput: a request counts as good only if its own time to "
    "first token is at most this many ms.",
)
@click.option(
    "--slo-itl-ms",
    type=click.FloatRange(min=0, min_open=True),
    help="Service level for goodput: a request counts as good only if its own mean "
    "inter-token latency ((e2e - TTFT) / (tokens - 1)) is at most this many ms.",
)
@click.option(
    "--requests",
    type=click.IntRange(min=1),
    help="Requests per level (default 32 when --duration is not given).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds per level (with --rate it may join --requests: whichever ends first).",
)
@click.option(
    "--prompt-tokens",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Prompt length (exact where the server has /tokenize).",
)
@click.option(
    "--output-tokens",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Tokens generated per request (forced with ignore_eos where honoured).",
)
@click.option(
    "--endpoint",
    type=click.Choice([e.value for e in Endpoint]),
    default=Endpoint.CHAT.value,
    show_default=True,
    help="OpenAI API to stream from.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Uncounted requests first; the first also checks the server streams.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/local"),
    show_default=True,
    help="Directory for one result JSON per level.",
)
@click.option("--host-label", help="Host name in the results (default: this host's name).")
@click.option(
    "--model-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The served model file, if readable here: adds its sha256 and size.",
)
@click.option("--engine-ceiling", is_flag=True, help="Also run llama-bench on --model-file.")
@click.option(
    "--llama-bench",
    type=click.Path(dir_okay=False, path_type=Path),
    help="llama-bench executable (default: found on PATH).",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds a request may wait for its next byte before it counts as failed.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    help="Prompt seed, to send the prompts of an earlier run again (its results record it); "
    "default: a fresh one per run, so a second run meets no cached prompt.",
)
@click.option("--per-request", is_flag=True, help="Add every request's record to the files.")
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM file of the CA certificates an https URL is verified against (default: "
    "$SSL_CERT_FILE, else the system's store); with --ssh, a path on that host.",
)
@click.option(
    "--ssh",
    "ssh_target",
    metavar="USER@HOST[:PORT]",
    help="Run the measurement on that host (it needs llmbox) and fetch the files here.",
)
@click.option(
    "--ssh-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key for --ssh (default: your SSH agent and ~/.ssh keys).",
)
@click.option(
    "--remote-llmbox",
    default="llmbox",
    show_default=True,
    help="The llmbox executable on the --ssh host.",
)
def bench(
    *,
    url: str,
    model: str,
    api_key_env: str | None,
    concurrency: tuple[int, ...],
    rates: tuple[float, ...],
    arrivals: str,
    slo_ttft_ms: float | None,
    slo_itl_ms: float | None,
    requests: int | None,
    duration: float | None,
    prompt_tokens: int,
    output_tokens: int,
    endpoint: str,
    warmup: int,
    out: Path,
    host_label: str | None,
    model_file: Path | None,
    engine_ceiling: bool,
    llama_bench: Path | None,
    request_timeout: float,
    seed: int | None,
    per_request: bool,
    ca_file: Path | None,
    ssh_target: str | None,
    ssh_key: Path | None,
    remote_llmbox: str,
) -> None:
    """Measure tokens/s, TTFT, inter-token latency and power of the server at URL.

    Warms up, then for each concurrency level (or, with --rate, each request rate: open
    loop) streams requests of a controlled length and writes one versioned JSON file per
    level into --out, e.g.
    `llmbox bench http://127.0.0.1:8080 --model smollm2 --api-key-env LLM_KEY`.
    With --slo-ttft-ms/--slo-itl-ms each level also records its goodput: requests and
    output tokens per second of the requests that met that service level.
    """
    from rich.console import Console

    from llmbox.bench.client import BenchError
    from llmbox.bench.remote import remote_bench_args

    console = Console(stderr=True)
    ctx = click.get_current_context()
    if rates and ctx.get_parameter_source("concurrency") is not ParameterSource.DEFAULT:
        raise click.UsageError("give --concurrency (closed loop) or --rate (open loop), not both")
    if not rates and ctx.get_parameter_source("arrivals") is not ParameterSource.DEFAULT:
        raise click.UsageError(f"--arrivals {arrivals} spaces an open loop: it needs --rate")
    if requests is not None and duration is not None and not rates:
        raise click.UsageError("give --requests or --duration, not both (both: only with --rate)")
    if ca_file is not None and ssh_target is None and not ca_file.is_file():
        raise click.BadParameter(f"{str(ca_file)!r} is not a file", param_hint="--ca-file")
    if engine_ceiling and model_file is None:
        raise click.UsageError("--engine-ceiling needs --model-file (the file llama-bench loads)")
    api_key = _api_key(api_key_env)
    host = host_label or socket.gethostname()
    try:
        if ssh_target is not None:
            remote_args = remote_bench_args(
                url=url,
                model=model,
                concurrency=concurrency,
                requests=requests,
                duration=duration,
                prompt_tokens=prompt_tokens,
                output_tokens=output_tokens,
                endpoint=endpoint,
                warmup=warmup,
                request_timeout=request_timeout,
                host_label=host_label,
                model_file=model_file,
                llama_bench=llama_bench,
                engine_ceiling=engine_ceiling,
                per_request=per_request,
                seed=seed,
                rates=rates,
                arrivals=arrivals,
                slo_ttft_ms=slo_ttft_ms,
                slo_itl_ms=slo_itl_ms,
                ca_file=ca_file,
            )
            _bench_remote(
                ssh_target=ssh_target,
                ssh_key=ssh_key,
                remote_llmbox=remote_llmbox,
                remote_args=remote_args,
                api_key=api_key,
                out_dir=out,
                console=console,
            )
            return
        config = _local_config(
            url=url,
            model=model,
            api_key=api_key,
            concurrency=concurrency,
            requests=requests,
            duration=duration,
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            endpoint=Endpoint(endpoint),
            warmup=warmup,
            out=out,
            host=host,
            model_file=model_file,
            per_request=per_request,
            request_timeout=request_timeout,
            engine_ceiling=engine_ceiling,
            llama_bench=llama_bench,
            seed=seed,
            console=console,
        )
        config = replace(
            config,
            rates=rates,
            arrivals=Arrivals(arrivals),
            service_level=_service_level(slo_ttft_ms, slo_itl_ms),
            ca_file=ca_file,
        )
        _bench_local(config, console)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc


def _service_level(ttft_ms: float | None, itl_ms: float | None) -> ServiceLevel | None:
    from llmbox.bench.metrics import ServiceLevel

    if ttft_ms is None and itl_ms is None:
        return None
    return ServiceLevel(ttft_ms=ttft_ms, itl_ms=itl_ms)


def _api_key(var: str | None) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise click.BadParameter(
            f"environment variable {var} is not set or empty", param_hint="--api-key-env"
        )
    return value


def _local_config(
    *,
    url: str,
    model: str,
    api_key: str | None,
    concurrency: tuple[int, ...],
    requests: int | None,
    duration: float | None,
    prompt_tokens: int,
    output_tokens: int,
    endpoint: Endpoint,
    warmup: int,
    out: Path,
    host: str,
    model_file: Path | None,
    per_request: bool,
    request_timeout: float,
    engine_ceiling: bool,
    llama_bench: Path | None,
    seed: int | None,
    console: Console,
) -> BenchConfig:
    from llmbox.bench.ceiling import find_llama_bench, measure_ceiling
    from llmbox.bench.runner import BenchConfig

    ceiling = None
    if engine_ceiling and model_file is not None:
        tool = find_llama_bench(llama_bench)
        with console.status(f"llama-bench {model_file.name} (engine ceiling) …"):
            ceiling = measure_ceiling(tool, model_file, prompt_tokens, output_tokens)
    return BenchConfig(
        url=url,
        model=model,
        api_key=api_key,
        concurrency=concurrency,
        requests=requests if requests is not None or duration is not None else 32,
        duration_s=duration,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        endpoint=endpoint,
        out_dir=out,
        host_label=host,
        model_file=model_file,
        warmup_requests=warmup,
        per_request=per_request,
        ceiling=ceiling,
        request_timeout_s=request_timeout,
        seed=seed,
    )


def _bench_local(config: BenchConfig, console: Console) -> None:
    from rich.console import Console

    from llmbox.bench.runner import run_sweep
    from llmbox.bench.table import results_table

    outcome = run_sweep(config, console)
    if outcome.results:
        Console().print(results_table(outcome.results))
    for path in outcome.files:
        console.print(f"wrote {path}")
    if outcome.error is not None:
        raise click.ClickException(f"{outcome.error} (results so far are in {config.out_dir})")
    if outcome.stopped_by is not None:
        console.print(
            f"stopped by {outcome.stopped_by.name}: the requests answered so far are in "
            f"{config.out_dir}"
        )
        # the shell's convention for a process ended by a signal
        raise SystemExit(128 + outcome.stopped_by.value)


def _bench_remote(
    *,
    ssh_target: str,
    ssh_key: Path | None,
    remote_llmbox: str,
    remote_args: list[str],
    api_key: str | None,
    out_dir: Path,
    console: Console,
) -> None:
    from rich.console import Console

    from llmbox.bench.remote import SshTarget, run_remote
    from llmbox.bench.schema import read_result
    from llmbox.bench.table import results_table

    target = SshTarget.parse(ssh_target)
    run = run_remote(target, remote_args, api_key, out_dir, llmbox=remote_llmbox, key_file=ssh_key)
    if run.files:
        Console().print(results_table([read_result(path) for path in run.files]))
    for path in run.files:
        console.print(f"fetched {path}")
    if run.exit_code != 0:
        raise click.ClickException(
            f"llmbox bench on {target.host} exited {run.exit_code} "
            f"({len(run.files)} result files fetched into {out_dir})"
        )
