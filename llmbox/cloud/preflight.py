"""Ask AWS, before ``pulumi up``, whether an instance type fits: offered, GPU, spot price.

Only ``llmbox cloud check`` imports this module (inside the command), so boto3 is
imported at the top here and never by ``llmbox report`` or ``llmbox --help``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from llmbox.cost.catalog import load_catalog


class PreflightError(Exception):
    """The instance type does not fit (or AWS could not be asked); the message says why."""


@dataclass(frozen=True)
class GpuInfo:
    """GPUs of an instance type as DescribeInstanceTypes reports them."""

    manufacturer: str
    name: str
    count: int
    memory_mib_each: int
    total_memory_mib: int


@dataclass(frozen=True)
class SpotPrice:
    """The latest Linux spot price in one availability zone (USD per hour, from AWS)."""

    availability_zone: str
    usd_per_hour: float
    timestamp: datetime


@dataclass(frozen=True)
class PreflightReport:
    """What AWS says about ``instance_type`` in ``region``."""

    instance_type: str
    region: str
    zones: tuple[str, ...]
    gpu: GpuInfo
    vcpus: int
    memory_mib: int
    spot_prices: tuple[SpotPrice, ...]


def _aws_catalog_types() -> list[str]:
    return sorted(r.instance_type for r in load_catalog().cloud_instances if r.provider == "aws")


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _gpu_info(instance_type: str, described: dict[str, Any]) -> GpuInfo:
    gpu_info = described.get("GpuInfo")
    if not gpu_info or not gpu_info.get("Gpus"):
        raise PreflightError(
            f"{instance_type!r} has no GPU; GPU types in the llmbox catalog: "
            + ", ".join(_aws_catalog_types())
        )
    gpu = gpu_info["Gpus"][0]
    return GpuInfo(
        manufacturer=gpu.get("Manufacturer", "?"),
        name=gpu.get("Name", "?"),
        count=sum(int(g.get("Count", 0)) for g in gpu_info["Gpus"]),
        memory_mib_each=int(gpu.get("MemoryInfo", {}).get("SizeInMiB", 0)),
        total_memory_mib=int(gpu_info.get("TotalGpuMemoryInMiB", 0)),
    )


def _offered_zones(ec2: Any, instance_types: list[str]) -> dict[str, list[str]]:
    """instance type -> availability zones of the client's region that offer it."""
    zones: dict[str, list[str]] = {}
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    pages = paginator.paginate(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": instance_types}],
    )
    for page in pages:
        for offer in page["InstanceTypeOfferings"]:
            zones.setdefault(offer["InstanceType"], []).append(offer["Location"])
    return {t: sorted(z) for t, z in zones.items()}


def latest_per_zone(history: list[dict[str, Any]]) -> tuple[SpotPrice, ...]:
    """The newest price per availability zone from SpotPriceHistory entries, by zone."""
    latest: dict[str, SpotPrice] = {}
    for entry in history:
        price = SpotPrice(
            availability_zone=entry["AvailabilityZone"],
            usd_per_hour=float(entry["SpotPrice"]),
            timestamp=entry["Timestamp"],
        )
        known = latest.get(price.availability_zone)
        if known is None or price.timestamp > known.timestamp:
            latest[price.availability_zone] = price
    return tuple(latest[zone] for zone in sorted(latest))


def _latest_spot_prices(ec2: Any, instance_type: str) -> tuple[SpotPrice, ...]:
    now = datetime.now(UTC)
    # StartTime = EndTime = now asks for the price in effect now, per zone.
    response = ec2.describe_spot_price_history(
        InstanceTypes=[instance_type],
        ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
        StartTime=now,
        EndTime=now,
    )
    return latest_per_zone(response["SpotPriceHistory"])


def _ask_aws(ec2: Any, instance_type: str, region: str, spot: bool) -> PreflightReport:
    try:
        described = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "InvalidInstanceType":
            raise
        raise PreflightError(
            f"{instance_type!r} is not an EC2 instance type"
            + _did_you_mean(instance_type, _aws_catalog_types())
        ) from None
    gpu = _gpu_info(instance_type, described[0])
    zones = _offered_zones(ec2, [instance_type]).get(instance_type, [])
    if not zones:
        others = [t for t in _offered_zones(ec2, _aws_catalog_types()) if t != instance_type]
        raise PreflightError(
            f"{instance_type!r} is not offered in {region}; catalog GPU types offered there: "
            + (", ".join(sorted(others)) or "none")
        )
    spot_prices = _latest_spot_prices(ec2, instance_type) if spot else ()
    if spot and not spot_prices:
        raise PreflightError(
            f"AWS reports no Linux spot price for {instance_type!r} in {region}: no spot "
            "market for it there; use on-demand (spot: false)"
        )
    return PreflightReport(
        instance_type=instance_type,
        region=region,
        zones=tuple(zones),
        gpu=gpu,
        vcpus=int(described[0]["VCpuInfo"]["DefaultVCpus"]),
        memory_mib=int(described[0]["MemoryInfo"]["SizeInMiB"]),
        spot_prices=spot_prices,
    )


def check_instance_type(
    instance_type: str, region: str, spot: bool = False, session: boto3.Session | None = None
) -> PreflightReport:
    """Ask EC2 about ``instance_type`` in ``region``; raise PreflightError if it won't do."""
    session = session or boto3.Session()
    regions = session.get_available_regions("ec2")
    if region not in regions:
        hint = _did_you_mean(region, regions) or f"; EC2 regions: {', '.join(sorted(regions))}"
        raise PreflightError(f"unknown AWS region {region!r}{hint}")
    ec2 = session.client("ec2", region_name=region)
    try:
        return _ask_aws(ec2, instance_type, region, spot)
    except NoCredentialsError:
        raise PreflightError(
            "no AWS credentials found: set AWS_PROFILE (after `aws configure` or "
            "`aws sso login`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from None
    except ClientError as error:
        details = error.response["Error"]
        raise PreflightError(
            f"AWS refused {error.operation_name} in {region}: {details.get('Code')}: "
            f"{details.get('Message')}"
        ) from None
    except (EndpointConnectionError, NoRegionError) as error:
        raise PreflightError(f"could not reach EC2 in {region}: {error}") from None
    except BotoCoreError as error:
        raise PreflightError(f"AWS SDK error: {error}") from None
