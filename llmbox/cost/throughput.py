"""A box's tokens per second at the scenario's concurrency, and the rules that estimate it.

A box's monthly capacity is its **aggregate** tokens/s at the scenario's concurrency
(``usage.concurrency`` requests served at once), never a one-stream figure when several
users are served together. So:

- a bench result measured at that concurrency is used as it is (measured);
- ``tok_s`` typed into the scenario is taken as the box's figure at that concurrency;
- a bench result at another concurrency, a catalogued llama-bench figure (tg: one stream)
  or the bandwidth-roofline estimate (one stream) is scaled by the batched-decode rule
  below and labelled an estimate.

**Batched-decode rule.** Decoding is memory-bound: each decode step reads the weights once
for the whole batch, plus every stream's KV cache. A step of ``n`` streams moves
``W + n x K`` bytes and yields ``n`` tokens, so from a figure at ``k`` streams::

    aggregate(n) = aggregate(k) x (n / k) x (W + k K) / (W + n K)

``W``: bytes of the weights one token reads (active parameters x bits per weight);
``K``: one stream's KV cache at half the context (a stream midway through its request).
Compute limits are ignored, so for large batches this is an upper estimate.

**Several GPUs in one box.** llama.cpp's default ``--split-mode layer`` is pipeline
parallelism (ggml-org/llama.cpp ``docs/multi-gpu.md``): each GPU holds a slice of the
layers and a token passes through the slices one after another. A decode step of the
scenario's streams is one micro-batch (far fewer tokens than ``--ubatch-size``, 512), so
the pipeline never overlaps: each GPU reads its share of the weights while the others
wait, and the step takes as long as one GPU reading all of them. A split box therefore
decodes at about **one** GPU's bandwidth, not the sum; the estimate below is one GPU's,
labelled so, and leaves out the hand-off between GPUs (a little slower still). The split
buys memory (``llmbox.cost.fit``), not decode speed. (vLLM's tensor parallelism does
read the GPUs at once; the cost model does not assume it.)
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from llmbox.cost.capacity import describe, judge
from llmbox.cost.catalog import Catalog, Gpu
from llmbox.cost.fit import ModelShape, Quantization, kv_cache_bytes, weights_bytes
from llmbox.cost.provenance import Figure, Provenance
from llmbox.cost.results import BenchResult
from llmbox.cost.scenario import ModelChoice, ServiceLevel

# Used only when the catalog has no row to calibrate on.
FALLBACK_EFFICIENCY = 0.65
RULE = "batched-decode rule: aggregate(n) = aggregate(k) x n/k x (W + kK)/(W + nK)"


def split_note(gpu: Gpu, gpu_count: int) -> str:
    """Why a box with ``gpu_count`` GPUs gets one GPU's decode speed (module docstring)."""
    return (
        f"{gpu_count} x {gpu.name} split by layers (llama.cpp --split-mode layer) run one "
        f"after another for each token, so decoding reads about one GPU's "
        f"{gpu.bandwidth_gbps:g} GB/s, not the sum ({gpu_count * gpu.bandwidth_gbps:g} GB/s); "
        "the hand-off between GPUs is not counted"
    )


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


def streams_label(streams: int) -> str:
    """What a throughput figure describes: one stream, or a box's aggregate."""
    return "single stream" if streams == 1 else f"aggregate of {streams} streams"


def scale_to_streams(
    tok_s: float, from_streams: int, to_streams: int, weights: float, kv_per_stream: float
) -> float:
    """The batched-decode rule (module docstring): ``tok_s`` at ``from_streams`` streams
    to the aggregate at ``to_streams``; ``weights`` and ``kv_per_stream`` in bytes."""
    if from_streams < 1 or to_streams < 1:
        raise ValueError(f"streams must be >= 1, got {from_streams} and {to_streams}")
    ratio = (weights + from_streams * kv_per_stream) / (weights + to_streams * kv_per_stream)
    return tok_s * to_streams / from_streams * ratio


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
        row.active_params_b if choice.params_b is None else None,
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
        read = model.active_params_b or model.params_b
        roofline = gpu.bandwidth_gbps * 1e9 / weights_bytes(read, quant)
        ratios.append(row.tg_tok_s / roofline)
    if not ratios:
        return Calibration(FALLBACK_EFFICIENCY, 0)
    return Calibration(statistics.median(ratios), len(ratios))


