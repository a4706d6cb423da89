"""Which bench results may stand for an option: the run's hardware (GPU model and, on a
box with several, how many NVML listed) must be the option's, and its model the scenario's.
"""

from __future__ import annotations

from llmbox.cost.capacity import best_at_level
from llmbox.cost.catalog import normalise_name
from llmbox.cost.results import BenchResult
from llmbox.cost.scenario import ServiceLevel


def contradiction(
    result: BenchResult, gpu_name: str | None, gpu_count: int | None = None
) -> str | None:
    """Why ``result`` cannot stand for an option with ``gpu_name`` (``None``: CPU only) x
    ``gpu_count`` (``None``: not checked), or ``None`` when the run's hardware agrees with
    the option's. NVML lists every GPU of the host, so a 2-GPU box's run says 2."""
    if result.gpu_name is None and gpu_name is not None:
        return f"{result.path.name} ran with no GPU (gpu: null), the option has a {gpu_name}"
    if result.gpu_name is not None and gpu_name is None:
        return f"{result.path.name} ran on a {result.gpu_name}, the option is CPU only"
    if result.gpu_name is not None and gpu_name is not None:
        ours, theirs = normalise_name(gpu_name), normalise_name(result.gpu_name)
        if ours not in theirs:  # NVML says "NVIDIA GeForce RTX 4090" for "RTX 4090"
            return f"{result.path.name} ran on a {result.gpu_name}, the option has a {gpu_name}"
        if gpu_count is not None and result.gpu_count not in {None, gpu_count}:
            return (
                f"{result.path.name} ran on {result.gpu_count} x {result.gpu_name}, the option "
                f"has {gpu_count} x {gpu_name}"
            )
    return None


def pick_result(
    results: list[BenchResult],
    *,
    host: str | None,
    gpu_name: str | None,
    model_name: str,
    quantization: str,
    concurrency: int,
    service_level: ServiceLevel | None = None,
    gpu_count: int | None = None,
    engine: str | None = None,
) -> BenchResult | None:
    """The result for this option: by host if given, else by GPU; same model. A host's run
    whose hardware contradicts the option's GPU (``None``: CPU only) is never used.

    With a service level: the highest-throughput run that met it (``llmbox.cost.capacity``),
    whatever its load. Without one, or when no run met it: the closed-loop run whose
    concurrency is the largest not above the scenario's (the load it was measured at is one
    the option will see), else the lowest concurrency run; a box measured only in open
    loop, its highest-throughput rate.
    """
    candidates = candidate_results(
        results, host=host, gpu_name=gpu_name, model_name=model_name, quantization=quantization,
        gpu_count=gpu_count, engine=engine,
    )  # fmt: skip
    at_level = best_at_level(candidates, service_level) if service_level is not None else None
    if at_level is not None or not candidates:
        return at_level
    closed = [r for r in candidates if r.concurrency is not None]
    if not closed:
        return max(candidates, key=lambda r: (r.output_tok_s, r.path.name))
    at_or_below = [r for r in closed if (r.concurrency or 0) <= concurrency]
    if at_or_below:
        return max(at_or_below, key=lambda r: (r.concurrency or 0, r.output_tok_s))
    return min(closed, key=lambda r: r.concurrency or 0)


def candidate_results(
    results: list[BenchResult],
    *,
    host: str | None,
    gpu_name: str | None,
    model_name: str,
    quantization: str,
    gpu_count: int | None = None,
    engine: str | None = None,
) -> list[BenchResult]:
    """The runs that may stand for an option: its host's (hardware not contradicting the
    option's GPU and, when given, GPU count) if it names one, else any run on its GPU model
    with that many GPUs; same model either way, and same engine when ``engine`` is given."""
    if host is not None:
        candidates = [
            r for r in results if r.host == host and not contradiction(r, gpu_name, gpu_count)
        ]
    elif gpu_name is None:
        return []  # a CPU-only option takes figures from its own host's runs only
    else:
        wanted = normalise_name(gpu_name)
        candidates = [
            r
            for r in results
            if r.gpu_name
            and normalise_name(r.gpu_name) == wanted
            and (gpu_count is None or r.gpu_count in {None, gpu_count})
        ]
    return [
        r
        for r in candidates
        if r.matches_model(model_name, quantization) and engine in {None, r.engine}
    ]
