"""Config validation, kept apart from the resource-graph tests: no Pulumi runtime here.

Every bad value is refused by ``config_from_flat`` before any resource exists, with a
message naming the ``llmbox:`` key, the value, and what would be valid.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from stacks.config import StackConfig, StackConfigError
from stacks.flat_config import config_from_flat


# Every valid stack has a secret apiKey; the tests that are about it pass False.
def _load(flat: dict[str, Any], api_key_is_secret: bool = True) -> StackConfig:
    return config_from_flat(
        flat, project="llmbox", stack="dev", api_key_is_secret=api_key_is_secret
    )


def _error(flat: dict[str, Any], api_key_is_secret: bool = True) -> str:
    with pytest.raises(StackConfigError) as caught:
        _load(flat, api_key_is_secret)
    return str(caught.value)


def test_valid_config_fills_defaults(flat_config) -> None:
    config = _load(flat_config())
    assert config.servers.instance_type == "g5.xlarge"
    assert config.servers.instance_count == 1
    assert config.network.inference_sources == ("198.51.100.0/24",)
    assert config.tags.as_tags()["cost-center"] == "research-42"
    # Mon-Sat at 8 h/day: 6 x 30.4375 / 7 = 26.089 days/month, 208.71 h/month
    assert config.days_per_month == pytest.approx(26.0893, abs=1e-4)
    assert config.hours_per_day * config.days_per_month == pytest.approx(208.71, abs=0.01)


def test_unknown_instance_type_suggests_catalog_names(flat_config) -> None:
    message = _error(flat_config(instanceType="g5.xlarg"))
    assert "llmbox:instanceType = 'g5.xlarg': unknown instance type 'g5.xlarg'" in message
    assert "did you mean 'g5.xlarge'" in message


def test_marketplace_offer_is_not_an_ec2_type(flat_config) -> None:
    message = _error(flat_config(instanceType="rented-rtx-4090"))
    assert (
        "'rented-rtx-4090' is a gpu-rental-marketplace offer, not an EC2 instance type" in message
    )


def test_region_without_catalogued_price(flat_config) -> None:
    message = _error(flat_config(region="eu-west-1"))
    assert "catalogued only in region 'us-east-1', not 'eu-west-1'" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("adminCidrs", ["203.0.113.300/32"], "is not a network in CIDR notation"),
        ("adminCidrs", ["203.0.113.7/24"], "has host bits set"),
        ("clientCidrs", ["not-a-cidr"], "is not a network in CIDR notation"),
        ("vpcCidr", "10.0.0.0/8x", "is not a network in CIDR notation"),
    ],
)
def test_malformed_cidr(flat_config, key: str, value: Any, expected: str) -> None:
    message = _error(flat_config(**{key: value}))
    assert f"llmbox:{key} = {value!r}:" in message
    assert expected in message


@pytest.mark.parametrize(
    ("admins", "span"),
    [
        (["0.0.0.0/0"], "'0.0.0.0/0' covers the whole IPv4 internet"),
        (["::/0"], "'::/0' covers the whole IPv6 internet"),
        # No single /0, yet the union is the whole internet.
        (["0.0.0.0/1", "128.0.0.0/1"], "together cover the whole IPv4 internet"),
        (["::/1", "8000::/1"], "together cover the whole IPv6 internet"),
        # Four /2s merge back into 0.0.0.0/0; three still cover three quarters.
        ([f"{q}.0.0.0/2" for q in (0, 64, 128, 192)], "together cover the whole IPv4 internet"),
        (["0.0.0.0/2", "64.0.0.0/2", "192.0.0.0/2"], "more IPv4 addresses than a /1"),
        # Just past the limit: a /8 and one more address block.
        (["10.0.0.0/8", "11.0.0.0/24"], "more IPv4 addresses than a /8"),
        (["2000::/3"], "'2000::/3' covers as many IPv6 addresses as a /3"),
        (["2001::/16", "2002::/16", "203.0.113.7/32"], "as many IPv6 addresses as a /15"),
    ],
)
def test_ssh_never_open_to_the_internet(flat_config, admins: list[str], span: str) -> None:
    message = _error(flat_config(adminCidrs=admins))
    # One line naming the key, the value, every CIDR, the span and the limit.
    assert len(message.splitlines()) == 2
    assert f"llmbox:adminCidrs = {admins!r}: " in message
    assert span in message
    assert "the limit is a /" in message
    assert "that opens SSH to the internet; name your networks" in message


@pytest.mark.parametrize(
    "admins",
    [
        ["10.0.0.0/8"],  # the largest private network is allowed: exactly the limit
        ["10.0.0.0/8", "10.1.0.0/16"],  # overlaps count once
        ["203.0.113.7/32", "2001:db8::/32"],
        ["2001::/16"],
    ],
)
def test_admin_networks_up_to_the_limit_pass(flat_config, admins: list[str]) -> None:
    assert _load(flat_config(adminCidrs=admins)).network.admin_cidrs == tuple(admins)


def test_admin_networks_required(flat_config) -> None:
    assert "needs at least one admin network" in _error(flat_config(adminCidrs=[]))


@pytest.mark.parametrize(
    ("clients", "span"),
    [
        (["0.0.0.0/0"], "'0.0.0.0/0' covers the whole IPv4 internet"),
        (["0.0.0.0/1", "128.0.0.0/1"], "'0.0.0.0/1', '128.0.0.0/1' together cover the whole IPv4"),
        (["198.51.100.0/24", "::/1", "8000::/1"], "'::/1', '8000::/1' together cover the whole"),
    ],
)
def test_world_clients_need_explicit_flag(flat_config, clients: list[str], span: str) -> None:
    message = _error(flat_config(clientCidrs=clients))
    assert f"clientCidrs {span}" in message
    assert "but allowPublicInference is false" in message
    assert len(message.splitlines()) == 2
    # With the flag (and the secret key every stack has) the same networks are served.
    assert _load(flat_config(clientCidrs=clients, allowPublicInference=True))


@pytest.mark.parametrize("public", [False, True])
def test_secret_api_key_is_required(flat_config, public: bool) -> None:
    # The stack's secret apiKey is the only place the hosts' key comes from.
    message = _error(flat_config(allowPublicInference=public), api_key_is_secret=False)
    assert "apiKey is not set: every served host requires an API key" in message
    assert "pulumi config set --secret apiKey" in message
    assert len(message.splitlines()) == 2


def test_public_inference_adds_the_whole_internet(flat_config) -> None:
    config = _load(flat_config(allowPublicInference=True))
    assert config.network.inference_sources == ("198.51.100.0/24", "0.0.0.0/0", "::/0")


def test_no_client_networks_serve_the_admin_networks(flat_config) -> None:
    # No clientCidrs: the API is for the admins only, in the security group and (through
    # the exported clientCidrs) in the host firewall; never an empty list.
    config = _load(flat_config(clientCidrs=None, adminCidrs=["203.0.113.7/32", "2001:db8::/48"]))
    assert config.network.client_cidrs == ()
    assert config.network.inference_sources == ("203.0.113.7/32", "2001:db8::/48")
    config = _load(flat_config(clientCidrs=[]))
    assert config.network.inference_sources == ("203.0.113.7/32",)
    public = _load(flat_config(clientCidrs=None, allowPublicInference=True))
    assert public.network.inference_sources == ("203.0.113.7/32", "0.0.0.0/0", "::/0")


@pytest.mark.parametrize("amount", [0, -50])
def test_budget_must_be_positive(flat_config, amount: int) -> None:
    assert f"llmbox:budgetUsd = {amount}: Input should be greater than 0" in _error(
        flat_config(budgetUsd=amount)
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"hoursPerDay": 25}, "llmbox:hoursPerDay = 25: must be more than 0 and less than 24"),
        ({"hoursPerDay": 0}, "llmbox:hoursPerDay = 0: must be more than 0"),
        ({"workDays": []}, "llmbox:workDays = []: needs at least one day of MON, TUE"),
        ({"workDays": ["MON", "FUNDAY"]}, "llmbox:workDays = ['MON', 'FUNDAY']: Input should be"),
        ({"workDays": ["MON", "MON"]}, "lists a day twice"),
        ({"workStart": "8am"}, "llmbox:workStart = '8am': must be a 24-hour time HH:MM"),
        ({"timezone": "Mars/Olympus"}, "llmbox:timezone = 'Mars/Olympus': must be an IANA"),
        (
            {"workStart": "18:00", "hoursPerDay": 8},
            "start 18:00 + 8 h ends after midnight; windows that cross midnight are not supported",
        ),
    ],
)
def test_impossible_schedule(flat_config, overrides: dict[str, Any], expected: str) -> None:
    assert expected in _error(flat_config(**overrides))


def test_schedule_ending_at_midnight_stops_at_2359(flat_config) -> None:
    schedule = _load(flat_config(workStart="16:00", hoursPerDay=8)).guardrails.schedule
    assert schedule is not None
    assert schedule.start_cron == "cron(0 16 ? * MON,TUE,WED,THU,FRI,SAT *)"
    assert schedule.stop_cron == "cron(59 23 ? * MON,TUE,WED,THU,FRI,SAT *)"


def test_schedule_keys_ignored_when_disabled(flat_config) -> None:
    config = _load(flat_config(scheduleEnabled=False, hoursPerDay=30))
    assert config.guardrails.schedule is None
    assert (config.hours_per_day, config.days_per_month) == (24.0, 30.4375)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("instanceCount", 0, "Input should be greater than or equal to 1"),
        ("instanceCount", 21, "Input should be less than or equal to 20"),
        ("rootVolumeGb", 20, "Input should be greater than or equal to 75"),
        ("rootVolumeGb", 20000, "Input should be less than or equal to 16384"),
        ("inferencePort", 80, "Input should be greater than or equal to 1024"),
        ("idleMinutes", 42, "must be a multiple of 5"),
        ("idleCpuPercent", 100, "Input should be less than 100"),
        ("sshPublicKey", "AAAA-not-a-key", "must be an OpenSSH public key line"),
        ("sshUser", "root", "must be a lower-case Linux user name other than root"),
        ("budgetEmail", "nobody", "must be an e-mail address"),
        ("amiId", "ubuntu-22.04", "must look like 'ami-0123456789abcdef0'"),
        ("spotMaxPrice", "-0.1", "Input should be greater than 0"),
        ("owner", " ", "must not be empty"),
        ("budgetAction", "terminate", "Input should be 'stop' or 'notify'"),
        ("budgetStopPercent", 0, "Input should be greater than or equal to 1"),
        ("budgetStopPercent", 1001, "Input should be less than or equal to 1000"),
        ("costAllocationTagsActive", "maybe", "Input should be a valid boolean"),
    ],
)
def test_bad_value_names_key_and_value(flat_config, key: str, value: Any, expected: str) -> None:
    message = _error(flat_config(**{key: value}, spot=True))
    assert f"llmbox:{key} = {value!r}: {expected}" in message
    # One line per bad value: nothing else is reported.
    assert len(message.splitlines()) == 2


def test_missing_required_keys_each_named(flat_config) -> None:
    message = _error(flat_config(sshPublicKey=None, budgetEmail=None))
    assert "llmbox:sshPublicKey = '<not set>': Field required" in message
    assert "llmbox:budgetEmail = '<not set>': Field required" in message


def test_spot_max_price_needs_spot(flat_config) -> None:
    assert "spotMaxPrice is set but spot is false" in _error(flat_config(spotMaxPrice="0.5"))


def test_existing_network_needs_both_ids(flat_config) -> None:
    assert "vpcId and subnetId go together" in _error(flat_config(vpcId="vpc-0abc"))


def test_subnet_inside_vpc(flat_config) -> None:
    message = _error(flat_config(vpcCidr="10.42.0.0/16", subnetCidr="10.43.1.0/24"))
    assert "subnetCidr '10.43.1.0/24' is not inside vpcCidr '10.42.0.0/16'" in message


def test_unknown_key_lists_known_ones(flat_config) -> None:
    message = _error(flat_config(instanceTyp="g5.xlarge"))
    assert re.match(r"unknown config key llmbox:instanceTyp; known keys: .*instanceType", message)


def test_empty_optional_strings_mean_unset(flat_config) -> None:
    config = _load(flat_config(amiId="", vpcId="", subnetId="", spotMaxPrice=""))
    assert (config.servers.ami_id, config.network.vpc_id, config.servers.spot_max_price) == (
        None,
        None,
        None,
    )


def test_budget_stops_the_hosts_at_100_percent_by_default(flat_config) -> None:
    guardrails = _load(flat_config()).guardrails
    assert guardrails.stop_on_budget is True
    assert (guardrails.budget_threshold_percent, guardrails.budget_stop_percent) == (80, 100)
    assert guardrails.cost_allocation_tags_active is False


def test_budget_stop_before_the_warning_is_refused(flat_config) -> None:
    message = _error(flat_config(budgetThresholdPercent=90, budgetStopPercent=50))
    assert "budgetStopPercent 50 is below budgetThresholdPercent 90" in message
    assert len(message.splitlines()) == 2
    # Notify-only never stops, so the stop share does not matter then.
    notify = _load(
        flat_config(budgetAction="notify", budgetThresholdPercent=90, budgetStopPercent=50)
    )
    assert notify.guardrails.stop_on_budget is False
