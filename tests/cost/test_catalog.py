"""Catalog reader: fixed headers, blanks vs numbers, did-you-mean lookups, the cloud helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmbox.cost import estimate_cloud
from llmbox.cost.catalog import load_catalog, normalise_name

GPU_HEADER = "Name,VramGB,BandwidthGBps,TdpW,Source,AsOf\n"
CLOUD_HEADER = (
    "InstanceType,Provider,Region,Gpu,GpuCount,VramGB,VCpus,MemoryGiB,OnDemandLowUsdPerHour,"
    "OnDemandHighUsdPerHour,SpotLowUsdPerHour,SpotHighUsdPerHour,Source,AsOf\n"
)


def test_reads_tiny_gpu_csv(tmp_path: Path) -> None:
    (tmp_path / "gpus.csv").write_text(GPU_HEADER + "RTX 9999,32,1500,500,spec sheet,2025-01-01\n")
    catalog = load_catalog(tmp_path)
    gpu = catalog.gpu("NVIDIA GeForce RTX 9999")
    assert (gpu.vram_gb, gpu.bandwidth_gbps, gpu.tdp_w) == (32.0, 1500.0, 500.0)
    assert (gpu.source, gpu.as_of) == ("spec sheet", "2025-01-01")
    assert catalog.cloud_instances == ()


def test_blank_optional_cell_is_none_not_zero(tmp_path: Path) -> None:
    (tmp_path / "cloud.csv").write_text(
        CLOUD_HEADER + "box.big,acme,,X1,2,48,,,1.5,2.5,,,acme price list,2025-01-01\n"
    )
    row = load_catalog(tmp_path).cloud_instance("box.big")
    assert row.region is None
    assert row.spot_low_usd_per_hour is None
    assert row.vcpus is None
    assert (row.gpu_count, row.on_demand_low_usd_per_hour, row.on_demand_high_usd_per_hour) == (
        2,
        1.5,
        2.5,
    )


def test_wrong_header_is_rejected_with_expected_header(tmp_path: Path) -> None:
    (tmp_path / "gpus.csv").write_text("Name,Vram,Bandwidth,Tdp,Source,AsOf\nX,1,2,3,s,d\n")
    with pytest.raises(ValueError, match=r"gpus\.csv: header .*VramGB"):
        load_catalog(tmp_path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("X,lots,1,1,s,d", r"line 2 column VramGB: 'lots' is not a number"),
        ("X,-8,1,1,s,d", r"line 2 column VramGB: '-8' is negative"),
        ("X,,1,1,s,d", r"line 2 column VramGB: a value is required"),
        ("X,8,1,s,d", r"line 2: 5 cells, expected 6"),
    ],
)
def test_bad_cells_name_file_line_and_column(tmp_path: Path, row: str, message: str) -> None:
    (tmp_path / "gpus.csv").write_text(GPU_HEADER + row + "\n")
    with pytest.raises(ValueError, match=message):
        load_catalog(tmp_path)


def test_directory_without_catalog_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds none of"):
        load_catalog(tmp_path)


def test_unknown_names_suggest_close_ones() -> None:
    catalog = load_catalog()
    with pytest.raises(
        ValueError, match=r"unknown instance type 'g5\.xlarg'; did you mean 'g5\.xlarge'"
    ):
        catalog.cloud_instance("g5.xlarg")
    with pytest.raises(ValueError, match=r"unknown GPU 'RTX 4091'; did you mean 'RTX 4090'"):
        catalog.gpu("RTX 4091")
    with pytest.raises(
        ValueError, match=r"unknown hardware build 'pc-i9-13900k-rtx4070'; did you mean"
    ):
        catalog.hardware("pc-i9-13900k-rtx4070")


def test_normalised_names_forgive_vendor_prefix_case_and_spaces() -> None:
    assert normalise_name("NVIDIA GeForce RTX 4070 Ti") == normalise_name("rtx4070ti")


def test_builtin_catalog_has_the_reference_figures() -> None:
    catalog = load_catalog()
    assert catalog.hardware("pc-i9-13900k-rtx4060").price_usd == 1428
    assert catalog.hardware("pc-i7-13700k-rtx3060").price_usd == 1105
    assert catalog.hardware("pc-i9-13900k-rtx4080").price_usd is None  # source gives no price
    g4dn = catalog.cloud_instance("g4dn.xlarge")
    assert (g4dn.on_demand_high_usd_per_hour, g4dn.spot_low_usd_per_hour) == (0.526, 0.1845)
    assert catalog.throughput("RTX 4090", "Llama 3 8B", "Q4_K_M") is not None
    assert catalog.throughput("RTX 4060", "Llama 3 8B", "Q4_K_M") is None  # no published figure
    assert catalog.api("gpt-4-8k").output_usd_per_1k_tokens == 0.06
    every_row = [
        *catalog.gpus,
        *catalog.cloud_instances,
        *catalog.hardware_builds,
        *catalog.throughputs,
        *catalog.api_prices,
        *catalog.models,
        *catalog.system_power,
    ]
    assert all(row.source and row.as_of for row in every_row)


def test_estimate_cloud_seed_rental_range_at_8h_26d() -> None:
    estimate = estimate_cloud("rented-rtx-4090", hours_per_day=8, days_per_month=26)
    assert estimate.usd_per_month_low == pytest.approx(0.40 * 208)  # 83.20
    assert estimate.usd_per_month == pytest.approx(0.90 * 208)  # 187.20
    assert estimate.price_basis.startswith("on-demand")


def test_estimate_cloud_spot_uses_highest_zone_price_times_count() -> None:
    estimate = estimate_cloud("g6e.xlarge", count=2, spot=True)
    assert estimate.usd_per_hour == pytest.approx(2 * 1.208)
    assert estimate.usd_per_month == pytest.approx(2 * 1.208 * 24 * 30.4375)
    assert estimate.price_basis == "spot (highest zone price in catalog)"
    assert (estimate.gpu, estimate.gpu_count, estimate.vram_gb) == ("L40S", 1, 48.0)


def test_estimate_cloud_on_demand_g5() -> None:
    estimate = estimate_cloud("g5.xlarge", hours_per_day=10, days_per_month=20)
    assert estimate.usd_per_hour == 1.006
    assert estimate.usd_per_month == pytest.approx(1.006 * 200)
    assert estimate.price_basis == "on-demand"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instance_type": "g5.xlarg"}, "did you mean 'g5.xlarge'"),
        ({"instance_type": "g5.xlarge", "count": 0}, "count must be at least 1, got 0"),
        ({"instance_type": "g5.xlarge", "hours_per_day": 25}, "hours_per_day must be in"),
        ({"instance_type": "g5.xlarge", "region": "eu-west-1"}, "only in region 'us-east-1'"),
        ({"instance_type": "rented-rtx-4090", "spot": True}, "no spot price"),
    ],
)
def test_estimate_cloud_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_cloud(**kwargs)  # type: ignore[arg-type]
