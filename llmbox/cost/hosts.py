"""Benchmarked hosts become report options: each host that ``playbooks/benchmark.yml``
measured is priced from the hardware identity its run manifest records (a catalog build,
a catalog cloud instance, or an inline box), with no scenario editing.

Also the report's notes about results: a results file that matches no option, a host's
run whose hardware contradicts the option it would stand for, and, with a service level,
which run each measured box is taken at or that none of its runs met it.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmbox.cost.capacity import best_at_level, describe, judge
from llmbox.cost.catalog import Catalog, normalise_name
from llmbox.cost.identity import HardwareIdentity, hardware_mismatch
from llmbox.cost.matching import candidate_results, contradiction
from llmbox.cost.results import BenchResult, HostRun
from llmbox.cost.scenario import OptionKind, OptionSpec, Scenario


def _spec(identity: HardwareIdentity, host: str) -> OptionSpec:
    name = identity.name or host
    if identity.build is not None:
        return OptionSpec(hardware=identity.build, name=name, host=host)
    if identity.cloud is not None:
        return OptionSpec(cloud=identity.cloud, spot=identity.spot, name=name, host=host)
    return OptionSpec(
        name=name,
        kind=OptionKind.OFFICE,
        gpu=identity.gpu,
        gpu_count=identity.gpu_count,
        price_usd=identity.price_usd,
        load_power_w=identity.load_power_w,
        idle_power_w=identity.idle_power_w,
        ram_gb=identity.ram_gb,
        host=host,
        origin=f"llm_benchmark_hardware of {host}",
    )


def engines_measured(scenario: Scenario, results: Sequence[BenchResult], host: str) -> list[str]:
    """The engines ``host`` was measured with, on the scenario's model."""
    model, quant = scenario.model.name, scenario.model.quantization.value
    return sorted(
        {r.engine for r in results if r.host == host and r.engine and r.matches_model(model, quant)}
    )


def _per_engine(spec: OptionSpec, engines: list[str]) -> list[OptionSpec]:
    """One option per engine the host was measured with, named so (``ws-1 (vllm)``), so
    the report shows the engines side by side; the spec itself when there is one."""
    if spec.host is None or spec.engine is not None or len(engines) < 2:
        return [spec]
    cloud = f"{spec.cloud} (spot)" if spec.cloud and spec.spot else spec.cloud
    base = spec.name or spec.hardware or cloud or spec.host
    return [spec.model_copy(update={"name": f"{base} ({e})", "engine": e}) for e in engines]


def with_measured_hosts(
    scenario: Scenario, runs: Sequence[HostRun], results: Sequence[BenchResult] = ()
) -> Scenario:
    """The scenario plus one option per benchmarked host it does not already name
    (an option with ``host: <name>`` keeps the scenario's own description of it).

    A host measured with several engines (``results``: llama.cpp and vLLM on the same box)
    becomes one option per engine, its own or the scenario's, each priced the same and
    taking its throughput from that engine's runs only: results never mix engines.
    """
    named = {spec.host for spec in scenario.options if spec.host is not None}
    identities: dict[str, HardwareIdentity] = {}
    for run in runs:
        if run.host not in named:
            identities.setdefault(run.host, run.manifest.hardware)
    specs = [*scenario.options, *(_spec(i, host) for host, i in identities.items())]
    options = [
        split
        for spec in specs
        for split in _per_engine(spec, engines_measured(scenario, results, spec.host or ""))
    ]
    if options == list(scenario.options):
        return scenario
    return scenario.model_copy(update={"options": options})


def _option_gpu(spec: OptionSpec, catalog: Catalog) -> str | None:
    if spec.hardware is not None:
        return catalog.hardware(spec.hardware).gpu
    if spec.cloud is not None:
        return catalog.cloud_instance(spec.cloud).gpu
    return spec.gpu


def _option_gpu_count(spec: OptionSpec, catalog: Catalog) -> int | None:
    """The option's GPU count (``None`` for a CPU-only box: nothing to compare)."""
    if spec.hardware is not None:
        return catalog.hardware(spec.hardware).gpu_count
    if spec.cloud is not None:
        return catalog.cloud_instance(spec.cloud).gpu_count
    return None if spec.gpu is None else spec.gpu_count


