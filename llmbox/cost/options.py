"""Turn a scenario's options into concrete figures, each with its provenance.

Order of preference for every figure: measured (bench results) > given in the scenario >
catalog row > an estimate by a stated rule. The estimates:

- throughput: see ``llmbox.cost.throughput`` (bandwidth roofline for one stream, scaled to
  the scenario's concurrency by the batched-decode rule);
- power under load: whole-system idle power + the GPU's TDP (an upper bound: GPUs draw
  well under TDP while generating);
- idle power: the catalog's measured idle whole-system figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmbox.cost.capacity import judge
from llmbox.cost.catalog import Catalog, Gpu, HardwareBuild
from llmbox.cost.fit import FitResult, ModelShape, check_fit
from llmbox.cost.matching import pick_result
from llmbox.cost.provenance import Figure, Provenance
from llmbox.cost.results import BenchResult
from llmbox.cost.scenario import OptionKind, OptionSpec, Scenario
from llmbox.cost.throughput import (
    Calibration,
    ThroughputInputs,
    box_throughput,
    calibrate,
    model_shape,
    streams_label,
)

__all__ = ["Calibration", "ResolvedOption", "model_shape", "resolve_options"]

FALLBACK_IDLE_POWER_W = 50.0
# A CPU-only box with no load power given: idle system + a desktop CPU's package power
# under an all-core load (Intel's 65 W base power class), assumed.
CPU_PACKAGE_POWER_W = 65.0
CPU_ONLY = "none (CPU only)"


def cpu_only_device(ram_gb: float, where: str) -> Gpu:
    """What a CPU-only box serves from: system memory holds the model (for the fit check);
    no GPU bandwidth or board power (its speed comes from a bench result or ``tok_s``)."""
    return Gpu(CPU_ONLY, ram_gb, 0.0, 0.0, f"ram_gb in {where}", "")


@dataclass(frozen=True)
class ResolvedOption:
    """One option with every figure the model needs. Office fields are ``None`` for cloud
    options and the other way round; ``purchase`` is ``None`` for an unpriced build."""

    name: str
    kind: OptionKind
    gpu: Gpu
    gpu_count: int
    throughput: Figure
    fit: FitResult
    purchase: Figure | None = None
    load_power: Figure | None = None
    idle_power: Figure | None = None
    hourly_low: Figure | None = None
    hourly_high: Figure | None = None
    price_basis: str = ""
    # the concurrency ``throughput`` describes: 1 = one stream, n = the box's aggregate
    streams: int = 1
    # set when ``throughput`` is a measured run that met the scenario's service level: that
    # run's load ("concurrency 4", "rate 2 req/s"), whatever ``streams`` says
    at_service_level: str | None = None
    # set when the scenario has a service level and none of the box's measured runs met it
    missed_service_level: bool = False
    # the bench host the option takes figures from, and the engine (and its version) of
    # the run its throughput was measured with; None when no run was used
    host: str | None = None
    engine: str | None = None
    engine_version: str | None = None

    def load_label(self) -> str:
        """What the throughput figure describes, for the tables."""
        if self.at_service_level is not None:
            return f"at the service level, {self.at_service_level}"
        return streams_label(self.streams)


@dataclass(frozen=True)
class _Context:
    scenario: Scenario
    catalog: Catalog
    results: list[BenchResult]
    shape: ModelShape
    calibration: Calibration


def _throughput(
    ctx: _Context, spec: OptionSpec, gpu: Gpu, gpu_count: int, measured: BenchResult | None
) -> Figure:
    model = ctx.scenario.model
    inputs = ThroughputInputs(
        ctx.catalog, ctx.shape, model.quantization, model.context_tokens,
        ctx.scenario.usage.concurrency, ctx.calibration, ctx.scenario.service_level,
    )  # fmt: skip
    return box_throughput(
        inputs, scenario_tok_s=spec.tok_s, gpu=gpu, gpu_count=gpu_count, measured=measured
    )


def _typed(value: float, field: str, spec: OptionSpec) -> Figure:
    """A figure a person typed: into the scenario, or into the inventory of a host."""
    return Figure(value, Provenance.SCENARIO, f"{field} in {spec.origin or 'scenario'}")


def _build_figure(build: HardwareBuild, value: float, estimate: str | None) -> Figure:
    """A catalog build's price or power: catalogued as its source gives it, or an estimate
    when the row says how it was made (``price_estimate`` / ``power_estimate``)."""
    if estimate is None:
        return Figure(value, Provenance.CATALOG, f"{build.source}, {build.as_of}")
    detail = f"{estimate} (catalog row {build.name}, {build.as_of})"
    return Figure(value, Provenance.ESTIMATED, detail)


def _idle_power(
    ctx: _Context, spec: OptionSpec, build: HardwareBuild | None, gpu_count: int
) -> Figure:
    if spec.idle_power_w is not None:
        return _typed(spec.idle_power_w, "idle_power_w", spec)
    if build is not None and build.idle_power_w is not None:
        return _build_figure(build, build.idle_power_w, build.power_estimate)
    if ctx.catalog.system_power:
        row = ctx.catalog.system_power[0]
        detail = f"measured idle at the wall: {row.system}, {row.source}"
        if gpu_count > 1:  # say what the figure leaves out rather than guess a number
            detail += f" (one GPU; the idle draw of {gpu_count - 1} more GPU(s) is not counted)"
        return Figure(row.idle_power_w, Provenance.ESTIMATED, detail)
    return Figure(FALLBACK_IDLE_POWER_W, Provenance.ESTIMATED, "typical desktop idle, assumed")


def _load_power(
    ctx: _Context,
    *,
    spec: OptionSpec,
    build: HardwareBuild | None,
    gpu: Gpu,
    gpu_count: int,
    idle: Figure,
    measured: BenchResult | None,
) -> Figure:
    if measured is not None and measured.gpu_power_w_mean is not None:
        detail = (
            f"GPU {measured.gpu_power_w_mean:g} W in {measured.path.name}"
            f" + {idle.value:g} W idle system ({idle.provenance.value})"
        )
        return Figure(measured.gpu_power_w_mean + idle.value, Provenance.MEASURED, detail)
    if spec.load_power_w is not None:
        return _typed(spec.load_power_w, "load_power_w", spec)
    if build is not None and build.typical_power_w is not None:
        return _build_figure(build, build.typical_power_w, build.power_estimate)
    # a single-GPU PC's wall power says little about a box with several
    similar = ctx.catalog.power(gpu.name) if gpu_count == 1 else None
    if similar is not None:
        detail = (
            f"measured at the wall on another PC with this GPU: {similar.system}, {similar.source}"
        )
        return Figure(similar.load_power_w, Provenance.ESTIMATED, detail)
    if gpu.name == CPU_ONLY:
        detail = f"{idle.value:g} W idle system + {CPU_PACKAGE_POWER_W:g} W CPU package, assumed"
        return Figure(idle.value + CPU_PACKAGE_POWER_W, Provenance.ESTIMATED, detail)
    tdp = gpu.tdp_w * gpu_count
    detail = f"{idle.value:g} W idle system + {tdp:g} W GPU TDP (upper bound)"
    return Figure(idle.value + tdp, Provenance.ESTIMATED, detail)


def _fit(ctx: _Context, gpu: Gpu, gpu_count: int) -> FitResult:
    model = ctx.scenario.model
    return check_fit(
        ctx.shape,
        model.quantization,
        gpu.vram_gb,
        gpu_count=gpu_count,
        context_tokens=model.context_tokens,
        parallel_slots=model.parallel_slots,
    )


def _measured(ctx: _Context, spec: OptionSpec, gpu: Gpu, gpu_count: int) -> BenchResult | None:
    return pick_result(
        ctx.results,
        host=spec.host,
        gpu_name=None if gpu.name == CPU_ONLY else gpu.name,
        gpu_count=None if gpu.name == CPU_ONLY else gpu_count,
        model_name=ctx.shape.name,
        quantization=ctx.scenario.model.quantization,
        concurrency=ctx.scenario.usage.concurrency,
        service_level=ctx.scenario.service_level,
        engine=spec.engine,
    )


def _measured_fields(
    ctx: _Context, spec: OptionSpec, measured: BenchResult | None
) -> dict[str, Any]:
    """The host, the measured run's engine, and ``at_service_level`` /
    ``missed_service_level`` of a box with this measured run."""
    found: dict[str, Any] = {"host": spec.host, "engine": spec.engine}
    if measured is not None:
        found.update(engine=measured.engine, engine_version=measured.engine_version)
    level = ctx.scenario.service_level
    if measured is None or level is None:
        return found
    if judge(measured, level)[0]:
        return {**found, "at_service_level": measured.level}
    return {**found, "missed_service_level": True}


def _office(ctx: _Context, spec: OptionSpec) -> ResolvedOption:
    build = ctx.catalog.hardware(spec.hardware) if spec.hardware else None
    if build is None and spec.gpu is None:
        gpu, gpu_count = cpu_only_device(float(spec.ram_gb or 0), spec.origin or "scenario"), 1
    else:
        gpu = ctx.catalog.gpu(build.gpu if build else str(spec.gpu))
        gpu_count = build.gpu_count if build else spec.gpu_count
    measured = _measured(ctx, spec, gpu, gpu_count)
    if gpu.name == CPU_ONLY and measured is None and spec.tok_s is None:
        raise ValueError(
            f"{spec.name!r} has no GPU, so no bandwidth estimate applies: give it tok_s or "
            f"the bench results of its host (host: {spec.host!r} has none for this model)"
        )
    purchase: Figure | None = None
    if spec.price_usd is not None:
        purchase = _typed(spec.price_usd, "price_usd", spec)
    elif build is not None and build.price_usd is not None:
        purchase = _build_figure(build, build.price_usd, build.price_estimate)
    idle = _idle_power(ctx, spec, build, gpu_count)
    return ResolvedOption(
        name=spec.name or (build.name if build else ""),
        kind=OptionKind.OFFICE,
        gpu=gpu,
        gpu_count=gpu_count,
        throughput=_throughput(ctx, spec, gpu, gpu_count, measured),
        fit=_fit(ctx, gpu, gpu_count),
        purchase=purchase,
        load_power=_load_power(
            ctx, spec=spec, build=build, gpu=gpu, gpu_count=gpu_count, idle=idle, measured=measured
        ),
        idle_power=idle,
        price_basis="purchase",
        streams=ctx.scenario.usage.concurrency,
        **_measured_fields(ctx, spec, measured),
    )


def _cloud(ctx: _Context, spec: OptionSpec) -> ResolvedOption:
    if spec.cloud is None:  # inline: the scenario gives the price
        gpu, gpu_count = ctx.catalog.gpu(str(spec.gpu)), spec.gpu_count
        low = float(spec.usd_per_hour or 0.0)
        high = spec.usd_per_hour_high if spec.usd_per_hour_high is not None else low
        source, provenance = "usd_per_hour in scenario", Provenance.SCENARIO
        basis, name = "hourly", str(spec.name)
    else:
        row = ctx.catalog.cloud_instance(spec.cloud)
        gpu, gpu_count = ctx.catalog.gpu(row.gpu), row.gpu_count
        source, provenance = f"{row.source}, {row.as_of}", Provenance.CATALOG
        name = spec.name or (f"{row.instance_type} (spot)" if spec.spot else row.instance_type)
        if spec.spot:
            if row.spot_low_usd_per_hour is None or row.spot_high_usd_per_hour is None:
                raise ValueError(f"spot: no spot price is catalogued for {row.instance_type!r}")
            low, high, basis = row.spot_low_usd_per_hour, row.spot_high_usd_per_hour, "spot"
        else:
            low, high = row.on_demand_low_usd_per_hour, row.on_demand_high_usd_per_hour
            basis = "on-demand"
        if spec.usd_per_hour is not None:
            low, source, provenance = (
                spec.usd_per_hour,
                "usd_per_hour in scenario",
                Provenance.SCENARIO,
            )
            high = spec.usd_per_hour_high if spec.usd_per_hour_high is not None else low
    measured = _measured(ctx, spec, gpu, gpu_count)
    return ResolvedOption(
        name=name,
        kind=OptionKind.CLOUD,
        gpu=gpu,
        gpu_count=gpu_count,
        throughput=_throughput(ctx, spec, gpu, gpu_count, measured),
        fit=_fit(ctx, gpu, gpu_count),
        hourly_low=Figure(low, provenance, source),
        hourly_high=Figure(high, provenance, source),
        price_basis=basis,
        streams=ctx.scenario.usage.concurrency,
        **_measured_fields(ctx, spec, measured),
    )


def resolve_options(
    scenario: Scenario, catalog: Catalog, results: list[BenchResult] | None = None
) -> tuple[list[ResolvedOption], Calibration]:
    """Resolve every option; ``ValueError`` names the option and the bad catalog name."""
    ctx = _Context(
        scenario, catalog, results or [], model_shape(scenario.model, catalog), calibrate(catalog)
    )
    resolved: list[ResolvedOption] = []
    for index, spec in enumerate(scenario.options):
        if spec.kind is OptionKind.API:
            continue  # hosted APIs are priced per token: llmbox.cost.apis
        is_office = spec.hardware is not None or spec.kind is OptionKind.OFFICE
        try:
            option = _office(ctx, spec) if is_office else _cloud(ctx, spec)
        except ValueError as error:
            raise ValueError(f"options[{index}]: {error}") from None
        if any(option.name == other.name for other in resolved):
            raise ValueError(
                f"options[{index}]: the name {option.name!r} is already used by another "
                "option; give this one a distinct 'name'"
            )
        resolved.append(option)
    return resolved, ctx.calibration
