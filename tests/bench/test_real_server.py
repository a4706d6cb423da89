"""`llmbox bench` against a real llama-server serving SmolLM2-135M on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from click.testing import CliRunner
from rich.console import Console

from llmbox.bench.load import achieved_rate, arrival_offsets, arrival_rng
from llmbox.bench.metrics import ServiceLevel
from llmbox.bench.prompts import PromptSet, build_prompts
from llmbox.bench.runner import BenchConfig, run_sweep
from llmbox.bench.schema import Arrivals, Endpoint, PromptTokensMethod, read_result
from llmbox.cli import main

if TYPE_CHECKING:
    from tests.bench.conftest import LlamaServer

pytestmark = pytest.mark.real_server

CONTRACT_METRICS = {
    "completed", "failed", "duration_s", "request_per_s", "output_tok_s",
    "output_tok_s_per_stream_mean", "ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p90",
    "ttft_ms_p99", "itl_ms_mean", "itl_ms_p50", "itl_ms_p90", "itl_ms_p99", "e2e_ms_mean",
    "e2e_ms_p50", "e2e_ms_p90", "e2e_ms_p99", "gpu_power_w_mean", "gpu_util_pct_mean",
    "gpu_mem_used_mib_max", "gpu_energy_j", "tokens_per_joule", "cpu_util_pct_mean",
    "mem_used_mib_max",
}  # fmt: skip
CONTRACT_SETTINGS = {
    "url", "endpoint", "concurrency", "requests", "duration_s", "prompt_tokens",
    "output_tokens", "prompt_tokens_method", "output_tokens_method", "warmup_requests",
}  # fmt: skip


def _config(server: LlamaServer, out: Path, **changes: object) -> BenchConfig:
    settings: dict[str, object] = {
        "url": server.url,
        "model": "smollm2",
        "api_key": server.api_key,
        "concurrency": (1,),
        "requests": 4,
        "duration_s": None,
        "prompt_tokens": 32,
        "output_tokens": 64,
        "endpoint": Endpoint.CHAT,
        "out_dir": out,
        "host_label": "test-host",
        "model_file": server.model_file,
        "warmup_requests": 1,
    }
    settings.update(changes)
    return BenchConfig(**settings)  # type: ignore[arg-type]


def _quiet() -> Console:
    return Console(quiet=True)


def test_single_stream_rate_agrees_with_server_timings(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    # 128 tokens a request: a long enough span that a few ms of delivery jitter on a
    # busy machine stays well inside 5 %.
    outcome = run_sweep(_config(llama_server, tmp_path, output_tokens=128), _quiet())
    assert outcome.error is None
    metrics = outcome.results[0].metrics
    assert metrics.completed == 4
    assert metrics.server_tg_tok_s_mean is not None
    assert metrics.output_tok_s_per_stream_mean is not None
    measured, server = metrics.output_tok_s_per_stream_mean, metrics.server_tg_tok_s_mean
    assert abs(measured - server) / server < 0.05, (measured, server)
    assert metrics.output_tokens_mean == 128  # ignore_eos forced the length


def test_prompt_length_is_cut_with_the_server_tokenizer(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    config = _config(llama_server, tmp_path, endpoint=Endpoint.COMPLETIONS, requests=2)
    result = run_sweep(config, _quiet()).results[0]
    assert result.metadata.settings.prompt_tokens_method is PromptTokensMethod.TOKENIZE
    # /completions sends the text as is: 32 tokens, plus a BOS token if the model adds one
    assert result.metrics.prompt_tokens_mean in (32, 33)


def test_each_level_gets_prompts_the_server_has_not_cached(llama_server: LlamaServer) -> None:
    async def build() -> tuple[PromptSet, PromptSet, list[int]]:
        headers = {"Authorization": f"Bearer {llama_server.api_key}"}
        async with httpx.AsyncClient(headers=headers) as client:
            first = await build_prompts(client, llama_server.url, 24, 3, run_seed=1, part="l1")
            second = await build_prompts(client, llama_server.url, 24, 3, run_seed=1, part="l2")
            counts = []
            for prompt in first.prompts:
                answer = await client.post(f"{llama_server.url}/tokenize", json={"content": prompt})
                counts.append(len(answer.json()["tokens"]))
        return first, second, counts

    first, second, counts = asyncio.run(build())
    assert first.method is second.method is PromptTokensMethod.TOKENIZE
    assert len(set(first.prompts) | set(second.prompts)) == 6
    assert all(abs(count - 24) <= 1 for count in counts), counts


def test_a_second_run_is_no_prompt_cache_hit(llama_server: LlamaServer, tmp_path: Path) -> None:
    # Before each run drew its own prompt seed and asked for cache_prompt: false, the
    # second of two identical runs found every prompt in the server's slots and its mean
    # TTFT fell from 457 ms to 30 ms. A cold 128-token prefill is the same work twice:
    # allow a factor of 3 for a busy machine, far from the 15x of a cache hit.
    config = _config(llama_server, tmp_path, prompt_tokens=128, output_tokens=4)
    first, second = (run_sweep(config, _quiet()).results[0] for _ in range(2))
    ttft = [r.metrics.ttft_ms_mean for r in (first, second)]
    assert ttft[0] is not None and ttft[1] is not None
    print(f"mean TTFT, first run {ttft[0]:.1f} ms, second run {ttft[1]:.1f} ms")
    assert ttft[1] > ttft[0] / 3, ttft
    assert first.metadata.settings.seed != second.metadata.settings.seed


def test_llama_cpp_is_asked_not_to_reuse_cached_prompts(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    config = _config(llama_server, tmp_path, requests=1, output_tokens=4, seed=42)
    settings = run_sweep(config, _quiet()).results[0].metadata.settings
    assert settings.cache_prompt is False
    assert settings.seed == 42  # --seed is recorded, so the run can be repeated


def test_concurrency_4_delivers_more_than_1(llama_server: LlamaServer, tmp_path: Path) -> None:
    # Levels interleaved (1, 4, 1, 4) so a burst of other work on a shared machine
    # lands on both sides of the comparison rather than on one level.
    # Short prompts, longer outputs: the comparison is about batched generation.
    config = _config(
        llama_server, tmp_path, concurrency=(1, 4, 1, 4), requests=8, prompt_tokens=8,
        output_tokens=64,
    )  # fmt: skip
    results = run_sweep(config, _quiet()).results
    assert all(r.metrics.failed == 0 for r in results)
    by_level: dict[int, list[float]] = {1: [], 4: []}
    for result in results:
        by_level[result.metadata.settings.concurrency].append(result.metrics.output_tok_s)
    single, four = (sum(by_level[c]) / 2 for c in (1, 4))
    assert four > single, by_level


def test_duration_mode_runs_until_the_deadline(llama_server: LlamaServer, tmp_path: Path) -> None:
    config = _config(llama_server, tmp_path, requests=None, duration_s=2.0, output_tokens=8)
    result = run_sweep(config, _quiet()).results[0]
    assert result.metadata.settings.requests is None
    assert result.metadata.settings.duration_s == 2.0
    assert result.metrics.completed >= 1
    assert result.metrics.failed == 0
    assert result.metrics.duration_s >= 2.0  # requests started before the deadline finish


def test_cli_writes_one_contract_file_per_level(
    llama_server: LlamaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_KEY", llama_server.api_key)
    args = [
        "bench", llama_server.url, "--model", "smollm2", "--api-key-env", "BENCH_KEY",
        "--concurrency", "1,2", "--requests", "2", "--prompt-tokens", "16",
        "--output-tokens", "8", "--warmup", "1", "--out", str(tmp_path),
        "--host-label", "Office PC 1", "--model-file", str(llama_server.model_file),
        "--per-request",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "office-pc-1__llama.cpp__smollm2-135m-instruct-q4_1__c1.json",
        "office-pc-1__llama.cpp__smollm2-135m-instruct-q4_1__c2.json",
    ]
    data = json.loads((tmp_path / names[1]).read_text())
    assert data["schema_version"] == 2
    meta = data["metadata"]
    assert meta["engine"]["name"] == "llama.cpp"
    assert meta["engine"]["version"].startswith("b")
    assert meta["model"] == {
        "name": "SmolLM2-135M-Instruct",
        "quantization": "Q4_1",
        "sha256": meta["model"]["sha256"],
        "file_bytes": 98_362_432,
    }
    assert len(meta["model"]["sha256"]) == 64
    assert meta["gpu"] is None
    assert meta["host_load_avg_1m"] >= 0
    assert meta["gpu_note"].startswith("no NVIDIA GPU")
    assert meta["settings"].keys() >= CONTRACT_SETTINGS
    assert meta["settings"]["concurrency"] == 2
    assert meta["settings"]["output_tokens_method"] == "usage"
    assert data["metrics"].keys() >= CONTRACT_METRICS
    assert data["metrics"]["completed"] == 2
    assert data["metrics"]["gpu_power_w_mean"] is None
    assert len(data["requests"]) == 2
    assert len(data["requests"][0]["itl_s"]) == 7  # 8 tokens, 7 gaps
    assert "Office PC 1 · llama.cpp · SmolLM2-135M-Instruct Q4_1" in result.output  # table


def test_wrong_api_key_is_one_clear_error(
    llama_server: LlamaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_KEY", "not-the-key")
    args = ["bench", llama_server.url, "--model", "m", "--api-key-env", "BENCH_KEY"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{llama_server.url}/v1/models answered 401" in result.output
    assert "API key is wrong or missing" in result.output
    assert list(tmp_path.iterdir()) == []


def _bench_in_background(server: LlamaServer, out: Path, *load: str) -> subprocess.Popen[bytes]:
    """`llmbox bench` at c=2 then 4 as its own process, returned once the server has
    answered 4 of its requests (llama-server logs "stop processing" as each one ends)."""
    env = {**os.environ, "BENCH_KEY": server.api_key}
    command = [
        sys.executable, "-c", "from llmbox.cli import main; main()",
        "bench", server.url, "--model", "smollm2", "--api-key-env", "BENCH_KEY",
        "--concurrency", "2,4", "--prompt-tokens", "16", "--warmup", "1",
        "--out", str(out), "--host-label", "h", *load,
    ]  # fmt: skip
    served_before = server.log.read_text(errors="replace").count("stop processing")
    bench = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while server.log.read_text(errors="replace").count("stop processing") < served_before + 4:
        assert bench.poll() is None, bench.communicate()
        assert time.monotonic() < deadline, "llama-server served nothing in 120 s"
        time.sleep(0.1)
    return bench


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_run_early_and_keeps_what_was_answered(
    llama_server: LlamaServer, tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C (or SIGTERM) during a --duration 300 run: nothing new is sent, the requests
    in flight are answered and counted, the level is written (settings.stopped_by), no
    later level starts, and the exit status is the shell's 128 + signal number."""
    bench = _bench_in_background(
        llama_server, tmp_path, "--duration", "300", "--output-tokens", "32"
    )
    sent_at = time.monotonic()
    bench.send_signal(sig)
    stdout, stderr = bench.communicate(timeout=60)
    took = time.monotonic() - sent_at
    output = (stdout + stderr).decode()
    assert bench.returncode == 128 + sig.value, output
    assert f"stopped by {sig.name}" in output
    assert took < 30, f"the run went on {took:.0f} s after {sig.name}"
    files = sorted(tmp_path.glob("*.json"))
    assert [f.name for f in files] == ["h__llama.cpp__smollm2-135m-instruct-q4_1__c2.json"]
    result = read_result(files[0])
    assert result.metadata.settings.stopped_by == sig.name
    assert result.metrics.completed >= 1 and result.metrics.failed == 0
    assert result.metrics.duration_s < 300


