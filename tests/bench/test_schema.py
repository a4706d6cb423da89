"""Result file names, atomic writes, and what the metadata is built from."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbox.bench.client import BenchError, base_url
from llmbox.bench.hostinfo import engine_info, split_model_name
from llmbox.bench.prompts import approximate_prompt
from llmbox.bench.remote import remote_command
from llmbox.bench.schema import (
    BenchResult,
    CpuInfo,
    Endpoint,
    EngineInfo,
    Metadata,
    Metrics,
    ModelInfo,
    OutputTokensMethod,
    PromptTokensMethod,
    Settings,
    read_result,
    result_filename,
    write_result,
)


def _result(host: str = "Office PC 1", concurrency: int = 4) -> BenchResult:
    settings = Settings(
        url="http://127.0.0.1:8080", endpoint=Endpoint.CHAT, concurrency=concurrency,
        requests=32, duration_s=None, prompt_tokens=128, output_tokens=128,
        prompt_tokens_method=PromptTokensMethod.TOKENIZE,
        output_tokens_method=OutputTokensMethod.USAGE, warmup_requests=2,
    )  # fmt: skip
    metadata = Metadata(
        tool="llmbox", tool_version="0.1.0", created_at="2026-11-24T01:02:03Z", host=host,
        engine=EngineInfo(name="llama.cpp", version="b6001-abc"),
        model=ModelInfo(name="SmolLM2-135M-Instruct", quantization="Q4_1", sha256=None,
                        file_bytes=None),
        gpu=None, gpu_note="no NVIDIA GPU: test", cpu=CpuInfo(model="cpu", logical_cores=2),
        settings=settings,
    )  # fmt: skip
    stats = ("mean", "p50", "p90", "p99")
    latency = {f"{k}_ms_{s}": 1.0 for k in ("ttft", "itl", "e2e") for s in stats}
    metrics = Metrics(
        completed=32, failed=0, duration_s=10.0, request_per_s=3.2, output_tok_s=409.6,
        output_tok_s_per_stream_mean=102.4,
        **latency,
        gpu_power_w_mean=None, gpu_util_pct_mean=None, gpu_mem_used_mib_max=None,
        gpu_energy_j=None, tokens_per_joule=None, cpu_util_pct_mean=50.0,
        mem_used_mib_max=1234.0,
    )  # fmt: skip
    return BenchResult(metadata=metadata, metrics=metrics)


def test_file_name_follows_the_contract() -> None:
    expected = "office-pc-1__llama.cpp__smollm2-135m-instruct-q4_1__c4.json"
    assert result_filename(_result()) == expected
    assert result_filename(_result(host="../../etc", concurrency=1)) == (
        "etc__llama.cpp__smollm2-135m-instruct-q4_1__c1.json"
    )


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = write_result(_result(), tmp_path)
    assert read_result(path) == _result()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_failed_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_result(_result(), tmp_path)
    before = path.read_text()

    def broken_replace(self: Path, target: Path) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_result(_result(), tmp_path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", ("SmolLM2-135M-Instruct", "Q4_1")),
        ("/m/Meta-Llama-3-8B-Instruct-Q4_K_M.gguf", ("Meta-Llama-3-8B-Instruct", "Q4_K_M")),
        ("qwen2.5-7b-instruct-f16.gguf", ("qwen2.5-7b-instruct", "F16")),
        ("mistralai/Mistral-7B-Instruct-v0.3", ("Mistral-7B-Instruct-v0.3", None)),
    ],
)
def test_split_model_name(name: str, expected: tuple[str, str | None]) -> None:
    assert split_model_name(name) == expected


def test_engine_from_llama_cpp_props_or_model_owner() -> None:
    assert engine_info({"build_info": "b6001-abc"}, {}) == EngineInfo(
        name="llama.cpp", version="b6001-abc"
    )
    vllm = {"data": [{"id": "m", "owned_by": "vllm"}]}
    assert engine_info(None, vllm) == EngineInfo(name="vllm", version=None)
    assert engine_info(None, vllm, "0.32.0") == EngineInfo(name="vllm", version="0.32.0")
    llama = {"data": [{"id": "m", "owned_by": "llamacpp"}]}  # /props not reachable
    assert engine_info(None, llama) == EngineInfo(name="llama.cpp", version=None)


@pytest.mark.parametrize(
    "models",
    [{}, {"data": []}, {"data": [{"id": "m"}]}, {"data": ["m"]}, {"data": [{"owned_by": 7}]}],
)
def test_a_server_that_does_not_say_its_engine_is_unknown(models: dict[str, object]) -> None:
    assert engine_info(None, models, "9.9") == EngineInfo(name="unknown", version=None)


def test_base_url_accepts_v1_and_rejects_non_http() -> None:
    assert base_url("http://h:8080/v1/") == "http://h:8080"
    with pytest.raises(BenchError, match="'h:8080' is not an http"):
        base_url("h:8080")


def test_approximate_prompt_is_about_four_characters_a_token() -> None:
    text = approximate_prompt(seed="3:level1:0", tokens=100)
    assert 350 <= len(text) <= 400
    assert approximate_prompt(seed="3:level1:0", tokens=100) == text  # reproducible
    assert approximate_prompt(seed="3:level1:1", tokens=100) != text  # distinct per request
    assert approximate_prompt(seed="4:level1:0", tokens=100) != text  # and per run seed


def test_remote_command_reads_the_key_from_stdin() -> None:
    command = remote_command("llmbox", ["http://h:1", "--model", "m x"], "/tmp/o", True)
    assert command == (
        "IFS= read -r LLMBOX_BENCH_API_KEY && export LLMBOX_BENCH_API_KEY && "
        "llmbox bench http://h:1 --model 'm x' --out /tmp/o --api-key-env LLMBOX_BENCH_API_KEY"
    )