@dataclass(frozen=True)
class ThroughputInputs:
    """What sizes a box's throughput: the model, its format, the load and the catalog."""

    catalog: Catalog
    shape: ModelShape
    quantization: Quantization
    context_tokens: int
    concurrency: int
    calibration: Calibration
    # A measured run that met it is used at its own load, not scaled (llmbox.cost.capacity).
    service_level: ServiceLevel | None = None


def _from_run(measured: BenchResult, inputs: ThroughputInputs, weights: float, kv: float) -> Figure:
    """A measured run's tokens/s: as measured when it met the service level or ran at the
    scenario's concurrency (or a rate), else scaled to that concurrency."""
    detail = f"{measured.path.name}, output_tok_s at {measured.level}"
    level = inputs.service_level
    if level is not None:
        met, figures = judge(measured, level)
        if met:
            detail += f", the highest measured that met the service level ({figures})"
            return Figure(measured.output_tok_s, Provenance.MEASURED, detail)
        # flagged, never dropped: the figure is the box's, but not one at the level
        detail += f"; NO run met the service level ({describe(level)}): this one had {figures}"
    wanted = inputs.concurrency
    if measured.concurrency is None or measured.concurrency == wanted:
        return Figure(measured.output_tok_s, Provenance.MEASURED, detail)
    value = scale_to_streams(measured.output_tok_s, measured.concurrency, wanted, weights, kv)
    detail += f" ({measured.output_tok_s:g} tok/s measured) scaled to {wanted} streams by the"
    return Figure(value, Provenance.ESTIMATED, f"{detail} {RULE}")


def box_throughput(
    inputs: ThroughputInputs,
    *,
    scenario_tok_s: float | None,
    gpu: Gpu,
    gpu_count: int,
    measured: BenchResult | None,
) -> Figure:
    """The box's tokens/s at the scenario's concurrency, with its provenance and rule."""
    wanted = inputs.concurrency
    weights = weights_bytes(inputs.shape.read_params_b, inputs.quantization)
    kv = kv_cache_bytes(inputs.shape, max(1, inputs.context_tokens // 2), 1)[0]
    if measured is not None:
        return _from_run(measured, inputs, weights, kv)
    if scenario_tok_s is not None:
        return Figure(scenario_tok_s, Provenance.SCENARIO, "tok_s in scenario")
    row = inputs.catalog.throughput(gpu.name, inputs.shape.name, inputs.quantization)
    if row is not None and gpu_count == 1:
        single = Figure(row.tg_tok_s, Provenance.CATALOG, f"{row.source}, {row.as_of}")
    elif row is not None:  # measured on one GPU: for a split box it is an estimate
        detail = f"one GPU's llama-bench figure ({row.source}, {row.as_of})"
        detail += f"; {split_note(gpu, gpu_count)}"
        single = Figure(row.tg_tok_s, Provenance.ESTIMATED, detail)
    else:
        model_gb = weights / 1e9
        detail = (
            f"roofline {gpu.bandwidth_gbps:g} GB/s / {model_gb:.2f} GB x {inputs.calibration.how}"
        )
        if gpu_count > 1:
            detail += f"; {split_note(gpu, gpu_count)}"
        roofline = gpu.bandwidth_gbps / model_gb * inputs.calibration.efficiency
        single = Figure(roofline, Provenance.ESTIMATED, detail)
    if wanted == 1:
        return single
    value = scale_to_streams(single.value, 1, wanted, weights, kv)
    detail = (
        f"{single.value:.4g} tok/s for one stream ({single.provenance.value}: {single.detail}) "
        f"scaled to {wanted} streams by the {RULE}, an upper estimate"
    )
    return Figure(value, Provenance.ESTIMATED, detail)
