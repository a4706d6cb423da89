"""The engine's ceiling: what ``llama-bench`` gets from the same model file without a
server in the way, so the report can say what fraction of it the server delivers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from llmbox.bench.client import BenchError
from llmbox.bench.schema import EngineCeiling


def find_llama_bench(explicit: Path | None) -> Path:
    if explicit is not None:
        if not explicit.is_file():
            raise BenchError(f"--llama-bench {explicit} is not a file")
        return explicit
    found = shutil.which("llama-bench")
    if found is None:
        raise BenchError(
            "--engine-ceiling needs llama-bench: it is not on PATH; pass its location "
            "with --llama-bench PATH"
        )
    return Path(found)


def parse_llama_bench_json(text: str, n_prompt: int, n_gen: int) -> EngineCeiling:
    """Read ``llama-bench -o json``: one test row for pp (n_gen 0), one for tg (n_prompt 0)."""
    try:
        rows: list[dict[str, Any]] = json.loads(text)
        pp = next(r for r in rows if r["n_prompt"] == n_prompt and r["n_gen"] == 0)
        tg = next(r for r in rows if r["n_gen"] == n_gen and r["n_prompt"] == 0)
    except (ValueError, KeyError, TypeError, StopIteration) as exc:
        raise BenchError(f"llama-bench output is not what was expected: {text[:200]!r}") from exc
    build = tg.get("build_commit")
    number = tg.get("build_number")
    return EngineCeiling(
        tool="llama-bench",
        build=f"b{number}-{build}" if number is not None else build,
        n_prompt=n_prompt,
        n_gen=n_gen,
        pp_tok_s=float(pp["avg_ts"]),
        tg_tok_s=float(tg["avg_ts"]),
    )


def measure_ceiling(
    llama_bench: Path, model_file: Path, n_prompt: int, n_gen: int, repetitions: int = 3
) -> EngineCeiling:
    """Run llama-bench (its own warm-up, ``repetitions`` timed runs) and read its means."""
    if not model_file.is_file():
        raise BenchError(f"--model-file {model_file} is not a file")
    command = [
        str(llama_bench),
        "-m", str(model_file),
        "-p", str(n_prompt),
        "-n", str(n_gen),
        "-r", str(repetitions),
        "-o", "json",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"llama-bench did not finish in 900 s: {' '.join(command)}") from exc
    if done.returncode != 0:
        raise BenchError(
            f"llama-bench exited {done.returncode}: {done.stderr.strip()[-300:] or 'no output'}"
        )
    return parse_llama_bench_json(done.stdout, n_prompt, n_gen)
