"""--engine-ceiling: llama-bench's pp/tg for the same model file, and the server's share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from llmbox.bench.ceiling import parse_llama_bench_json
from llmbox.bench.client import BenchError
from llmbox.cli import main

if TYPE_CHECKING:
    from tests.bench.conftest import LlamaServer


def _row(n_prompt: int, n_gen: int, avg_ts: float) -> dict[str, object]:
    return {"build_commit": "abc1234", "build_number": 6001, "n_prompt": n_prompt,
            "n_gen": n_gen, "avg_ts": avg_ts, "stddev_ts": 1.0}  # fmt: skip


def test_parse_llama_bench_json_picks_pp_and_tg_rows() -> None:
    text = json.dumps([_row(128, 0, 2500.5), _row(0, 64, 97.25)])
    ceiling = parse_llama_bench_json(text, n_prompt=128, n_gen=64)
    assert (ceiling.pp_tok_s, ceiling.tg_tok_s) == (2500.5, 97.25)
    assert ceiling.build == "b6001-abc1234"


def test_parse_llama_bench_json_without_the_rows_is_an_error() -> None:
    with pytest.raises(BenchError, match="llama-bench output is not what was expected"):
        parse_llama_bench_json(json.dumps([_row(512, 0, 1.0)]), n_prompt=128, n_gen=64)


def test_engine_ceiling_needs_the_model_file() -> None:
    result = CliRunner().invoke(
        main, ["bench", "http://127.0.0.1:1", "--model", "m", "--engine-ceiling"]
    )
    assert result.exit_code == 2
    assert "--engine-ceiling needs --model-file" in result.output


@pytest.mark.real_server
def test_engine_ceiling_recorded_with_server_fraction(
    llama_server: LlamaServer,
    llama_bench_binary: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BENCH_KEY", llama_server.api_key)
    monkeypatch.setenv("COLUMNS", "220")  # room for every table column
    args = [
        "bench", llama_server.url, "--model", "smollm2", "--api-key-env", "BENCH_KEY",
        "--concurrency", "1", "--requests", "2", "--prompt-tokens", "16",
        "--output-tokens", "16", "--warmup", "1", "--out", str(tmp_path),
        "--model-file", str(llama_server.model_file), "--engine-ceiling",
        "--llama-bench", str(llama_bench_binary),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    ceiling = data["metadata"]["engine_ceiling"]
    assert ceiling["tool"] == "llama-bench"
    assert (ceiling["n_prompt"], ceiling["n_gen"]) == (16, 16)
    assert ceiling["tg_tok_s"] > 0
    assert ceiling["pp_tok_s"] > 0
    metrics = data["metrics"]
    expected = metrics["output_tok_s_per_stream_mean"] / ceiling["tg_tok_s"]
    assert metrics["tg_fraction_of_ceiling"] == pytest.approx(expected)
    assert "of llama-" in result.output and "bench tg" in result.output  # a 2-line header
    assert f"{expected:.0%}" in result.output
