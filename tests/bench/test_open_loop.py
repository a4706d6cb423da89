"""Open-loop arrivals, goodput by hand, the rate options, and version-1 files still read."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmbox.bench.cli import bench
from llmbox.bench.load import achieved_rate, arrival_offsets, arrival_rng
from llmbox.bench.metrics import RequestRecord, ServiceLevel, goodput, meets, request_mean_itl_s
from llmbox.bench.remote import remote_bench_args
from llmbox.bench.schema import SCHEMA_VERSION, Arrivals, read_result, result_filename
from llmbox.cli import main
from tests.bench.test_schema import _result

V1_FILES = sorted((Path(__file__).parents[2] / "benchmarks/results/smollm2-cpu").glob("*.json"))


def _first(offsets: object, count: int) -> list[float]:
    return list(itertools.islice(offsets, count))  # type: ignore[call-overload]


def test_constant_arrivals_are_exactly_one_over_rate_apart() -> None:
    times = _first(arrival_offsets(4.0, Arrivals.CONSTANT, arrival_rng(1, 1)), 5)
    assert times == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert achieved_rate(times) == pytest.approx(4.0)


def test_poisson_arrivals_are_seeded_and_average_the_rate() -> None:
    def draw(seed: int, level: int) -> list[float]:
        return _first(arrival_offsets(2.0, Arrivals.POISSON, arrival_rng(seed, level)), 4000)

    times = draw(7, 1)
    assert times[0] == 0.0  # the first request goes out at once, as in vLLM's bench
    assert draw(7, 1) == times  # --seed repeats the arrivals
    assert draw(8, 1) != times and draw(7, 2) != times  # another run or level: others
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # exponential gaps: mean 1/rate and standard deviation 1/rate (4000 draws: within 5 %)
    assert statistics.fmean(gaps) == pytest.approx(0.5, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(0.5, rel=0.05)
    assert achieved_rate(times) == pytest.approx(2.0, rel=0.05)


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be > 0, got 0"):
        next(arrival_offsets(0, Arrivals.CONSTANT, arrival_rng(1, 1)))
    assert achieved_rate([0.3]) is None


def _request(ttft: float, e2e: float, tokens: int, ok: bool = True) -> RequestRecord:
    return RequestRecord(ok=ok, error=None if ok else "HTTP 500", e2e_s=e2e, ttft_s=ttft,
                         output_tokens=tokens)  # fmt: skip


def test_goodput_counts_requests_that_meet_ttft_and_their_own_mean_itl() -> None:
    fast = _request(ttft=0.1, e2e=0.1 + 9 * 0.05, tokens=10)  # mean ITL 50 ms
    slow_start = _request(ttft=2.5, e2e=2.5 + 9 * 0.05, tokens=10)
    slow_tokens = _request(ttft=0.1, e2e=0.1 + 9 * 0.2, tokens=10)  # mean ITL 200 ms
    one_token = _request(ttft=0.2, e2e=0.2, tokens=1)  # no ITL: meets any ITL limit
    failed = _request(ttft=0.1, e2e=0.2, tokens=0, ok=False)
    level = ServiceLevel(ttft_ms=2000, itl_ms=100)
    assert request_mean_itl_s(fast) == pytest.approx(0.05)
    assert [meets(r, level) for r in (fast, slow_start, slow_tokens, one_token, failed)] == [
        True, False, False, True, False,
    ]  # fmt: skip
    records = [fast, slow_start, slow_tokens, one_token, failed]
    figures = goodput(records, 2.0, level)
    assert figures == {
        "good_completed": 2,
        "goodput_request_per_s": 1.0,  # 2 good requests in 2 s
        "goodput_output_tok_s": 5.5,  # 10 + 1 tokens in 2 s
    }
    assert goodput(records, 2.0, None)["goodput_request_per_s"] is None
    assert goodput(records, 2.0, ServiceLevel(itl_ms=100))["good_completed"] == 3
    # the limit is inclusive: exactly 2000 ms meets a 2000 ms level
    assert meets(_request(ttft=2.0, e2e=2.1, tokens=2), ServiceLevel(ttft_ms=2000))


def test_rate_files_are_named_by_rate() -> None:
    result = _result()
    settings = result.metadata.settings.model_copy(
        update={"concurrency": None, "request_rate": 0.5}
    )
    metadata = result.metadata.model_copy(update={"settings": settings})
    named = result_filename(result.model_copy(update={"metadata": metadata}))
    assert named == "office-pc-1__llama.cpp__smollm2-135m-instruct-q4_1__r0.5.json"


def test_version_1_files_are_still_read() -> None:
    assert SCHEMA_VERSION == 2
    assert len(V1_FILES) == 3
    for path in V1_FILES:
        result = read_result(path)
        assert result.schema_version == 1
        assert result.metadata.settings.concurrency in (1, 2, 4)
        assert result.metadata.settings.request_rate is None
        assert result.metrics.goodput_request_per_s is None
        assert result.metrics.ttft_ms_p95 is None  # v1 had no p95s


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    text = V1_FILES[0].read_text().replace('"schema_version": 1', '"schema_version": 3')
    (tmp_path / "x.json").write_text(text)
    with pytest.raises(ValueError, match="schema_version"):
        read_result(tmp_path / "x.json")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "'0' is not a comma-separated list of positive request rates"),
        (["--rate", "1,x"], "'1,x' is not a comma-separated list of positive request rates"),
        (["--rate", "inf"], "'inf' is not a comma-separated list of positive request rates"),
        (["--rate", "1,2,1"], "'1,2,1' repeats rate 1: give each rate once"),
        (["--rate", "1", "--concurrency", "2"], "give --concurrency (closed loop) or --rate"),
        (["--rate", "1", "--arrivals", "bursty"], "'bursty' is not one of 'constant', 'poisson'"),
        (["--arrivals", "constant"], "--arrivals constant spaces an open loop: it needs --rate"),
        (["--slo-ttft-ms", "0"], "0.0 is not in the range x>0"),
        (["--requests", "2", "--duration", "3"], "give --requests or --duration, not both"),
    ],
)
def test_bad_open_loop_options_are_one_clear_error(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["bench", "http://127.0.0.1:9", "--model", "m", *args])
    assert result.exit_code == 2
    assert message in result.output, result.output


def test_remote_args_carry_the_open_loop_and_service_level() -> None:
    args = remote_bench_args(
        url="http://127.0.0.1:8080", model="m", concurrency=(1, 2, 4, 8), requests=20,
        duration=30.0, prompt_tokens=64, output_tokens=32, endpoint="chat", warmup=1,
        request_timeout=60.0, host_label=None, model_file=None, llama_bench=None,
        engine_ceiling=False, per_request=False, rates=(0.5, 2.0), arrivals="constant",
        slo_ttft_ms=2000.0, slo_itl_ms=100.0, ca_file=Path("/etc/llmbox/ca.pem"),
    )  # fmt: skip
    params = bench.make_context("bench", [*args, "--out", "/tmp/o"]).params
    assert params["rates"] == (0.5, 2.0)
    assert params["arrivals"] == "constant"
    assert (params["slo_ttft_ms"], params["slo_itl_ms"]) == (2000.0, 100.0)
    assert params["ca_file"] == Path("/etc/llmbox/ca.pem")
    assert (params["requests"], params["duration"]) == (20, 30.0)  # whichever ends first
    assert "--concurrency" not in args
