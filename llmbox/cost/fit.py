"""Does a model fit in a GPU's memory? Weights + KV cache + a fixed overhead.

Sizes are in GiB (2^30 bytes) throughout: a GPU marketed as "8 GB" has 8 GiB of VRAM
(an RTX 4060 reports 8188 MiB), and llama.cpp reports model sizes in GiB.
"""

from __future__ import annotations

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
    """Memory needed by a model on a GPU, in GiB, and whether it fits."""

    model: str
    quantization: Quantization
    context_tokens: int
    parallel_slots: int
    weights_gib: float
    kv_cache_gib: float
    overhead_gib: float
    vram_gib: float
    kv_cache_method: str

    @property
    def total_gib(self) -> float:
        return self.weights_gib + self.kv_cache_gib + self.overhead_gib

    @property
    def fits(self) -> bool:
        return self.total_gib <= self.vram_gib

    @property
    def headroom_gib(self) -> float:
        return self.vram_gib - self.total_gib


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

    Layers split across GPUs, so their memory adds up; each GPU's share of overhead is
    counted once per GPU.
    """
    if context_tokens < 1 or parallel_slots < 1:
        raise ValueError(
            f"context ({context_tokens}) and parallel slots ({parallel_slots}) must be >= 1"
        )
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
    )
