"""Fit check: weights + KV cache + overhead against VRAM, computed by hand."""

from __future__ import annotations

import pytest

from llmbox.cost.fit import ModelShape, Quantization, check_fit, weights_bytes

LLAMA3_8B = ModelShape("Llama 3 8B", 8.03, layers=32, kv_heads=8, head_dim=128)


def test_weights_use_bits_per_weight_of_the_quantization() -> None:
    assert weights_bytes(7.0, Quantization.Q8_0) == pytest.approx(7e9 * 8.5 / 8)
    assert weights_bytes(7.0, Quantization.F16) == pytest.approx(14e9)
    assert weights_bytes(8.03, Quantization.Q4_K_M) / 2**30 == pytest.approx(4.57, abs=0.01)


def test_kv_cache_scales_with_context_and_parallel_slots() -> None:
    result = check_fit(LLAMA3_8B, Quantization.Q4_K_M, 8, context_tokens=8192, parallel_slots=4)
    kv = 2 * 32 * 8 * 128 * 2 * 8192 * 4  # bytes: 4 GiB
    assert result.kv_cache_gib == pytest.approx(kv / 2**30) == pytest.approx(4.0)
    assert result.total_gib == pytest.approx(8.03e9 * 4.89 / 8 / 2**30 + 4.0 + 0.75)
    assert not result.fits  # 9.32 GiB > 8 GiB
    assert result.headroom_gib == pytest.approx(8 - result.total_gib)


def test_seventy_b_needs_two_24gb_cards_at_q4() -> None:
    llama70 = ModelShape("LLaMA 2 70B", 68.98, layers=80, kv_heads=8, head_dim=128)
    one = check_fit(llama70, Quantization.Q4_K_M, 24)
    two = check_fit(llama70, Quantization.Q4_K_M, 24, gpu_count=2)
    assert not one.fits
    assert two.fits  # 39.3 + 1.25 + 1.5 GiB <= 48 GiB
    assert two.overhead_gib == 1.5


def test_model_without_shape_uses_the_documented_approximation() -> None:
    shaped = check_fit(LLAMA3_8B, Quantization.Q4_0, 24)
    unshaped = check_fit(ModelShape("mystery 8B", 8.03), Quantization.Q4_0, 24)
    assert unshaped.kv_cache_gib == pytest.approx(shaped.kv_cache_gib)
    assert "approximated" in unshaped.kv_cache_method


def test_zero_context_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"context \(0\)"):
        check_fit(LLAMA3_8B, Quantization.Q4_0, 24, context_tokens=0)
