"""Read `llmbox bench` result JSON files (schema_version 1) as they are.

Only the fields the cost model uses are taken; unknown keys are ignored, as the bench
contract asks. A file that is not a bench result is an error naming the file and the key,
so a typo in ``--results`` never silently turns measured figures into estimates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmbox.cost.catalog import normalise_name

SUPPORTED_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BenchResult:
    """One bench run: who ran what, at which concurrency, and what it delivered."""

    path: Path
    host: str
    gpu_name: str | None
    model_name: str
    quantization: str | None
    concurrency: int
    completed: int
    output_tok_s: float
    gpu_power_w_mean: float | None

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


def read_result(path: Path) -> BenchResult:
    """Parse one result file; ``ValueError`` names the file and what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"bench result {path.name}: not valid JSON ({error.msg} at line {error.lineno})"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"bench result {path.name}: expected a JSON object")
    version = _require(data, "schema_version", path, "")
    if version != SUPPORTED_SCHEMA_VERSION:
        raise ValueError(
            f"bench result {path.name}: schema_version {version!r} is not supported "
            f"(this llmbox reads {SUPPORTED_SCHEMA_VERSION})"
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
    return BenchResult(
        path=path,
        host=str(_require(metadata, "host", path, "metadata.")),
        gpu_name=str(gpu["name"]) if isinstance(gpu, dict) and gpu.get("name") else None,
        model_name=str(_require(model, "name", path, "metadata.model.")),
        quantization=str(model["quantization"]) if model.get("quantization") else None,
        concurrency=int(_require(settings, "concurrency", path, "metadata.settings.")),
        completed=completed,
        # a run in which nothing completed legitimately has 0 tok/s; any other must be > 0
        output_tok_s=_number(tok_s, path, "output_tok_s", positive=completed > 0),
        gpu_power_w_mean=None
        if power is None
        else _number(power, path, "gpu_power_w_mean", positive=True),
    )


def read_results(directory: Path | str) -> tuple[list[BenchResult], list[BenchResult]]:
    """Every ``*.json`` bench result in ``directory`` (not recursive), sorted by name:
    the usable ones, and the runs in which no request completed (nothing measured)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"results directory {str(directory)!r} does not exist")
    every = [read_result(path) for path in sorted(directory.glob("*.json"))]
    return [r for r in every if r.completed > 0], [r for r in every if r.completed == 0]


def pick_result(
    results: list[BenchResult],
    *,
    host: str | None,
    gpu_name: str,
    model_name: str,
    quantization: str,
    concurrency: int,
) -> BenchResult | None:
    """The result for this option: by host if given, else by GPU; same model.

    Prefers the run whose concurrency is the largest not above the scenario's (the load it
    was measured at is one the option will see); otherwise the lowest concurrency run.
    """
    if host is not None:
        candidates = [r for r in results if r.host == host]
    else:
        wanted = normalise_name(gpu_name)
        candidates = [r for r in results if r.gpu_name and normalise_name(r.gpu_name) == wanted]
    candidates = [r for r in candidates if r.matches_model(model_name, quantization)]
    if not candidates:
        return None
    at_or_below = [r for r in candidates if r.concurrency <= concurrency]
    if at_or_below:
        return max(at_or_below, key=lambda r: (r.concurrency, r.output_tok_s))
    return min(candidates, key=lambda r: r.concurrency)
