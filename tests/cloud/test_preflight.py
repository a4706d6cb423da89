"""The boto3 preflight against moto's EC2 (in-process): offered types, GPU info, spot, errors.

moto's spot prices are synthetic, so spot tests assert shape and selection logic,
never AWS's numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from llmbox.cloud.preflight import PreflightError, check_instance_type, latest_per_zone


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def test_offered_gpu_type_reports_gpu_and_zones(session: boto3.Session) -> None:
    report = check_instance_type("g5.xlarge", "us-east-1", session=session)
    assert (report.gpu.manufacturer, report.gpu.name, report.gpu.count) == ("NVIDIA", "A10G", 1)
    assert report.gpu.memory_mib_each == report.gpu.total_memory_mib > 20 * 1024
    assert (report.vcpus, report.memory_mib) == (4, 16384)
    assert report.zones and all(z.startswith("us-east-1") for z in report.zones)
    assert list(report.zones) == sorted(report.zones)
    assert report.spot_prices == ()


def test_spot_prices_one_per_offered_zone(session: boto3.Session) -> None:
    report = check_instance_type("g5.xlarge", "us-east-1", spot=True, session=session)
    assert [p.availability_zone for p in report.spot_prices] == list(report.zones)
    assert all(p.usd_per_hour > 0 for p in report.spot_prices)


def test_type_not_offered_in_region_names_alternatives(session: boto3.Session) -> None:
    # moto's us-west-1 offers g4dn.xlarge but none of the other catalog GPU types.
    with pytest.raises(PreflightError) as caught:
        check_instance_type("g5.xlarge", "us-west-1", session=session)
    assert str(caught.value) == (
        "'g5.xlarge' is not offered in us-west-1; catalog GPU types offered there: g4dn.xlarge"
    )


def test_unknown_type_suggests_catalog_names(session: boto3.Session) -> None:
    with pytest.raises(PreflightError, match=r"'g5.xlargee' is not an EC2 instance type; "
                       r"did you mean 'g5.xlarge'"):  # fmt: skip
        check_instance_type("g5.xlargee", "us-east-1", session=session)


def test_type_without_gpu_is_refused(session: boto3.Session) -> None:
    with pytest.raises(PreflightError, match=r"'m5.large' has no GPU; GPU types in the llmbox"):
        check_instance_type("m5.large", "us-east-1", session=session)


def test_unknown_region_suggests_close_ones(session: boto3.Session) -> None:
    with pytest.raises(PreflightError, match=r"unknown AWS region 'us-esat-1'; did you mean"):
        check_instance_type("g5.xlarge", "us-esat-1", session=session)


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    # No instance-metadata lookup: nothing may leave this machine.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PreflightError, match=r"^no AWS credentials found"):
        check_instance_type("g5.xlarge", "us-east-1", session=boto3.Session())


def test_no_spot_market_is_refused(session: boto3.Session) -> None:
    # moto always invents spot prices; botocore's Stubber plays a region without any.
    ec2 = session.client("ec2", region_name="us-east-1")
    described = ec2.describe_instance_types(InstanceTypes=["g5.xlarge"])
    stubber = Stubber(ec2)
    stubber.add_response("describe_instance_types", described)
    stubber.add_response(
        "describe_instance_type_offerings",
        {
            "InstanceTypeOfferings": [
                {
                    "InstanceType": "g5.xlarge",
                    "LocationType": "availability-zone",
                    "Location": "us-east-1a",
                }
            ]
        },
    )
    stubber.add_response("describe_spot_price_history", {"SpotPriceHistory": []})
    stubbed = boto3.Session(region_name="us-east-1")
    stubbed.client = lambda *args, **kwargs: ec2  # type: ignore[method-assign]
    with stubber, pytest.raises(PreflightError, match=r"no Linux spot price for 'g5.xlarge'"):
        check_instance_type("g5.xlarge", "us-east-1", spot=True, session=stubbed)


def test_latest_per_zone_keeps_newest_price() -> None:
    old, new = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    history = [
        {"AvailabilityZone": "us-east-1b", "SpotPrice": "0.50", "Timestamp": old},
        {"AvailabilityZone": "us-east-1a", "SpotPrice": "0.40", "Timestamp": new},
        {"AvailabilityZone": "us-east-1b", "SpotPrice": "0.45", "Timestamp": new},
        {"AvailabilityZone": "us-east-1a", "SpotPrice": "0.30", "Timestamp": old},
    ]
    prices = latest_per_zone(history)
    assert [(p.availability_zone, p.usd_per_hour) for p in prices] == [
        ("us-east-1a", 0.40),
        ("us-east-1b", 0.45),
    ]