def gpus_seen(run: HostRun) -> tuple[str | None, int | None]:
    """The GPU model and count NVML listed on the run's host: the manifest's, the count
    taken from the run's result files (``metadata.gpu.count``) where the manifest has none."""
    count = run.manifest.gpu_count_seen
    if count is None:
        counts = {r.gpu_count for r in run.results if r.gpu_count is not None}
        count = max(counts) if counts else None
    return run.manifest.gpu_seen, count


def hardware_notes(runs: Sequence[HostRun], catalog: Catalog) -> list[str]:
    """A note for each benchmarked host with the GPU model its ``llm_benchmark_hardware``
    names but another number of them (as NVML listed them): a 2-GPU host priced as a
    1-GPU build is said to be so, with the catalog builds that match what was seen. (A run
    on another GPU model, or none, is already a note of :func:`result_notes`.)"""
    notes = []
    for run in runs:
        gpu, count = gpus_seen(run)
        wanted = run.manifest.hardware.catalog_gpu(catalog)
        if gpu is None or wanted is None or normalise_name(wanted) not in normalise_name(gpu):
            continue
        reason = hardware_mismatch(run.manifest.hardware, catalog, gpu, count)
        if reason is not None:
            where = f"llm_benchmark_hardware, run {run.manifest.run_id}"
            notes.append(f"{run.host}: {reason} ({where})")
    return notes


def result_notes(scenario: Scenario, catalog: Catalog, results: Sequence[BenchResult]) -> list[str]:
    """A note for each usable result that no option takes, and for each host run whose
    hardware contradicts its option (its figures are then not marked measured)."""
    notes = []
    boxes = [spec for spec in scenario.options if spec.kind is not OptionKind.API]
    gpus = {id(spec): _option_gpu(spec, catalog) for spec in boxes}
    counts = {id(spec): _option_gpu_count(spec, catalog) for spec in boxes}
    model, quant = scenario.model.name, scenario.model.quantization.value
    for result in results:
        same_host = [spec for spec in boxes if spec.host == result.host]
        reasons = [contradiction(result, gpus[id(spec)], counts[id(spec)]) for spec in same_host]
        if same_host and all(reasons):
            notes.append(f"not used as measured: {reasons[0]} ({result.host})")
            continue
        if not result.matches_model(model, quant):
            notes.append(
                f"{result.path.name}: measured {result.model_name} {result.quantization or ''}"
                f", not the scenario's {model} {quant}; matches no option".replace(" ,", ",")
            )
            continue
        by_gpu = result.gpu_name is not None and any(
            spec.host is None
            and gpus[id(spec)] is not None
            and normalise_name(str(gpus[id(spec)])) == normalise_name(result.gpu_name)
            and result.gpu_count in {None, counts[id(spec)]}
            for spec in boxes
        )
        if not same_host and not by_gpu:
            where = result.gpu_name or "no GPU"
            notes.append(f"{result.path.name}: host {result.host} ({where}) matches no option")
    return notes


def service_level_notes(
    scenario: Scenario, catalog: Catalog, results: Sequence[BenchResult]
) -> list[str]:
    """With a service level: for each measured box, the run its throughput is taken from,
    or a flag that none of its runs met the level (the box stays in the report)."""
    level = scenario.service_level
    if level is None:
        return []
    notes = []
    for spec in scenario.options:
        if spec.kind is OptionKind.API:
            continue
        runs = candidate_results(
            list(results), host=spec.host, gpu_name=_option_gpu(spec, catalog),
            model_name=scenario.model.name, quantization=scenario.model.quantization.value,
            gpu_count=_option_gpu_count(spec, catalog), engine=spec.engine,
        )  # fmt: skip
        if not runs:
            continue
        name = spec.name or spec.hardware or spec.cloud or spec.host
        best = best_at_level(runs, level)
        if best is not None:
            notes.append(
                f"{name}: capacity at the service level ({describe(level)}) from "
                f"{best.path.name} ({best.level}, {judge(best, level)[1]}): "
                f"{best.output_tok_s:.4g} tok/s"
            )
            continue
        closest = min(runs, key=lambda r: (r.ttft_ms_p95 or float("inf"), r.path.name))
        notes.append(
            f"{name}: NEVER met the service level ({describe(level)}) in {len(runs)} measured "
            f"run(s) (closest: {closest.path.name}, {closest.level}: {judge(closest, level)[1]}); "
            "its throughput is not a capacity at that level"
        )
    return notes
