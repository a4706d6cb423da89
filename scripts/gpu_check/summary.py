#!/usr/bin/env python3
"""Reads what `gpu-check.sh run` measured and writes summary.json and summary.md.

Per load level of `llmbox bench`: the server's generation speed per request (llama.cpp's
own timings) as a share of llama-bench's tg (same model file, same GPU, same generated
length, no server in the way) and of the bandwidth roofline, plus watts and tokens per
joule from NVML. The roofline is an estimate: a generated token reads every weight once
(the output layer is the token embedding table, tied, so it is read whole), so at most
bandwidth / weight bytes tokens per second per stream; KV-cache and activation traffic
is left out, which is small at these lengths.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmbox.bench.schema import BenchResult, read_result
from llmbox.cost.catalog import load_catalog, normalise_name


@dataclass(frozen=True)
class Bandwidth:
    gb_s: float
    source: str


# NVML names of GPUs that the built-in catalog (llmbox/cost/catalog/gpus.csv) names
# differently or not at all; figures from each vendor spec sheet named.
EXTRA_BANDWIDTH = {
    "H100 PCIe": Bandwidth(2000, "NVIDIA H100 Tensor Core GPU datasheet (H100 PCIe)"),
    "H100 NVL": Bandwidth(3900, "NVIDIA H100 Tensor Core GPU datasheet (H100 NVL)"),
    "H200 NVL": Bandwidth(4800, "NVIDIA H200 Tensor Core GPU datasheet (H200 NVL)"),
    "GH200 480GB": Bandwidth(4000, "NVIDIA GH200 Grace Hopper Superchip datasheet (96 GB HBM3)"),
    "B200": Bandwidth(8000, "NVIDIA DGX B200 datasheet (64 TB/s over 8 GPUs)"),
    "A100-SXM4-80GB": Bandwidth(2039, "NVIDIA A100 Tensor Core GPU datasheet (80 GB SXM)"),
    "A100-SXM4-40GB": Bandwidth(1555, "NVIDIA A100 Tensor Core GPU datasheet (40 GB SXM)"),
    "A100-PCIE-40GB": Bandwidth(1555, "NVIDIA A100 Tensor Core GPU datasheet (40 GB PCIe)"),
    "A100 80GB PCIe": Bandwidth(1935, "NVIDIA A100 Tensor Core GPU datasheet (80 GB PCIe)"),
    "A10": Bandwidth(600, "NVIDIA A10 Tensor Core GPU datasheet"),
    "L40": Bandwidth(864, "NVIDIA L40 GPU datasheet"),
    "RTX 6000 Ada Generation": Bandwidth(960, "NVIDIA RTX 6000 Ada Generation datasheet"),
    "RTX A6000": Bandwidth(768, "NVIDIA RTX A6000 datasheet"),
}
# What NVML adds after a catalog name without changing the card ("H100 80GB HBM3").
_MEMORY_SUFFIXES = ("", "hbm3", "hbm3e", "hbm2e")


def bandwidth_for(gpu_name: str) -> Bandwidth | None:
    """Spec-sheet memory bandwidth of the GPU NVML calls ``gpu_name``, or None if unknown.

    Matches the catalog's name exactly or followed only by a memory-type word, never by a
    model suffix: "RTX 4070 Ti SUPER" is not an "RTX 4070 Ti", an "A100" is not an "A10".
    """
    wanted = normalise_name(gpu_name)
    known = {
        normalise_name(g.name): Bandwidth(
            g.bandwidth_gbps, f"llmbox catalog gpus.csv: {g.name}, {g.source} ({g.as_of})"
        )
        for g in load_catalog().gpus
    }
    known |= {normalise_name(name): bw for name, bw in EXTRA_BANDWIDTH.items()}
    for key, bandwidth in known.items():
        if any(wanted == key + suffix for suffix in _MEMORY_SUFFIXES):
            return bandwidth
    return None


def weight_bytes_per_token(model_file: Path) -> int:
    """Bytes of weights one generated token reads: every tensor, except the token
    embedding table when the model has a separate output layer (then only one row of it)."""
    import gguf  # noqa: PLC0415  (llama.cpp's gguf-py: only on the path where a model is read)

    reader = gguf.GGUFReader(str(model_file))
    sizes = {tensor.name: int(tensor.n_bytes) for tensor in reader.tensors}
    if "output.weight" in sizes:
        sizes.pop("token_embd.weight", None)
    return sum(sizes.values())


def share(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def level_row(
    result: BenchResult, ceiling_tg_tok_s: float | None, roofline_tok_s: float | None
) -> dict[str, Any]:
    """One load level. The server's tg is llama.cpp's own decode speed per request
    (timings.predicted_per_second, mean): measured inside the server, so SSE chunks that
    reach the client bunched together do not inflate it as they can the client's
    per-stream figure, which is kept beside it with llmbox bench's own share."""
    metrics, settings = result.metrics, result.metadata.settings
    server_tg = metrics.server_tg_tok_s_mean
    return {
        "concurrency": settings.concurrency,
        "completed": metrics.completed,
        "failed": metrics.failed,
        "output_tok_s": metrics.output_tok_s,
        "server_tg_tok_s_mean": server_tg,
        "tg_share_of_llama_bench": share(server_tg, ceiling_tg_tok_s),
        "tg_share_of_roofline": share(server_tg, roofline_tok_s),
        "client_per_stream_tok_s": metrics.output_tok_s_per_stream_mean,
        "client_share_of_llama_bench": metrics.tg_fraction_of_ceiling,
        "ttft_ms_p50": metrics.ttft_ms_p50,
        "gpu_power_w_mean": metrics.gpu_power_w_mean,
        "tokens_per_joule": metrics.tokens_per_joule,
    }


