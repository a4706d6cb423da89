"""The gateway's stack config: each bad value refused once, naming the key and the value.

No Pulumi runtime here (as tests/stacks/test_config_validation.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import StackConfig, StackConfigError
from stacks.flat_config import config_from_flat
from stacks.gateway_config import GatewayShape

UBUNTU_24 = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) *"


def _load(flat: dict[str, Any]) -> StackConfig:
    return config_from_flat(flat, project="llmbox", stack="dev", api_key_is_secret=True)


def _error(flat: dict[str, Any]) -> str:
    with pytest.raises(StackConfigError) as caught:
        _load(flat)
    message = str(caught.value)
    # One problem, one line under the heading.
    assert message.count("\n") == 1, message
    return message


@pytest.mark.parametrize(
    ("overrides", "shape"),
    [
        ({}, GatewayShape.NONE),
        ({"gateway": "auto", "instanceCount": 3}, GatewayShape.DEDICATED),
        ({"gateway": "auto", "amiNameFilter": UBUNTU_24}, GatewayShape.LOCAL),
        ({"gateway": "dedicated"}, GatewayShape.DEDICATED),  # one host behind a gateway
        ({"gateway": "local", "amiId": "ami-0123456789abcdef0"}, GatewayShape.LOCAL),
    ],
)
def test_auto_resolves_by_the_instance_count(flat_config, overrides, shape) -> None:
    assert _load(flat_config(**overrides)).gateway_shape is shape


def test_defaults_are_the_gateway_roles(flat_config) -> None:
    gateway = _load(flat_config(gateway="dedicated")).gateway
    # roles/gateway/defaults/main.yml: gateway_port: 8443
    assert (gateway.port, gateway.instance_type) == (8443, "t3.small")
    assert gateway.ami_name_filter == "debian-12-amd64-*"


def test_an_unknown_shape_names_the_valid_ones(flat_config) -> None:
    message = _error(flat_config(gateway="sometimes"))
    assert "llmbox:gateway = 'sometimes'" in message
    assert "'none', 'local', 'dedicated' or 'auto'" in message


def test_local_refuses_several_hosts(flat_config) -> None:
    message = _error(flat_config(gateway="local", instanceCount=3, amiNameFilter=UBUNTU_24))
    assert "gateway is 'local' but instanceCount is 3" in message
    assert "set gateway: dedicated (or auto)" in message


def test_local_refuses_an_image_with_old_haproxy(flat_config) -> None:
    # The default GPU image is Ubuntu 22.04 (HAProxy 2.4): `auto` on one host is local.
    message = _error(flat_config(gateway="auto"))
    assert "gateway is 'auto' (one GPU host)" in message
    assert "'Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *'" in message
    assert "older than the 2.6" in message and "gateway: dedicated" in message


def test_local_refuses_the_engines_port(flat_config) -> None:
    message = _error(flat_config(gateway="local", amiNameFilter=UBUNTU_24, gatewayPort=8080))
    assert "gatewayPort 8080 is also inferencePort" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"gatewayPort": 22}, "llmbox:gatewayPort = 22: 22 is the SSH port"),
        ({"gatewayPort": 70000}, "llmbox:gatewayPort = 70000: Input should be less than or "),
        ({"gatewayInstanceType": "t4g.small"}, "= 't4g.small': is a Graviton (arm64)"),
        ({"gatewayInstanceType": "small"}, "= 'small': must be an EC2 instance type"),
    ],
)
def test_bad_gateway_values_name_the_key(flat_config, overrides, expected) -> None:
    assert expected in _error(flat_config(gateway="dedicated", **overrides))


def test_no_gateway_still_validates_its_port(flat_config) -> None:
    # A typo waits for nobody: the value is refused even while gateway is none.
    assert "llmbox:gatewayPort = 22" in _error(flat_config(gatewayPort=22))
