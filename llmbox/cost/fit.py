"""Does a model fit in a GPU's memory? Weights + KV cache + a fixed overhead.

Sizes are in GiB (2^30 bytes) throughout: a GPU marketed as "8 GB" has 8 GiB of VRAM
(an RTX 4060 reports 8188 MiB), and llama.cpp reports model sizes in GiB.

**Several GPUs in one box.** The rule is llama.cpp's default ``--split-mode layer``
(ggml-org/llama.cpp ``docs/multi-gpu.md``): "each GPU holds a contiguous slice of layers;
the KV cache for layer l lives on the GPU that owns layer l", and without
``--tensor-split`` the slices are "proportional to memory". So memory adds up across the
GPUs, but only in whole layers: each GPU keeps its own CUDA context and compute buffers
(the overhead, counted once per GPU) and holds as many whole layers (weights + their KV
cache) as fit in what is left; the model fits when those add up to every layer. A layer
larger than one GPU's room fits nowhere. ``--split-mode row``/``tensor`` split inside a
layer; they are not what llama.cpp does by default and are not modelled here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

GIB = 2**30


class Quantization(StrEnum):
    """Weight formats the fit check and the roofline estimate know: llama.cpp's GGUF types
    and the formats current open models ship in (FP8; MXFP4, gpt-oss's MoE weights)."""

    Q4_0 = "Q4_0"
    Q4_1 = "Q4_1"
    Q4_K_M = "Q4_K_M"
    Q5_0 = "Q5_0"
    Q5_K_M = "Q5_K_M"
    Q6_K = "Q6_K"
    Q8_0 = "Q8_0"
    F16 = "F16"
    BF16 = "BF16"
    F32 = "F32"
    FP8 = "FP8"
    MXFP4 = "MXFP4"


# Average bits per weight of each format, scales included (llama.cpp's quantize tool
# reports these; K-quant mixes are measured on Llama 3 8B: 4.58 GiB for 8.03 B params).
BITS_PER_WEIGHT: dict[Quantization, float] = {
    Quantization.Q4_0: 4.5,
    Quantization.Q4_1: 5.0,
    Quantization.Q4_K_M: 4.89,
    Quantization.Q5_0: 5.5,
    Quantization.Q5_K_M: 5.69,
    Quantization.Q6_K: 6.56,
    Quantization.Q8_0: 8.5,
    Quantization.F16: 16.0,
    Quantization.BF16: 16.0,
    Quantization.F32: 32.0,
    # 8-bit floats; the per-tensor or per-channel scales add well under 0.1 bit per weight
    Quantization.FP8: 8.0,
    # OCP microscaling: 4-bit E2M1 values + one 8-bit E8M0 scale per block of 32 = 4.25 bits
    Quantization.MXFP4: 4.25,
}

# llama.cpp keeps the KV cache in F16 unless told otherwise.
KV_BYTES_PER_ELEMENT = 2
# CUDA context plus llama.cpp's compute buffers: a rule of thumb, not a measurement.
OVERHEAD_GIB = 0.75
# Without the model's shape, assume Llama-3-8B-like grouped-query attention:
# 2 x 32 layers x 8 KV heads x 128 dims x 2 bytes = 128 KiB per token for 8.03 B params.
APPROX_KV_BYTES_PER_TOKEN_PER_BILLION_PARAMS = 2 * 32 * 8 * 128 * 2 / 8.03


@dataclass(frozen=True)
class ModelShape:
    """What the fit check needs to know about a model; the shape fields may be unknown.

    ``active_params_b`` is set for a mixture-of-experts model: all of ``params_b`` must fit
    in memory, but decoding a token reads only the active parameters.
    """

    name: str
    params_b: float
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    active_params_b: float | None = None

    @property
    def read_params_b(self) -> float:
        """Parameters read from memory per generated token (all of them for a dense model)."""
        return self.active_params_b or self.params_b


@dataclass(frozen=True)
class FitResult:
    """Memory needed by a model on ``gpu_count`` GPUs, in GiB, and whether it fits.

    ``vram_gib`` and ``overhead_gib`` are the box's totals (every GPU's); ``layers`` is the
    model's layer count (``None``: unknown, so a split is judged on the totals alone).
    """

    model: str
    quantization: Quantization
    context_tokens: int
    parallel_slots: int
    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float
    vram_gib: float
    kv_cache_method: str
    gpu_count: int = 1
    layers: int | None = None

    @property
    def total_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib + self.overhead_gib

    @property
    def headroom_gib(self) -> float:
        return self.vram_gib - self.total_gib

    @property
    def split(self) -> bool:
        """Whether the model is split by layers across several GPUs."""
        return self.gpu_count > 1 and self.layers is not None

    @property
    def room_per_gpu_gib(self) -> float:
        """What one GPU has for layers: its memory less its own overhead."""
        return (self.vram_gib - self.overhead_gib) / self.gpu_count

    @property
    def layer_gib(self) -> float:
        """One layer's weights and KV cache (the weights averaged over the layers: the
        embeddings and output head are spread over them, a slight over-estimate)."""
        return (self.weights_gib + self.kv_cache_gib) / (self.layers or 1)

    @property
    def layers_per_gpu(self) -> int:
        """Whole layers one GPU holds (``--split-mode layer`` never cuts a layer)."""
        return max(0, math.floor(self.room_per_gpu_gib / self.layer_gib + 1e-9))

    @property
    def fits(self) -> bool:
        if self.split:
            return self.layers_per_gpu * self.gpu_count >= (self.layers or 0)
        return self.total_gib <= self.vram_gib

    def split_text(self) -> str | None:
        """How the layers divide over the GPUs and why it does (not) fit; ``None`` on
        one GPU. Every number the verdict rests on is named."""
        if self.gpu_count == 1:
            return None
        if self.layers is None:
            return (
                f"layer count unknown: the {self.gpu_count} GPUs' memory is added up, "
                "which is optimistic by up to one layer per GPU"
            )
        layers, per_gpu, room = self.layers, self.layers_per_gpu, self.room_per_gpu_gib
        head = (
            f"llama.cpp --split-mode layer: {layers} layers of {self.layer_gib:.2f} GiB "
            f"(weights + KV cache); each GPU has {room:.2f} GiB after its "
            f"{self.overhead_gib / self.gpu_count:g} GiB overhead"
        )
        if per_gpu == 0:
            return f"{head}: one layer does not fit on one GPU, so no split holds the model"
        held = per_gpu * self.gpu_count
        verdict = ">=" if held >= layers else "<"
        needed = math.ceil(layers / per_gpu)
        tail = "" if held >= layers else f"; {needed} such GPUs would be needed"
        return (
            f"{head}, room for {per_gpu} whole layers each: {per_gpu} x {self.gpu_count} = "
            f"{held} {verdict} {layers}{tail}"
        )


def weights_bytes(params_b: float, quantization: Quantization) -> float:
    """Bytes of the quantized weights: parameters x bits per weight / 8."""
    return params_b * 1e9 * BITS_PER_WEIGHT[quantization] / 8


def kv_cache_bytes(
    model: ModelShape, context_tokens: int, parallel_slots: int
) -> tuple[float, str]:
    """KV cache bytes for ``parallel_slots`` sequences of ``context_tokens``, and the method."""
    tokens = context_tokens * parallel_slots
    if model.layers and model.kv_heads and model.head_dim:
        per_token: float = 2 * model.layers * model.kv_heads * model.head_dim * KV_BYTES_PER_ELEMENT
        method = (
            f"2 x {model.layers} layers x {model.kv_heads} KV heads x {model.head_dim} dims"
            f" x {KV_BYTES_PER_ELEMENT} B x {context_tokens} tokens x {parallel_slots} slots"
        )
        return per_token * tokens, method
    per_token = APPROX_KV_BYTES_PER_TOKEN_PER_BILLION_PARAMS * model.params_b
    method = "approximated from parameters (Llama-3-8B-like GQA: 16 KiB per token per B params)"
    return per_token * tokens, method


def check_fit(
    model: ModelShape,
    quantization: Quantization,
    vram_gb: float,
    *,
    gpu_count: int = 1,
    context_tokens: int = 4096,
    parallel_slots: int = 1,
) -> FitResult:
    """Memory breakdown of ``model`` on ``gpu_count`` GPUs of ``vram_gb`` each.

    On several GPUs the model is split by whole layers (module docstring): the memory adds
    up, the overhead is counted once per GPU, and :attr:`FitResult.fits` checks that the
    layers each GPU can hold add up to the model's.
    """
    if context_tokens < 1 or parallel_slots < 1:
        raise ValueError(
            f"context ({context_tokens}) and parallel slots ({parallel_slots}) must be >= 1"
        )
    if gpu_count < 1:
        raise ValueError(f"GPU count ({gpu_count}) must be >= 1")
    kv_bytes, method = kv_cache_bytes(model, context_tokens, parallel_slots)
    return FitResult(
        model=model.name,
        quantization=quantization,
        context_tokens=context_tokens,
        parallel_slots=parallel_slots,
        weights_gib=weights_bytes(model.params_b, quantization) / GIB,
        kv_cache_gib=kv_bytes / GIB,
        overhead_gib=OVERHEAD_GIB * gpu_count,
        vram_gib=vram_gb * gpu_count,
        kv_cache_method=method,
        gpu_count=gpu_count,
        layers=model.layers,
    )
