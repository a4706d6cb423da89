"""Turn a scenario's options into concrete figures, each with its provenance.

Order of preference for every figure: measured (bench results) > given in the scenario >
catalog row > an estimate by a stated rule. The estimates:

- throughput: decode is memory-bound, so tokens/s ~ bandwidth / model bytes x efficiency,
  the efficiency being the median of (published tg / roofline) over the catalog's rows;
- power under load: whole-system idle power + the GPU's TDP (an upper bound: GPUs draw
  well under TDP while generating);
- idle power: the catalog's measured idle whole-system figure.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from llmbox.cost.catalog import Catalog, Gpu, HardwareBuild
from llmbox.cost.fit import FitResult, ModelShape, Quantization, check_fit, weights_bytes
from llmbox.cost.provenance import Figure, Provenance
from llmbox.cost.results import BenchResult, pick_result
from llmbox.cost.scenario import ModelChoice, OptionKind, OptionSpec, Scenario

# Used only when the catalog has no row to calibrate on.
FALLBACK_EFFICIENCY = 0.65
FALLBACK_IDLE_POWER_W = 50.0


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


@dataclass(frozen=True)
class Calibration:
    """The roofline efficiency factor and what it was calibrated on."""

    efficiency: float
    rows: int

    @property
    def how(self) -> str:
        if self.rows == 0:
            return f"efficiency {self.efficiency:.2f} assumed (no catalog rows to calibrate on)"
        return f"efficiency {self.efficiency:.2f}, median of {self.rows} catalog rows"


def model_shape(choice: ModelChoice, catalog: Catalog) -> ModelShape:
    """The scenario's model from the catalog, with any inline fields taking precedence."""
    try:
        row = catalog.model(choice.name)
    except ValueError as error:
        if choice.params_b is None:
            raise ValueError(f"model.name: {error}; or give params_b for an inline model") from None
        return ModelShape(
            choice.name, choice.params_b, choice.layers, choice.kv_heads, choice.head_dim
        )
    return ModelShape(
        row.name,
        choice.params_b or row.params_b,
        choice.layers or row.layers,
        choice.kv_heads or row.kv_heads,
        choice.head_dim or row.head_dim,
    )


def calibrate(catalog: Catalog) -> Calibration:
    """Median ratio of published generation speed to the bandwidth roofline."""
    ratios = []
    for row in catalog.throughputs:
        try:
            gpu, model = catalog.gpu(row.gpu), catalog.model(row.model)
            quant = Quantization(row.quantization)
        except ValueError:
            continue  # a row we cannot size: skip it rather than guess
        roofline = gpu.bandwidth_gbps * 1e9 / weights_bytes(model.params_b, quant)
        ratios.append(row.tg_tok_s / roofline)
    if not ratios:
        return Calibration(FALLBACK_EFFICIENCY, 0)
    return Calibration(statistics.median(ratios), len(ratios))


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
    if measured is not None:
        detail = f"{measured.path.name}, output_tok_s at concurrency {measured.concurrency}"
        return Figure(measured.output_tok_s, Provenance.MEASURED, detail)
    if spec.tok_s is not None:
        return Figure(spec.tok_s, Provenance.SCENARIO, "tok_s in scenario")
    quant = ctx.scenario.model.quantization
    row = ctx.catalog.throughput(gpu.name, ctx.shape.name, quant)
    if row is not None:
        return Figure(row.tg_tok_s, Provenance.CATALOG, f"{row.source}, {row.as_of}")
    model_gb = weights_bytes(ctx.shape.params_b, quant) / 1e9
    roofline = gpu.bandwidth_gbps / model_gb
    detail = f"roofline {gpu.bandwidth_gbps:g} GB/s / {model_gb:.2f} GB x {ctx.calibration.how}"
    if gpu_count > 1:
        # llama.cpp splits layers across GPUs: one stream reads them one GPU after another
        detail += "; layers split across GPUs decode no faster than one GPU"
    return Figure(roofline * ctx.calibration.efficiency, Provenance.ESTIMATED, detail)


def _idle_power(ctx: _Context, spec: OptionSpec, build: HardwareBuild | None) -> Figure:
    if spec.idle_power_w is not None:
        return Figure(spec.idle_power_w, Provenance.SCENARIO, "idle_power_w in scenario")
    if build is not None and build.idle_power_w is not None:
        return Figure(build.idle_power_w, Provenance.CATALOG, f"{build.source}, {build.as_of}")
    if ctx.catalog.system_power:
        row = ctx.catalog.system_power[0]
        detail = f"measured idle at the wall: {row.system}, {row.source}"
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
        return Figure(spec.load_power_w, Provenance.SCENARIO, "load_power_w in scenario")
    if build is not None and build.typical_power_w is not None:
        return Figure(build.typical_power_w, Provenance.CATALOG, f"{build.source}, {build.as_of}")
    # a single-GPU PC's wall power says little about a box with several
    similar = ctx.catalog.power(gpu.name) if gpu_count == 1 else None
    if similar is not None:
        detail = (
            f"measured at the wall on another PC with this GPU: {similar.system}, {similar.source}"
        )
        return Figure(similar.load_power_w, Provenance.ESTIMATED, detail)
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


def _measured(ctx: _Context, spec: OptionSpec, gpu: Gpu) -> BenchResult | None:
    return pick_result(
        ctx.results,
        host=spec.host,
        gpu_name=gpu.name,
        model_name=ctx.shape.name,
        quantization=ctx.scenario.model.quantization,
        concurrency=ctx.scenario.usage.concurrency,
    )


def _office(ctx: _Context, spec: OptionSpec) -> ResolvedOption:
    build = ctx.catalog.hardware(spec.hardware) if spec.hardware else None
    gpu = ctx.catalog.gpu(build.gpu if build else str(spec.gpu))
    gpu_count = build.gpu_count if build else spec.gpu_count
    measured = _measured(ctx, spec, gpu)
    purchase: Figure | None = None
    if spec.price_usd is not None:
        purchase = Figure(spec.price_usd, Provenance.SCENARIO, "price_usd in scenario")
    elif build is not None and build.price_usd is not None:
        purchase = Figure(build.price_usd, Provenance.CATALOG, f"{build.source}, {build.as_of}")
    idle = _idle_power(ctx, spec, build)
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
    return ResolvedOption(
        name=name,
        kind=OptionKind.CLOUD,
        gpu=gpu,
        gpu_count=gpu_count,
        throughput=_throughput(ctx, spec, gpu, gpu_count, _measured(ctx, spec, gpu)),
        fit=_fit(ctx, gpu, gpu_count),
        hourly_low=Figure(low, provenance, source),
        hourly_high=Figure(high, provenance, source),
        price_basis=basis,
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
