"""Record one real `llmbox bench` sweep of SmolLM2-135M on llama-server (CPU) as an
example result directory in the contract format, for `llmbox report` to read.

Starts the llama-server that scripts/setup.d/10-llama-cpp.sh built (--parallel 4) on
127.0.0.1, runs `llmbox bench` at concurrency 1, 2, 4 with the llama-bench ceiling,
and writes benchmarks/results/smollm2-cpu/*.json. Bounded: a fixed request count.

    python benchmarks/bench_smollm2_sweep.py [--requests 12] [--host-label dev-cpu-2core]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).parent))
from bench_server import REPO, llama_server


@click.command()
@click.option("--requests", default=12, show_default=True, help="Requests per level.")
@click.option("--prompt-tokens", default=128, show_default=True)
@click.option("--output-tokens", default=64, show_default=True)
@click.option("--host-label", default="dev-cpu-2core", show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPO / "benchmarks/results/smollm2-cpu",
    show_default=True,
)
def run(requests: int, prompt_tokens: int, output_tokens: int, host_label: str, out: Path) -> None:
    """Sweep concurrency 1, 2, 4 against a local SmolLM2 llama-server."""
    with llama_server(parallel=4) as server:
        llama_bench = server.binary.with_name("llama-bench")
        command = [
            str(Path(sys.executable).with_name("llmbox")), "bench", server.url,
            "--model", "smollm2", "--api-key-env", "BENCH_KEY", "--concurrency", "1,2,4",
            "--requests", str(requests), "--prompt-tokens", str(prompt_tokens),
            "--output-tokens", str(output_tokens), "--out", str(out),
            "--host-label", host_label, "--model-file", str(server.model_file),
            "--engine-ceiling", "--llama-bench", str(llama_bench),
        ]  # fmt: skip
        env = {**os.environ, "BENCH_KEY": server.api_key, "COLUMNS": "200"}
        done = subprocess.run(command, env=env, check=False)
    sys.exit(done.returncode)


if __name__ == "__main__":
    run()
