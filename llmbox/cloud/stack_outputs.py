"""``pulumi stack output --json`` -> the arguments of :func:`render_inventory`, checked.

Each key the inventory needs is checked for presence and type, and a bad one is named
with what was expected, before any file is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmbox.cloud.inventory import CloudGateway, InventoryError, render_inventory

# Stack output keys the inventory is built from (see stacks/program.py).
REQUIRED_OUTPUTS = (
    "stack",
    "instanceIds",
    "publicIps",
    "publicDns",
    "sshUser",
    "inferencePort",
    "adminCidrs",
    "clientCidrs",
    "instanceType",
    "market",
)
MARKETS = ("on-demand", "spot")
# Where the stack puts the gateway (stacks.gateway_config.GatewayShape; the stack's
# "auto" is exported resolved). Outputs of a stack from before the gateway have no
# "gateway" key: that is "none".
GATEWAY_SHAPES = ("none", "local", "dedicated")


def _string_list(outputs: Mapping[str, Any], key: str) -> list[str]:
    value = outputs[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InventoryError(f"stack output {key!r} must be a list of strings, got {value!r}")
    return value


def inventory_from_stack_outputs(outputs: Any) -> str:
    """Build the inventory from the parsed JSON of ``pulumi stack output --json``."""
    if not isinstance(outputs, dict):
        raise InventoryError(f"stack outputs must be a JSON object, got {type(outputs).__name__}")
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        raise InventoryError(
            f"stack outputs lack {', '.join(missing)}; expected the keys "
            f"{', '.join(REQUIRED_OUTPUTS)} (is this `pulumi stack output --json` of an "
            "llmbox stack?)"
        )
    stack, ssh_user, port = outputs["stack"], outputs["sshUser"], outputs["inferencePort"]
    if not isinstance(stack, str) or not stack:
        raise InventoryError(f"stack output 'stack' must be a non-empty string, got {stack!r}")
    if not isinstance(ssh_user, str) or not ssh_user:
        raise InventoryError(f"stack output 'sshUser' must be a non-empty string, got {ssh_user!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InventoryError(f"stack output 'inferencePort' must be a TCP port, got {port!r}")
    instance_type, market = outputs["instanceType"], outputs["market"]
    if not isinstance(instance_type, str) or not instance_type:
        raise InventoryError(f"stack output 'instanceType' must be a string, got {instance_type!r}")
    if market not in MARKETS:
        raise InventoryError(f"stack output 'market' is {market!r}; expected one of {MARKETS}")
    ids = _string_list(outputs, "instanceIds")
    if not ids:
        raise InventoryError("stack output 'instanceIds' is empty: the stack has no instances")
    return render_inventory(
        stack=stack,
        instance_ids=ids,
        public_ips=_string_list(outputs, "publicIps"),
        public_dns=_string_list(outputs, "publicDns"),
        ssh_user=ssh_user,
        inference_port=port,
        admin_cidrs=_string_list(outputs, "adminCidrs"),
        client_cidrs=_string_list(outputs, "clientCidrs"),
        instance_type=instance_type,
        spot=market == "spot",
        private_ips=_string_list(outputs, "privateIps") if "privateIps" in outputs else (),
        gateway=gateway_from_outputs(outputs),
    )


def gateway_from_outputs(outputs: Mapping[str, Any]) -> CloudGateway | None:
    """The gateway in the stack's outputs, or None (no ``gateway`` key: an older stack).

    The stack itself builds its ``ansibleInventory`` through this too, so the exported
    file and ``llmbox inventory``'s agree byte for byte.
    """
    shape = outputs.get("gateway", "none")
    if shape not in GATEWAY_SHAPES:
        raise InventoryError(
            f"stack output 'gateway' is {shape!r}; expected one of {GATEWAY_SHAPES}"
        )
    if shape == "none":
        return None
    needed = ["gatewayPort"] + (
        [
            "privateIps",
            "gatewayInstanceId",
            "gatewayPublicIp",
            "gatewayPublicDns",
            "gatewayPrivateIp",
        ]
        if shape == "dedicated"
        else []
    )
    missing = [key for key in needed if key not in outputs]
    if missing:
        raise InventoryError(
            f"stack output 'gateway' is {shape!r} but {', '.join(missing)} missing"
        )
    port = outputs["gatewayPort"]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InventoryError(f"stack output 'gatewayPort' must be a TCP port, got {port!r}")
    if shape == "local":
        return CloudGateway(shape=shape, port=port)
    fields = {}
    for key in needed[2:]:
        value = outputs[key]
        if not isinstance(value, str) or not value:
            raise InventoryError(f"stack output {key!r} must be a non-empty string, got {value!r}")
        fields[key] = value
    return CloudGateway(
        shape=shape,
        port=port,
        instance_id=fields["gatewayInstanceId"],
        public_ip=fields["gatewayPublicIp"],
        public_dns=fields["gatewayPublicDns"],
        private_ip=fields["gatewayPrivateIp"],
    )