def standard_llama_bench(path: Path | None) -> dict[str, Any] | None:
    """pp512 and tg128 from ``llama-bench -o json`` (means and standard deviations), with
    the backend and GPU it reports."""
    if path is None:
        return None
    rows: list[dict[str, Any]] = json.loads(path.read_text())
    pp = next(r for r in rows if r["n_gen"] == 0)
    tg = next(r for r in rows if r["n_prompt"] == 0)
    return {
        "pp512_tok_s": pp["avg_ts"], "pp512_tok_s_std": pp["stddev_ts"],
        "tg128_tok_s": tg["avg_ts"], "tg128_tok_s_std": tg["stddev_ts"],
        "backends": tg.get("backends"), "gpu_info": tg.get("gpu_info"),
        "n_gpu_layers": tg.get("n_gpu_layers"), "flash_attn": tg.get("flash_attn"),
    }  # fmt: skip


def summarise(
    bench_dir: Path,
    model_file: Path,
    run_info: dict[str, Any],
    llama_bench_json: Path | None = None,
) -> dict[str, Any]:
    results = sorted(
        (read_result(p) for p in bench_dir.glob("*.json")),
        key=lambda r: r.metadata.settings.concurrency or 0,
    )
    if not results:
        sys.exit(f"no bench result in {bench_dir}: llmbox bench wrote nothing")
    meta = results[0].metadata
    bytes_per_token = weight_bytes_per_token(model_file)
    bandwidth = bandwidth_for(meta.gpu.name) if meta.gpu is not None else None
    roofline = bandwidth.gb_s * 1e9 / bytes_per_token if bandwidth else None
    if meta.gpu is None:
        roofline_note = f"not computed: no GPU in the bench results ({meta.gpu_note})"
    elif bandwidth is None:
        roofline_note = (
            f"not computed: {meta.gpu.name} is in neither the llmbox catalog "
            "nor summary.py's EXTRA_BANDWIDTH table"
        )
    else:
        roofline_note = f"estimated: {bandwidth.gb_s:g} GB/s ({bandwidth.source}) / weight bytes"
    ceiling = meta.engine_ceiling
    return {
        "run": run_info,
        "gpu": meta.gpu.model_dump() if meta.gpu else None,
        "gpu_note": meta.gpu_note,
        "engine": meta.engine.model_dump(),
        "model": {
            "file": model_file.name,
            "file_bytes": model_file.stat().st_size,
            "weight_bytes_per_token": bytes_per_token,
        },
        "llama_bench": ceiling.model_dump() if ceiling else None,
        "llama_bench_standard": standard_llama_bench(llama_bench_json),
        "roofline": {
            "bandwidth_gb_s": bandwidth.gb_s if bandwidth else None,
            "tg_tok_s": roofline,
            "note": roofline_note,
        },
        "levels": [level_row(r, ceiling.tg_tok_s if ceiling else None, roofline) for r in results],
        "vllm": "skipped: vLLM's CUDA wheel and the torch it needs are several GB, too "
        "large for the offline bundle",
    }


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _count(parameters: int | None) -> str:
    if parameters is None:
        return "n/a"
    return f"{parameters / 1e9:.2f} B" if parameters >= 1e9 else f"{parameters / 1e6:.2f} M"


