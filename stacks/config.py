"""The stack's configuration: one validated, frozen object per component.

Every value is checked here, before any resource is created, and a bad one is
reported once, naming the Pulumi config key, the value and what would be valid.
:mod:`stacks.flat_config` maps the flat ``llmbox:*`` keys onto these objects.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from llmbox.cost import CloudEstimate, estimate_cloud
from llmbox.cost.catalog import load_catalog
from stacks.gateway_config import GatewayConfig, GatewayShape
from stacks.schedule import DAYS_PER_MONTH, WorkSchedule

_MODEL = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid")
_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
_LINUX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SSH_KEY_TYPES = ("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-nistp", "sk-ssh-ed25519@openssh.com ")
MAX_INSTANCES = 20


class StackConfigError(ValueError):
    """A stack config value is invalid; the message names the key and the value."""


def _cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(
            f"{value!r} is not a network in CIDR notation such as '203.0.113.0/24' ({error})"
        ) from error


# The widest span a list of networks may cover, per address family, before it counts as
# "the whole internet". Checking the union (not each entry for /0) also catches
# 0.0.0.0/1 + 128.0.0.0/1 or a handful of /2s. IPv4: a /8 (16.8 M addresses) is the
# largest private network (10.0.0.0/8), so a VPN-wide admin range still passes while
# anything larger is refused. IPv6: a /16; registries themselves are handed /12s, no
# organisation's own network comes near a /16.
MAX_NETWORK_PREFIX = {4: 8, 6: 16}


def world_sized(cidrs: Iterable[str]) -> str | None:
    """Why ``cidrs`` together span too much of the internet, or None when they don't.

    The networks of each address family are merged (``collapse_addresses``, so overlaps
    count once) and their addresses counted against :data:`MAX_NETWORK_PREFIX`.
    """
    by_family: dict[int, list[str]] = {4: [], 6: []}
    for cidr in cidrs:
        by_family[_cidr(cidr).version].append(cidr)
    for version, members in by_family.items():
        bits = 32 if version == 4 else 128
        networks = [_cidr(c) for c in members]
        # One family per list (grouped above), which is what collapse_addresses needs.
        merged = ipaddress.collapse_addresses(networks)  # type: ignore[type-var]
        covered = sum(n.num_addresses for n in merged)
        if covered <= 2 ** (bits - MAX_NETWORK_PREFIX[version]):
            continue
        exponent = covered.bit_length() - 1
        if covered == 2**bits:
            span = f"the whole IPv{version} internet"
        elif covered == 2**exponent:
            span = f"as many IPv{version} addresses as a /{bits - exponent}"
        else:
            span = f"more IPv{version} addresses than a /{bits - exponent}"
        verb = "covers" if len(members) == 1 else "together cover"
        return (
            f"{', '.join(repr(c) for c in members)} {verb} {span} "
            f"(the limit is a /{MAX_NETWORK_PREFIX[version]})"
        )
    return None


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


class CostTags(BaseModel):
    """Cost-allocation tags every taggable resource carries (enforced in stacks.tagged)."""

    model_config = _MODEL

    project: str
    stack: str
    owner: str
    cost_center: str

    _filled = field_validator("project", "stack", "owner", "cost_center")(_non_empty)

    def as_tags(self) -> dict[str, str]:
        return {
            "project": self.project,
            "stack": self.stack,
            "owner": self.owner,
            "cost-center": self.cost_center,
            "managed-by": "pulumi",
        }


class AWSBase(BaseModel):
    """Base of every component config: the cost-allocation tags are not optional."""

    model_config = _MODEL

    tags: CostTags


class NetworkConfig(AWSBase):
    """A new VPC + public subnet, or an existing pair, and who may reach the hosts."""

    model_config = _MODEL

    vpc_id: str | None = None
    subnet_id: str | None = None
    vpc_cidr: str = "10.42.0.0/16"
    subnet_cidr: str = "10.42.1.0/24"
    availability_zone: str | None = None
    admin_cidrs: tuple[str, ...]
    client_cidrs: tuple[str, ...] = ()
    inference_port: int = Field(default=8080, ge=1024, le=65535)
    allow_public_inference: bool = False
    api_key_is_secret: bool = False

    @field_validator("vpc_cidr", "subnet_cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        _cidr(value)
        return value

    @field_validator("admin_cidrs")
    @classmethod
    def _admins_not_world(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one admin network for SSH, e.g. ['203.0.113.7/32']")
        too_wide = world_sized(value)
        if too_wide:
            raise ValueError(f"{too_wide}: that opens SSH to the internet; name your networks")
        return value

    @field_validator("client_cidrs")
    @classmethod
    def _clients_are_cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            _cidr(cidr)
        return value

    @model_validator(mode="after")
    def _public_only_when_asked_and_keyed(self) -> NetworkConfig:
        too_wide = world_sized(self.client_cidrs)
        if too_wide and not self.allow_public_inference:
            raise ValueError(
                f"clientCidrs {too_wide} but allowPublicInference is false; list your "
                "client networks, or set allowPublicInference: true together with a "
                "secret apiKey"
            )
        # The stack's secret apiKey is the one source of the served model's key: the
        # inventory reads it back with `pulumi config get` when the playbook runs (see
        # llmbox.cloud.inventory). Without it the converge would stop later, so refuse now.
        if not self.api_key_is_secret:
            raise ValueError(
                "apiKey is not set: every served host requires an API key, and the stack's "
                "secret apiKey is where the playbook reads it from; run "
                '`pulumi config set --secret apiKey "$(openssl rand -hex 24)"` first'
            )
        if (self.vpc_id is None) != (self.subnet_id is None):
            raise ValueError("vpcId and subnetId go together: set both or neither")
        if self.vpc_id is None and not _cidr(self.subnet_cidr).subnet_of(_cidr(self.vpc_cidr)):  # type: ignore[arg-type]
            raise ValueError(
                f"subnetCidr {self.subnet_cidr!r} is not inside vpcCidr {self.vpc_cidr!r}"
            )
        return self

    @property
    def inference_sources(self) -> tuple[str, ...]:
        """Networks allowed on the inference port (the whole internet only when asked).

        No clientCidrs means the API serves the admin networks only: the people who may
        SSH in can try and benchmark it, nobody else reaches it. The security group and
        the host firewall (through the exported clientCidrs and the inventory) both take
        this one list, so they always agree.
        """
        clients = self.client_cidrs or self.admin_cidrs
        if self.allow_public_inference:
            return tuple(dict.fromkeys([*clients, "0.0.0.0/0", "::/0"]))
        return clients


class ServerConfig(AWSBase):
    """The GPU instances: type, count, market, image, disk, login."""

    model_config = _MODEL

    instance_type: str = "g5.xlarge"
    instance_count: int = Field(default=1, ge=1, le=MAX_INSTANCES)
    spot: bool = False
    spot_max_price: float | None = Field(default=None, gt=0)
    ami_id: str | None = None
    ami_name_filter: str = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
    ami_owner: str = "amazon"
    root_volume_gb: int = Field(default=200, ge=75, le=16384)
    ssh_user: str = "ubuntu"
    ssh_public_key: str

    @field_validator("instance_type")
    @classmethod
    def _known_instance_type(cls, value: str) -> str:
        # The catalog's ValueError already says "did you mean …".
        row = load_catalog().cloud_instance(value)
        if row.provider != "aws":
            aws_types = sorted(
                r.instance_type for r in load_catalog().cloud_instances if r.provider == "aws"
            )
            raise ValueError(
                f"{value!r} is a {row.provider} offer, not an EC2 instance type; "
                f"AWS types in the catalog: {', '.join(aws_types)}"
            )
        return value

    @field_validator("ami_id")
    @classmethod
    def _ami_shape(cls, value: str | None) -> str | None:
        if value is not None and not _AMI_ID.match(value):
            raise ValueError("must look like 'ami-0123456789abcdef0' (or be empty to look one up)")
        return value

    @field_validator("ssh_user")
    @classmethod
    def _ssh_user(cls, value: str) -> str:
        if value == "root" or not _LINUX_USER.match(value):
            raise ValueError("must be a lower-case Linux user name other than root, e.g. 'ubuntu'")
        return value

    @field_validator("ssh_public_key")
    @classmethod
    def _ssh_public_key(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(_SSH_KEY_TYPES) or len(value.split()) < 2:
            raise ValueError(
                "must be an OpenSSH public key line ('ssh-ed25519 AAAA… comment'), "
                "e.g. the contents of ~/.ssh/id_ed25519.pub"
            )
        return value

    @model_validator(mode="after")
    def _max_price_needs_spot(self) -> ServerConfig:
        if self.spot_max_price is not None and not self.spot:
            raise ValueError("spotMaxPrice is set but spot is false; set spot: true or drop it")
        return self


class BudgetAction(StrEnum):
    """What the budget does when actual spend passes ``budgetStopPercent``."""

    STOP = "stop"  # stop the stack's instances (and keep the schedule from starting them)
    NOTIFY = "notify"  # e-mail only, as budgets did before actions existed


class GuardrailConfig(AWSBase):
    """Idle auto-stop, a working-hours schedule (None = always on), a monthly budget."""

    model_config = _MODEL

    region: str
    idle_stop: bool = True
    idle_cpu_percent: int = Field(default=5, gt=0, lt=100)
    idle_minutes: int = Field(default=60, ge=10, le=1440)
    schedule: WorkSchedule | None = WorkSchedule()
    budget_usd: float = Field(default=300, gt=0)
    budget_email: str
    budget_threshold_percent: int = Field(default=80, ge=1, le=100)
    budget_action: BudgetAction = BudgetAction.STOP
    budget_stop_percent: int = Field(default=100, ge=1, le=1000)
    cost_allocation_tags_active: bool = False

    @field_validator("idle_minutes")
    @classmethod
    def _whole_periods(cls, value: int) -> int:
        if value % 5:
            raise ValueError("must be a multiple of 5 (the alarm counts 5-minute periods)")
        return value

    @field_validator("budget_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("must be an e-mail address such as 'gpu-owner@example.com'")
        return value

    @model_validator(mode="after")
    def _warn_before_stop(self) -> GuardrailConfig:
        # The e-mail at budgetThresholdPercent is the warning; a stop below it would come
        # without one.
        if (
            self.budget_action is BudgetAction.STOP
            and self.budget_stop_percent < self.budget_threshold_percent
        ):
            raise ValueError(
                f"budgetStopPercent {self.budget_stop_percent} is below budgetThresholdPercent "
                f"{self.budget_threshold_percent}: the hosts would stop before the warning "
                "e-mail; raise budgetStopPercent or lower budgetThresholdPercent"
            )
        return self

    @property
    def stop_on_budget(self) -> bool:
        return self.budget_action is BudgetAction.STOP

    @property
    def idle_periods(self) -> int:
        return self.idle_minutes // 5

    @property
    def stop_action_arn(self) -> str:
        return f"arn:aws:automate:{self.region}:ec2:stop"


class StackConfig(BaseModel):
    """Everything one stack needs, validated as a whole."""

    model_config = _MODEL

    region: str = "us-east-1"
    tags: CostTags
    network: NetworkConfig
    servers: ServerConfig
    guardrails: GuardrailConfig
    gateway: GatewayConfig = GatewayConfig()

    @field_validator("region")
    @classmethod
    def _region_shape(cls, value: str) -> str:
        if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", value):
            raise ValueError("must be an AWS region name such as 'us-east-1'")
        return value

    @model_validator(mode="after")
    def _gateway_fits_the_hosts(self) -> StackConfig:
        problem = self.gateway.problem_with(
            instance_count=self.servers.instance_count,
            inference_port=self.network.inference_port,
            ami_id=self.servers.ami_id,
            ami_name_filter=self.servers.ami_name_filter,
        )
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _priceable(self) -> StackConfig:
        # The stack exports its estimated bill; a config the catalog cannot price
        # (another region, spot without a spot price) is refused here, up front.
        self.estimate()
        return self

    def estimate(self) -> CloudEstimate:
        """The catalog's price for these instances, market and working hours."""
        return estimate_cloud(
            self.servers.instance_type,
            count=self.servers.instance_count,
            spot=self.servers.spot,
            hours_per_day=self.hours_per_day,
            days_per_month=self.days_per_month,
            region=self.region,
        )

    @property
    def gateway_shape(self) -> GatewayShape:
        """none, local or dedicated (``auto`` resolved by the instance count)."""
        return self.gateway.resolved(self.servers.instance_count)

    @property
    def hours_per_day(self) -> float:
        schedule = self.guardrails.schedule
        return 24.0 if schedule is None else schedule.hours_per_day

    @property
    def days_per_month(self) -> float:
        schedule = self.guardrails.schedule
        return DAYS_PER_MONTH if schedule is None else schedule.days_per_month
