"""The gateway's part of the stack config: where the TLS gateway (roles/gateway) runs.

Kept apart from :mod:`stacks.config` (which embeds it in ``StackConfig``) so each
module stays readable; the rules that need other components' values (instance count,
engine port, the GPU hosts' image) are checked in ``StackConfig``.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

# The gateway role's own default port (roles/gateway/defaults/main.yml: gateway_port).
DEFAULT_GATEWAY_PORT = 8443
# Debian's official AMIs (https://wiki.debian.org/Cloud/AmazonEC2Image): the gateway role
# is tested on Debian 12 and 13 test hosts, whose HAProxy (2.6, 3.0) it needs.
DEBIAN_AMI_OWNER = "136693071363"
DEFAULT_GATEWAY_AMI_FILTER = "debian-12-amd64-*"
# Images whose HAProxy is older than the role's minimum 2.6 (Ubuntu 22.04 ships 2.4,
# 20.04 ships 2.0): the role's preflight refuses them, so the stack refuses them first.
OLD_HAPROXY_IMAGES = re.compile(r"ubuntu[ -]?(18|20|22)\.04|ubuntu-(bionic|focal|jammy)", re.I)
# "t3.small", "c7i.large"; a Graviton family (a "g" after the generation digit: t4g,
# c7gn) is arm64, which the amd64 Debian image cannot boot.
_INSTANCE_TYPE = re.compile(r"^[a-z]+[0-9][a-z0-9-]*\.[0-9a-z]+$")
_ARM_FAMILY = re.compile(r"^[a-z]+[0-9]+g[a-z]*\.")


class GatewayShape(StrEnum):
    """Where the TLS gateway runs (the ``gateway`` config key)."""

    NONE = "none"  # no gateway: each host serves plain HTTP on inferencePort (as before)
    LOCAL = "local"  # on the single GPU host, in front of its engine bound to loopback
    DEDICATED = "dedicated"  # on a small instance of its own, balancing over every GPU host
    AUTO = "auto"  # local with one GPU host, dedicated with more


class GatewayConfig(BaseModel):
    """The gateway's shape, public port and (dedicated shape) its own instance."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid"
    )

    shape: GatewayShape = GatewayShape.NONE
    port: int = Field(default=DEFAULT_GATEWAY_PORT, ge=1, le=65535)
    instance_type: str = "t3.small"
    ami_name_filter: str = DEFAULT_GATEWAY_AMI_FILTER

    @field_validator("port")
    @classmethod
    def _not_ssh(cls, value: int) -> int:
        if value == 22:
            raise ValueError("22 is the SSH port; the gateway needs its own, e.g. 8443 or 443")
        return value

    @field_validator("instance_type")
    @classmethod
    def _x86_instance_type(cls, value: str) -> str:
        if not _INSTANCE_TYPE.match(value):
            raise ValueError("must be an EC2 instance type such as 't3.small'")
        if _ARM_FAMILY.match(value):
            raise ValueError(
                "is a Graviton (arm64) type and the gateway boots the amd64 Debian image; "
                "pick an x86_64 type such as 't3.small' or 'c7i.large'"
            )
        return value

    def resolved(self, instance_count: int) -> GatewayShape:
        """The shape that is built: ``auto`` becomes local (one host) or dedicated."""
        if self.shape is GatewayShape.AUTO:
            return GatewayShape.LOCAL if instance_count == 1 else GatewayShape.DEDICATED
        return self.shape

    def problem_with(
        self, *, instance_count: int, inference_port: int, ami_id: str | None, ami_name_filter: str
    ) -> str | None:
        """Why the GPU hosts cannot carry the local shape, or None (any other shape fits)."""
        shape = self.shape
        if self.resolved(instance_count) is not GatewayShape.LOCAL:
            return None
        chosen = f"gateway is {shape.value!r}" + (
            " (one GPU host)" if shape is GatewayShape.AUTO else ""
        )
        if instance_count > 1:
            return (
                f"{chosen} but instanceCount is {instance_count}: the local shape guards one "
                f"host's own engine; set gateway: dedicated (or auto) for one gateway in front "
                f"of all {instance_count}"
            )
        if self.port == inference_port:
            return (
                f"{chosen}: gatewayPort {self.port} is also inferencePort on the same host; "
                "give them different ports (gatewayPort defaults to 8443)"
            )
        if ami_id is None and OLD_HAPROXY_IMAGES.search(ami_name_filter):
            return (
                f"{chosen}, on the GPU host's image amiNameFilter {ami_name_filter!r}, whose "
                "HAProxy is older than the 2.6 the gateway role needs: set amiNameFilter to an "
                "Ubuntu 24.04 image (e.g. 'Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu "
                "24.04) *'), or gateway: dedicated (a Debian 12 gateway instance)"
            )
        return None
