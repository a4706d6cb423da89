"""Several GPUs in one box: the layer-split fit check (arithmetic by hand), the dual-GPU
catalog build in a report with its provenance, and a 2-GPU host's run matched to it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llmbox.cost.catalog import load_catalog
from llmbox.cost.cli import FIT_EXIT_DOES_NOT_FIT, fit, report
from llmbox.cost.fit import ModelShape, Quantization, check_fit
from llmbox.cost.identity import (
    MANIFEST_NAME,
    builds_with,
    check_identity,
    hardware_mismatch,
    parse_identity,
)
from llmbox.cost.render_common import provenance_lines
from llmbox.cost.render_data import render_json
from llmbox.cost.render_text import render_markdown
from llmbox.cost.report import build_report
from llmbox.cost.scenario import parse_scenario

GIB = 2**30
DUAL = "pc-i7-13700k-2x-rtx3060"
QWEN3_32B = ModelShape("Qwen3-32B", 32.8, layers=64, kv_heads=8, head_dim=128)


def test_two_12gb_gpus_hold_a_model_one_cannot() -> None:
    one = check_fit(QWEN3_32B, Quantization.Q4_K_M, 12)
    two = check_fit(QWEN3_32B, Quantization.Q4_K_M, 12, gpu_count=2)
    weights = 32.8e9 * 4.89 / 8 / GIB  # 18.67 GiB
    kv = 2 * 64 * 8 * 128 * 2 * 4096 / GIB  # 1.00 GiB: 64 layers, 4096 tokens, F16
    assert kv == 1.0
    assert one.total_gib == pytest.approx(weights + kv + 0.75)  # 20.42 GiB > 12
    assert not one.fits
    assert two.overhead_gib == 1.5  # 0.75 GiB per GPU, each GPU its own
    assert two.vram_gib == 24
    assert two.total_gib == pytest.approx(weights + kv + 1.5)  # 21.17 GiB <= 24
    # whole layers: (18.67 + 1.00) / 64 = 0.307 GiB each; 12 - 0.75 = 11.25 GiB per GPU
    assert two.layer_gib == pytest.approx((weights + kv) / 64)
    assert two.room_per_gpu_gib == pytest.approx(11.25)
    assert two.layers_per_gpu == 36  # floor(11.25 / 0.307) = floor(36.6)
    assert two.fits  # 36 x 2 = 72 >= 64
    assert two.split_text() is not None
    assert "room for 36 whole layers each: 36 x 2 = 72 >= 64" in str(two.split_text())


def test_a_model_too_large_for_the_sum_is_refused_with_its_numbers() -> None:
    result = CliRunner().invoke(fit, ["Llama 3.3 70B", "RTX 3060", "--gpus", "2"])
    assert result.exit_code == FIT_EXIT_DOES_NOT_FIT, result.output
    # 70.55e9 x 4.89 / 8 B = 40.16 GiB + KV 2 x 80 x 8 x 128 x 2 B x 4096 = 1.25 GiB
    # + 2 x 0.75 GiB = 42.91 GiB of 2 x 12 = 24 GiB
    weights = 70.55e9 * 4.89 / 8 / GIB
    total = weights + 1.25 + 1.5
    assert f"total         {total:.2f} GiB of 24 GiB" in result.output
    assert f"does NOT fit: {total - 24:.2f} GiB short" in result.output
    assert "18.91 GiB short" in result.output
    # (40.16 + 1.25) / 80 = 0.518 GiB a layer: floor(11.25 / 0.518) = 21 per GPU
    assert "21 x 2 = 42 < 80; 4 such GPUs would be needed" in result.output


def test_memory_enough_in_sum_but_not_in_whole_layers_is_refused() -> None:
    # 3 layers of 4.5 GiB (F16: 2 bytes a parameter; a negligible KV cache) on 2 x 8 GiB:
    # 13.5 + 1.5 overhead = 15 GiB <= 16 in sum, but each GPU has 7.25 GiB: one layer each
    params_b = 3 * 4.5 * GIB / 2 / 1e9
    shape = ModelShape("three fat layers", params_b, layers=3, kv_heads=1, head_dim=1)
    result = check_fit(shape, Quantization.F16, 8, gpu_count=2, context_tokens=1)
    assert result.total_gib <= result.vram_gib
    assert result.layers_per_gpu == 1
    assert not result.fits
    assert "1 x 2 = 2 < 3; 3 such GPUs would be needed" in str(result.split_text())


def test_a_layer_larger_than_one_gpu_fits_nowhere() -> None:
    # one 8 GiB layer: 8 + 1.5 = 9.5 GiB of 16 in sum, but a GPU has 7.25 GiB for layers
    shape = ModelShape("one huge layer", 8 * GIB / 2 / 1e9, layers=1, kv_heads=1, head_dim=1)
    result = check_fit(shape, Quantization.F16, 8, gpu_count=2, context_tokens=1)
    assert result.headroom_gib > 0
    assert not result.fits
    text = str(result.split_text())
    assert "1 layers of 8.00 GiB" in text
    assert "each GPU has 7.25 GiB after its 0.75 GiB overhead" in text
    assert "one layer does not fit on one GPU" in text


def test_a_split_with_unknown_layers_says_it_is_judged_on_the_sum() -> None:
    result = check_fit(ModelShape("mystery 20B", 20), Quantization.Q4_0, 12, gpu_count=2)
    assert result.fits  # 10.5 + 1.6 KV + 1.5 <= 24
    assert "layer count unknown" in str(result.split_text())


def test_the_dual_build_is_catalogued_with_its_provenance() -> None:
    build = load_catalog().hardware(DUAL)
    assert (build.gpu, build.gpu_count, build.vram_gb) == ("RTX 3060", 2, 12)
    assert build.price_usd == 1105 + 329  # the seed's 3060 PC + a second card at launch price
    assert build.typical_power_w == pytest.approx(214 + 47.7)
    assert build.price_estimate is not None and "$329 launch price" in build.price_estimate
    assert build.power_estimate is not None and "one after another" in build.power_estimate


def _qwen_report() -> Any:
    scenario = parse_scenario(
        {
            "name": "32B on office GPUs",
            "model": {"name": "Qwen3-32B", "quantization": "Q4_K_M"},
            "electricity_usd_per_kwh": 0.15,
            "options": [{"hardware": DUAL}, {"hardware": "pc-i7-13700k-rtx3060"}],
        }
    )
    return build_report(scenario)


def test_the_dual_build_in_a_report_fits_and_says_where_each_figure_came_from() -> None:
    built = _qwen_report()
    options = {c.option.name: c.option for c in built.options}
    dual, single = options[DUAL], options["pc-i7-13700k-rtx3060"]
    assert dual.fit.fits and not single.fit.fits
    assert dual.purchase is not None and dual.purchase.value == 1434
    assert dual.purchase.provenance == "estimated"  # a sum of two sources, not a quote
    assert f"catalog row {DUAL}" in dual.purchase.detail
    assert dual.load_power is not None and dual.load_power.value == pytest.approx(261.7)
    assert dual.load_power.provenance == "estimated"
    # decode speed: one RTX 3060's, not two (the split runs the GPUs one after another)
    assert dual.throughput.provenance == "estimated"
    assert dual.throughput.value == pytest.approx(single.throughput.value)
    assert "about one GPU's 360 GB/s, not the sum (720 GB/s)" in dual.throughput.detail
    markdown = re.sub(r" {2,}", " ", render_markdown(built))
    assert f"| {DUAL} | office | 2x RTX 3060 | yes (21.2 / 24) |" in markdown
    assert "| pc-i7-13700k-rtx3060 | office | RTX 3060 | NO (20.4 / 12) |" in markdown
    lines = "\n".join(provenance_lines(built))
    assert f"{DUAL}: fit on 2 GPUs - llama.cpp --split-mode layer: 64 layers" in lines
    assert f"{DUAL}: purchase 1,434 USD - estimated (the seed's pc-i7-13700k-rtx3060" in lines


def test_the_dual_build_in_json_carries_the_split() -> None:
    data = json.loads(render_json(_qwen_report()))
    fits = {o["name"]: o["fit"] for o in data["options"]}
    assert fits[DUAL]["gpu_count"] == 2
    assert fits[DUAL]["layers"] == 64
    assert fits[DUAL]["layers_per_gpu"] == 36
    assert "36 x 2 = 72 >= 64" in fits[DUAL]["split"]
    assert fits["pc-i7-13700k-rtx3060"]["layers_per_gpu"] is None  # one GPU: no split
    assert fits["pc-i7-13700k-rtx3060"]["split"] is None


MakeResult = Callable[..., dict[str, Any]]


def _write_run(
    make: MakeResult, root: Path, hardware: dict[str, Any], gpu_count: int, **kw: Any
) -> None:
    """One benchmark.yml run of host ws-2gpu as the role writes it (result + manifest)."""
    host = "ws-2gpu"
    folder = root / host / "20261130T000000Z"
    folder.mkdir(parents=True)
    name = f"{host}__llama.cpp__qwen3-32b-q4_k_m__c1.json"
    data = make(host=host, gpu="NVIDIA GeForce RTX 3060", model="Qwen3-32B",
                        output_tok_s=12.5, gpu_count=gpu_count)  # fmt: skip
    (folder / name).write_text(json.dumps(data))
    manifest = {
        "manifest_version": 1, "run_id": "20261130T000000Z", "host": host,
        "created_at": "2026-11-30T00:00:00Z", "engine": "llama_cpp", "hardware": hardware,
        "gpu_seen": "NVIDIA GeForce RTX 3060", "result_files": [name], **kw,
    }  # fmt: skip
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def _measured_report(tmp_path: Path) -> dict[str, Any]:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: dual\nusage: {hours_per_day: 8, days_per_month: 22}\n"
        "model: {name: Qwen3-32B, quantization: Q4_K_M}\nelectricity_usd_per_kwh: 0.15\n"
        "options: [{cloud: g6e.xlarge}]\n"
    )
    args = [str(scenario), "--results", str(tmp_path / "results"), "--format", "json"]
    result = CliRunner().invoke(report, args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_identity_of_a_two_gpu_host_matches_the_dual_build() -> None:
    catalog = load_catalog()
    identity = check_identity({"build": DUAL}, "ws-2gpu")
    assert identity.catalog_gpu_count(catalog) == 2
    assert hardware_mismatch(identity, catalog, "NVIDIA GeForce RTX 3060", 2) is None
    assert builds_with(catalog, "NVIDIA GeForce RTX 3060", 2) == [DUAL]
    one = parse_identity({"build": "pc-i7-13700k-rtx3060"}, "ws-1")
    assert hardware_mismatch(one, catalog, "NVIDIA GeForce RTX 3060", 2) == (
        "NVML saw 2 x NVIDIA GeForce RTX 3060, the hardware has 1 x RTX 3060 "
        f"(catalog builds with that: {DUAL})"
    )
    inline = parse_identity({"price_usd": 1500, "gpu": "RTX 3060", "gpu_count": 2}, "ws-3")
    assert hardware_mismatch(inline, catalog, "NVIDIA GeForce RTX 3060", 2) is None


def test_a_two_gpu_run_is_measured_for_the_dual_build(
    tmp_path: Path, make_bench_result: MakeResult
) -> None:
    _write_run(make_bench_result, tmp_path / "results", {"build": DUAL}, gpu_count=2)
    data = _measured_report(tmp_path)
    option = next(o for o in data["options"] if o["name"] == "ws-2gpu")
    assert option["gpu_count"] == 2
    assert option["throughput_tok_s"]["provenance"] == "measured"
    assert option["throughput_tok_s"]["value"] == 12.5
    assert option["fit"]["fits"] and option["fit"]["layers_per_gpu"] == 36
    assert not [n for n in data["notes"] if "ws-2gpu" in n]


def test_a_one_gpu_run_cannot_stand_for_the_dual_build(
    tmp_path: Path, make_bench_result: MakeResult
) -> None:
    # the manifest's own count (as NVML listed the host's GPUs) is read when it has one
    _write_run(make_bench_result, tmp_path / "results", {"build": DUAL}, gpu_count=1,
               gpu_count_seen=1)  # fmt: skip
    data = _measured_report(tmp_path)
    option = next(o for o in data["options"] if o["name"] == "ws-2gpu")
    assert option["throughput_tok_s"]["provenance"] != "measured"
    notes = "\n".join(data["notes"])
    assert "ws-2gpu: NVML saw 1 x NVIDIA GeForce RTX 3060, the hardware has 2 x RTX 3060" in notes
    assert "ran on 1 x NVIDIA GeForce RTX 3060, the option has 2 x RTX 3060" in notes


def test_a_loose_two_gpu_result_goes_to_the_two_gpu_build_only(
    tmp_path: Path, make_bench_result: MakeResult
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    data = make_bench_result(host="lab", gpu="NVIDIA GeForce RTX 3060", model="Qwen3-32B",
                        output_tok_s=12.5, gpu_count=2)  # fmt: skip
    (results / "lab__c1.json").write_text(json.dumps(data))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: dual\nusage: {hours_per_day: 8, days_per_month: 22}\n"
        "model: {name: Qwen3-32B, quantization: Q4_K_M}\nelectricity_usd_per_kwh: 0.15\n"
        f"options: [{{hardware: {DUAL}}}, {{hardware: pc-i7-13700k-rtx3060}}]\n"
    )
    args = [str(scenario), "--results", str(results), "--format", "json"]
    out = json.loads(CliRunner().invoke(report, args).stdout)
    provenance = {o["name"]: o["throughput_tok_s"]["provenance"] for o in out["options"]}
    assert provenance == {DUAL: "measured", "pc-i7-13700k-rtx3060": "estimated"}


def test_a_run_on_another_gpu_model_is_noted_once(
    tmp_path: Path, make_bench_result: MakeResult
) -> None:
    folder = tmp_path / "results" / "ws-2gpu" / "r1"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps(make_bench_result(host="ws-2gpu", gpu=None)))
    manifest = {"manifest_version": 1, "run_id": "r1", "host": "ws-2gpu", "created_at": "x",
                "engine": "llama_cpp", "hardware": {"build": DUAL}, "gpu_seen": None,
                "result_files": ["a.json"]}  # fmt: skip
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    notes = [n for n in _measured_report(tmp_path)["notes"] if "ws-2gpu" in n]
    assert notes == [
        "not used as measured: a.json ran with no GPU (gpu: null), the option has a RTX 3060 "
        "(ws-2gpu)"
    ]