def test_server_killed_mid_run(disposable_llama_server: LlamaServer, tmp_path: Path) -> None:
    server = disposable_llama_server
    # killed once some requests of the first level have been served
    bench = _bench_in_background(server, tmp_path, "--requests", "60", "--output-tokens", "48")
    server.kill()
    stdout, stderr = bench.communicate(timeout=120)
    output = (stdout + stderr).decode()
    assert bench.returncode == 1, output
    assert f"server at {server.url} stopped answering" in output
    files = sorted(tmp_path.glob("*.json"))
    assert [f.name for f in files] == ["h__llama.cpp__smollm2-135m-instruct-q4_1__c2.json"]
    metrics = read_result(files[0]).metrics
    assert metrics.completed >= 1
    assert metrics.failed >= 1
    assert metrics.completed + metrics.failed == 60  # every request counted
    assert read_result(files[0]).metadata.run_error is not None


def test_open_loop_keeps_the_asked_rate_when_not_saturated(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    # 1 request/s of 8 output tokens: each answer takes a fraction of a second on this
    # CPU, so the server is far from saturated and both the send rate and the completion
    # rate must be the asked one (12 requests: 11 s of sending, then the last answer).
    config = _config(
        llama_server, tmp_path, rates=(1.0,), arrivals=Arrivals.CONSTANT, requests=12,
        prompt_tokens=16, output_tokens=8, service_level=ServiceLevel(ttft_ms=2000, itl_ms=100),
    )  # fmt: skip
    outcome = run_sweep(config, _quiet())
    assert outcome.error is None
    (result,) = outcome.results
    metrics, settings = result.metrics, result.metadata.settings
    assert (settings.request_rate, settings.arrivals, settings.concurrency) == (
        1.0, Arrivals.CONSTANT, None,
    )  # fmt: skip
    assert metrics.completed == 12
    assert metrics.request_rate_achieved is not None
    sent, done, slowest = metrics.request_rate_achieved, metrics.request_per_s, metrics.e2e_ms_p99
    print(f"asked 1.0 req/s, sent {sent:.3f}, completed {done:.3f}, e2e p99 {slowest} ms")
    assert metrics.request_rate_achieved == pytest.approx(1.0, rel=0.10)
    assert metrics.request_per_s == pytest.approx(1.0, rel=0.10)
    assert metrics.good_completed is not None
    assert metrics.goodput_request_per_s is not None and metrics.goodput_output_tok_s is not None
    assert metrics.goodput_request_per_s <= metrics.request_per_s
    assert metrics.goodput_output_tok_s <= metrics.output_tok_s
    assert outcome.files[0].name.endswith("__r1.json")


def test_poisson_sweep_follows_its_seeded_schedule_and_goodput_stays_below_throughput(
    llama_server: LlamaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_KEY", llama_server.api_key)
    args = [
        "bench", llama_server.url, "--model", "smollm2", "--api-key-env", "BENCH_KEY",
        "--rate", "1,3", "--arrivals", "poisson", "--seed", "5", "--requests", "8",
        "--prompt-tokens", "16", "--output-tokens", "8", "--warmup", "1",
        "--slo-ttft-ms", "2000", "--slo-itl-ms", "100", "--out", str(tmp_path),
        "--host-label", "h",
    ]  # fmt: skip
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    assert "good" in run.output and "req/s" in run.output  # goodput columns in the table
    for level, rate in enumerate((1.0, 3.0), start=1):
        result = read_result(tmp_path / f"h__llama.cpp__smollm2-135m-instruct-q4_1__r{rate:g}.json")
        metrics = result.metrics
        schedule = list(itertools.islice(
            arrival_offsets(rate, Arrivals.POISSON, arrival_rng(5, level)), 8
        ))  # fmt: skip
        assert metrics.request_rate_achieved == pytest.approx(achieved_rate(schedule), rel=0.10)
        assert result.metadata.settings.slo_ttft_ms == 2000
        assert metrics.goodput_request_per_s is not None
        assert metrics.goodput_output_tok_s is not None
        assert metrics.goodput_request_per_s <= metrics.request_per_s
        assert metrics.goodput_output_tok_s <= metrics.output_tok_s
        assert metrics.ttft_ms_p95 is not None and metrics.itl_ms_p95 is not None