def _standard_line(standard: dict[str, Any] | None) -> str:
    if standard is None:
        return "- llama-bench pp512/tg128: not run"
    return (
        f"- llama-bench pp512 {standard['pp512_tok_s']:.1f} ± {standard['pp512_tok_s_std']:.1f}"
        f" tok/s, tg128 {standard['tg128_tok_s']:.1f} ± {standard['tg128_tok_s_std']:.1f} tok/s "
        f"(measured, 3 runs; backend {standard['backends']}, GPU "
        f"{standard['gpu_info'] or 'none'}, n_gpu_layers {standard['n_gpu_layers']})"
    )


def markdown(summary: dict[str, Any]) -> str:
    run, gpu, bench = summary["run"], summary["gpu"], summary["llama_bench"]
    lines = [
        "# llmbox GPU check",
        "",
        f"- GPU: {gpu['name'] if gpu else 'none'} (compute capability "
        f"{run.get('compute_cap', 'n/a')}, driver {gpu['driver'] if gpu else 'n/a'}); "
        f"CUDA compiler {run.get('nvcc', 'n/a')}",
        f"- llama.cpp {summary['engine'].get('version')} from "
        f"{run.get('llama_cpp_source', 'n/a')}, built in {run.get('build_s', 'n/a')} s "
        f"with {run.get('cmake_cuda_args', 'n/a')}",
        f"- CUDA libraries llama-server loads: {run.get('cuda_libraries', 'n/a')}",
        f"- model: random-weight Llama shape {run.get('model_size')}, "
        f"{_count(run.get('parameters'))} parameters, Q4_K_M "
        f"{summary['model']['file_bytes'] / 2**20:.0f} MiB (measured file size)",
        f"- llama-bench as llmbox bench's ceiling (measured): pp{bench['n_prompt']} "
        f"{bench['pp_tok_s']:.1f} tok/s, "
        f"tg{bench['n_gen']} {bench['tg_tok_s']:.1f} tok/s"
        if bench
        else "- llama-bench: not run",
        _standard_line(summary["llama_bench_standard"]),
        f"- roofline tg: {_fmt(summary['roofline']['tg_tok_s'], '.0f')} tok/s per stream "
        f"({summary['roofline']['note']})",
        f"- whole run: {run.get('total_s', 'n/a')} s (build {run.get('build_s', 'n/a')}, "
        f"model {run.get('model_s', 'n/a')}, quantise {run.get('quantize_s', 'n/a')}, "
        f"llama-bench {run.get('llama_bench_s', 'n/a')}, llmbox bench with its ceiling "
        f"{run.get('bench_s', 'n/a')}; measured)",
        f"- vLLM: {summary['vllm']}",
        "",
        "llmbox bench (measured; power from NVML). Server tg: llama.cpp's own decode speed "
        "per request (timings.predicted_per_second, mean), the figure the shares use; "
        "client tok/s per stream: as llmbox bench sees the stream arrive.",
        "",
        "| conc | ok/failed | tok/s | server tg tok/s | of llama-bench tg | of roofline "
        "| client tok/s per stream | W | tok/J | TTFT p50 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["levels"]:
        lines.append(
            f"| {row['concurrency']} | {row['completed']}/{row['failed']} "
            f"| {row['output_tok_s']:.1f} | {_fmt(row['server_tg_tok_s_mean'], '.1f')} "
            f"| {_fmt(row['tg_share_of_llama_bench'], '.0%')} "
            f"| {_fmt(row['tg_share_of_roofline'], '.0%')} "
            f"| {_fmt(row['client_per_stream_tok_s'], '.1f')} "
            f"| {_fmt(row['gpu_power_w_mean'], '.0f')} | {_fmt(row['tokens_per_joule'], '.2f')} "
            f"| {_fmt(row['ttft_ms_p50'], '.0f')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench-dir", type=Path, required=True)
    parser.add_argument("--model-file", type=Path, required=True)
    parser.add_argument("--run-info", type=Path, required=True, help="JSON the script wrote")
    parser.add_argument("--llama-bench-json", type=Path, help="llama-bench -o json output")
    parser.add_argument("--out", type=Path, required=True, help="folder for summary.*")
    args = parser.parse_args()
    run_info = json.loads(args.run_info.read_text())
    summary = summarise(args.bench_dir, args.model_file, run_info, args.llama_bench_json)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = markdown(summary)
    (args.out / "summary.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
