"""Read `llmbox bench` result JSON files (schema_version 1 or 2) as they are, loose or as
the run folders ``playbooks/benchmark.yml`` brings back (``results/<host>/<run id>/``).

Only the fields the cost model uses are taken; unknown keys are ignored, as the bench
contract asks. A file that is not a bench result is an error naming the file and the key,
so a typo in ``--results`` never silently turns measured figures into estimates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmbox.bench.schema import READABLE_SCHEMA_VERSIONS
from llmbox.cost.catalog import normalise_name
from llmbox.cost.identity import MANIFEST_NAME, RunManifest, read_manifest


@dataclass(frozen=True)
class BenchResult:
    """One bench run: who ran what, at which load, and what it delivered."""

    path: Path
    host: str
    gpu_name: str | None
    model_name: str
    quantization: str | None
    concurrency: int | None  # None: an open-loop run at ``request_rate``
    completed: int
    output_tok_s: float
    gpu_power_w_mean: float | None
    request_rate: float | None = None
    failed: int = 0
    ttft_ms_p95: float | None = None  # absent from schema_version 1 files
    itl_ms_p95: float | None = None
    # how many GPUs NVML saw on the host (metadata.gpu.count); None: no GPU or not recorded
    gpu_count: int | None = None
    # metadata.engine: "llama.cpp", "vllm", "unknown" (None: the file does not say)
    engine: str | None = None
    engine_version: str | None = None

    @property
    def level(self) -> str:
        """``concurrency 4`` or ``rate 2 req/s``: the load the run was measured at."""
        if self.concurrency is None:
            return f"rate {self.request_rate:g} req/s"
        return f"concurrency {self.concurrency}"

    def matches_model(self, model_name: str, quantization: str) -> bool:
        """Same quantization (when recorded) and one normalised model name contains the
        other: "Llama 3 8B" matches "Meta-Llama-3-8B-Instruct" ("llama38b")."""
        if self.quantization is not None and normalise_name(self.quantization) != normalise_name(
            quantization
        ):
            return False
        ours, theirs = normalise_name(model_name), normalise_name(self.model_name)
        return ours in theirs or theirs in ours


def _require(data: dict[str, Any], key: str, path: Path, where: str) -> Any:
    if key not in data:
        raise ValueError(f"bench result {path.name}: missing key {where}{key!r}")
    return data[key]


def _number(value: Any, path: Path, name: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"bench result {path.name}: {name} is {value!r}, expected a number")
    if positive and value <= 0:
        raise ValueError(f"bench result {path.name}: {name} is {value!r}, expected > 0")
    return float(value)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"bench result {path.name}: not valid JSON ({error.msg} at line {error.lineno})"
        ) from None


def read_result(path: Path) -> BenchResult:
    """Parse one result file; ``ValueError`` names the file and what is wrong."""
    return _result_from(_load_json(path), path)


def _result_from(data: Any, path: Path) -> BenchResult:
    if not isinstance(data, dict):
        raise ValueError(f"bench result {path.name}: expected a JSON object")
    version = _require(data, "schema_version", path, "")
    if version not in READABLE_SCHEMA_VERSIONS:
        readable = " and ".join(map(str, READABLE_SCHEMA_VERSIONS))
        raise ValueError(
            f"bench result {path.name}: schema_version {version!r} is not supported "
            f"(this llmbox reads {readable})"
        )
    metadata = _require(data, "metadata", path, "")
    metrics = _require(data, "metrics", path, "")
    model = _require(metadata, "model", path, "metadata.")
    settings = _require(metadata, "settings", path, "metadata.")
    gpu = metadata.get("gpu")
    power = metrics.get("gpu_power_w_mean")
    completed = int(_number(_require(metrics, "completed", path, "metrics."), path, "completed",
                            positive=False))  # fmt: skip
    tok_s = _require(metrics, "output_tok_s", path, "metrics.")
    concurrency = _require(settings, "concurrency", path, "metadata.settings.")
    rate = settings.get("request_rate")
    if concurrency is None and rate is None:
        raise ValueError(
            f"bench result {path.name}: metadata.settings has neither a concurrency nor a "
            "request_rate"
        )

    def optional(key: str) -> float | None:
        value = metrics.get(key)
        return None if value is None else _number(value, path, key, positive=False)

    engine = metadata.get("engine")
    engine = engine if isinstance(engine, dict) else {}
    return BenchResult(
        path=path,
        host=str(_require(metadata, "host", path, "metadata.")),
        engine=str(engine["name"]) if engine.get("name") else None,
        engine_version=str(engine["version"]) if engine.get("version") else None,
        gpu_name=str(gpu["name"]) if isinstance(gpu, dict) and gpu.get("name") else None,
        gpu_count=_gpu_count(gpu, path),
        model_name=str(_require(model, "name", path, "metadata.model.")),
        quantization=str(model["quantization"]) if model.get("quantization") else None,
        concurrency=None if concurrency is None else int(concurrency),
        request_rate=None if rate is None else _number(rate, path, "request_rate", positive=True),
        completed=completed,
        failed=int(optional("failed") or 0),
        ttft_ms_p95=optional("ttft_ms_p95"),
        itl_ms_p95=optional("itl_ms_p95"),
        # a run in which nothing completed legitimately has 0 tok/s; any other must be > 0
        output_tok_s=_number(tok_s, path, "output_tok_s", positive=completed > 0),
        gpu_power_w_mean=None
        if power is None
        else _number(power, path, "gpu_power_w_mean", positive=True),
    )


def _gpu_count(gpu: Any, path: Path) -> int | None:
    """``metadata.gpu.count``: the GPUs NVML listed on the host (a whole number >= 1)."""
    if not isinstance(gpu, dict) or gpu.get("count") is None:
        return None
    count = gpu["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(
            f"bench result {path.name}: metadata.gpu.count is {count!r}, expected a whole "
            "number >= 1"
        )
    return count


def _is_bench_result(data: Any) -> bool:
    """A JSON object with the bench contract's top-level keys; anything else in a results
    folder (another tool's file, a run manifest) is not read as a bench result."""
    return isinstance(data, dict) and "schema_version" in data and "metadata" in data


# llm_benchmark_engine (the role's variable) -> the engine name `llmbox bench` records
_BENCH_NAME = {"llama_cpp": "llama.cpp"}


@dataclass(frozen=True)
class HostRun:
    """One ``benchmark.yml`` run of one host: ``results/<host>/<run id>/`` with its manifest."""

    folder: Path
    manifest: RunManifest
    results: tuple[BenchResult, ...]

    @property
    def host(self) -> str:
        return self.manifest.host

    @property
    def engine(self) -> str:
        """The engine its result files name (what the server said it is), else the
        manifest's ``llm_benchmark_engine`` under the bench's name for it."""
        said = {r.engine for r in self.results if r.engine is not None}
        if len(said) == 1:
            return said.pop()
        return _BENCH_NAME.get(self.manifest.engine, self.manifest.engine)


@dataclass(frozen=True)
class ResultsTree:
    """What a results folder holds: the bench results to use (loose files and each host's
    newest run per engine), the newest run of each benchmarked host and engine, the runs
    in which no request completed, and notes for the report (runs superseded, files skipped)."""

    results: tuple[BenchResult, ...]
    host_runs: tuple[HostRun, ...]
    empty: tuple[BenchResult, ...]
    notes: tuple[str, ...]


def _read_run(folder: Path, notes: list[str]) -> HostRun:
    manifest = read_manifest(folder / MANIFEST_NAME)
    results = []
    for name in manifest.result_files:
        path = folder / name
        if not path.is_file():
            raise ValueError(f"run {folder}: {MANIFEST_NAME} lists {name}, which is missing")
        result = read_result(path)
        if result.host != manifest.host:
            raise ValueError(
                f"bench result {path}: host {result.host!r} is not the run's host "
                f"{manifest.host!r} ({MANIFEST_NAME})"
            )
        results.append(result)
    listed = set(manifest.result_files) | {MANIFEST_NAME}
    for extra in sorted(p.name for p in folder.glob("*.json") if p.name not in listed):
        notes.append(f"skipped {folder / extra}: not listed in the run's {MANIFEST_NAME}")
    return HostRun(folder, manifest, tuple(results))


def read_results_tree(directory: Path | str) -> ResultsTree:
    """Every bench result under ``directory``, subfolders included.

    A folder with an ``llmbox-run.json`` manifest is one run of one host (what
    ``playbooks/benchmark.yml`` fetches); of several runs of a host with one engine the
    newest (by its ``created_at``, then run id) is used, and a note says which. Other
    bench files are used as they are; JSON files that are not bench results are skipped with a note.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"results directory {str(directory)!r} does not exist")
    notes: list[str] = []
    run_folders = {m.parent for m in directory.rglob(MANIFEST_NAME)}
    runs = [_read_run(folder, notes) for folder in sorted(run_folders)]
    loose: list[BenchResult] = []
    for path in sorted(directory.rglob("*.json")):
        if path.parent in run_folders:
            continue
        data = _load_json(path)  # read once: classified, then parsed from the same text
        if _is_bench_result(data):
            loose.append(_result_from(data, path))
        else:
            notes.append(f"skipped {path}: not a bench result (no schema_version/metadata)")
    # A host measured with llama.cpp and then vLLM keeps both: the newest run of each engine.
    newest: dict[tuple[str, str], HostRun] = {}
    for run in runs:
        kept = newest.get((run.host, run.engine))
        key = (run.manifest.created_at, run.manifest.run_id)
        if kept is None or key > (kept.manifest.created_at, kept.manifest.run_id):
            newest[run.host, run.engine] = run
    engines = {host: sum(1 for h, _ in newest if h == host) for host, _ in newest}
    for (host, engine), run in sorted(newest.items()):
        count = sum(1 for r in runs if (r.host, r.engine) == (host, engine))
        if count > 1:
            label = host if engines[host] == 1 else f"{host} ({engine})"
            notes.append(
                f"{label}: the newest of {count} runs is used ({run.manifest.run_id}, "
                f"{run.folder.relative_to(directory)})"
            )
    every = loose + [r for run in newest.values() for r in run.results]
    return ResultsTree(
        results=tuple(r for r in every if r.completed > 0),
        host_runs=tuple(newest[key] for key in sorted(newest)),
        empty=tuple(r for r in every if r.completed == 0),
        notes=tuple(notes),
    )


def read_results(directory: Path | str) -> tuple[list[BenchResult], list[BenchResult]]:
    """The usable bench results under ``directory`` and the runs in which no request
    completed (nothing measured); see :func:`read_results_tree`."""
    tree = read_results_tree(directory)
    return list(tree.results), list(tree.empty)
