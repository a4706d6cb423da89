"""Price a cloud GPU deployment from the catalog: the helper the Pulumi stack exports."""

from __future__ import annotations

from dataclasses import dataclass

from llmbox.cost.catalog import load_catalog

HOURS_PER_DAY_MAX = 24.0
DAYS_PER_MONTH_MAX = 31.0
# 365.25 days / 12 months: an always-on instance's average month
AVERAGE_DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class CloudEstimate:
    """What ``count`` instances cost at the catalogued price (USD).

    ``usd_per_hour``/``usd_per_month`` use the high end of the catalogued price range
    (the highest zone's spot price, or the top of a marketplace's range), so a budget
    built on them is not exceeded by the catalogued prices; ``*_low`` give the low end.
    """

    instance_type: str
    gpu: str
    gpu_count: int
    vram_gb: float
    count: int
    usd_per_hour: float
    usd_per_month: float
    usd_per_hour_low: float
    usd_per_month_low: float
    hours_per_month: float
    price_basis: str
    source: str
    as_of: str


def estimate_cloud(  # noqa: PLR0917 - signature agreed with the Pulumi stack
    instance_type: str,
    count: int = 1,
    spot: bool = False,
    hours_per_day: float = 24,
    days_per_month: float = AVERAGE_DAYS_PER_MONTH,
    region: str = "us-east-1",
) -> CloudEstimate:
    """Estimate the hourly and monthly cost of ``count`` instances of ``instance_type``.

    Raises ``ValueError`` naming the bad value (with "did you mean ..." for an unknown
    instance type, the catalogued region for a region mismatch, or a missing spot price).
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if not 0 < hours_per_day <= HOURS_PER_DAY_MAX:
        raise ValueError(f"hours_per_day must be in (0, 24], got {hours_per_day}")
    if not 0 < days_per_month <= DAYS_PER_MONTH_MAX:
        raise ValueError(f"days_per_month must be in (0, 31], got {days_per_month}")
    row = load_catalog().cloud_instance(instance_type)
    if row.region is not None and row.region != region:
        raise ValueError(
            f"instance type {row.instance_type!r} is catalogued only in region "
            f"{row.region!r}, not {region!r}"
        )
    if spot:
        if row.spot_low_usd_per_hour is None or row.spot_high_usd_per_hour is None:
            raise ValueError(
                f"no spot price is catalogued for {row.instance_type!r}; use spot=False"
            )
        low, high = row.spot_low_usd_per_hour, row.spot_high_usd_per_hour
        basis = "spot (highest zone price in catalog)"
    else:
        low, high = row.on_demand_low_usd_per_hour, row.on_demand_high_usd_per_hour
        basis = "on-demand" if low == high else "on-demand (top of catalogued price range)"
    hours_per_month = hours_per_day * days_per_month
    return CloudEstimate(
        instance_type=row.instance_type,
        gpu=row.gpu,
        gpu_count=row.gpu_count,
        vram_gb=row.vram_gb,
        count=count,
        usd_per_hour=high * count,
        usd_per_month=high * count * hours_per_month,
        usd_per_hour_low=low * count,
        usd_per_month_low=low * count * hours_per_month,
        hours_per_month=hours_per_month,
        price_basis=basis,
        source=row.source,
        as_of=row.as_of,
    )
