"""The stack: network -> servers -> guardrails, and what it exports.

``__main__.py`` (``pulumi up``) and the unit tests both call :func:`build_stack`
with a validated :class:`~stacks.config.StackConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from llmbox.cloud.inventory import render_inventory
from llmbox.cloud.stack_outputs import gateway_from_outputs
from stacks.config import StackConfig, StackConfigError
from stacks.flat_config import CONFIG_TYPES, config_from_flat
from stacks.gateway import GatewayHost
from stacks.gateway_config import GatewayShape
from stacks.guardrails import Guardrails
from stacks.network import GpuNetwork
from stacks.servers import GpuServers

# Shortest API key the serving roles accept (llama_cpp/vllm preflight).
MIN_API_KEY_LENGTH = 16


@dataclass(frozen=True)
class Stack:
    """The components of one stack and the outputs it exports."""

    network: GpuNetwork
    servers: GpuServers
    guardrails: Guardrails
    outputs: dict[str, Any]
    gateway: GatewayHost | None = None

    @property
    def resources(self) -> list[pulumi.CustomResource]:
        """Every resource the components created (tests wait on their URNs)."""
        gateway = [] if self.gateway is None else self.gateway.resources
        return [
            *self.network.resources,
            *self.servers.resources,
            *gateway,
            *self.guardrails.resources,
        ]


def cost_outputs(config: StackConfig) -> dict[str, Any]:
    """The catalog-based estimate, labelled as such, for the configured schedule."""
    estimate = config.estimate()
    return {
        "estimatedUsdPerHour": round(estimate.usd_per_hour, 4),
        "estimatedUsdPerMonth": round(estimate.usd_per_month, 2),
        "costEstimate": {
            "kind": "estimate: catalogued $/h x count x scheduled hours (not measured, not billed)",
            "instanceType": estimate.instance_type,
            "gpu": f"{estimate.gpu_count}x {estimate.gpu} ({estimate.vram_gb:g} GB)",
            "count": estimate.count,
            "market": "spot" if config.servers.spot else "on-demand",
            "hoursPerDay": config.hours_per_day,
            "daysPerMonth": round(config.days_per_month, 4),
            "hoursPerMonth": round(estimate.hours_per_month, 2),
            "usdPerHourLow": round(estimate.usd_per_hour_low, 4),
            "usdPerMonthLow": round(estimate.usd_per_month_low, 2),
            "priceBasis": estimate.price_basis,
            "source": estimate.source,
            "asOf": estimate.as_of,
            "excludes": "EBS storage, data transfer, public IPv4 addresses"
            + (
                # The catalog prices GPU offers only; no figure is better than a made-up one.
                f", the gateway instance ({config.gateway.instance_type}, not in the catalog)"
                if config.gateway_shape is GatewayShape.DEDICATED
                else ""
            ),
        },
    }


def build_stack(config: StackConfig, provider: aws.Provider | None = None) -> Stack:
    """Create every resource for ``config``; returns the components and outputs."""
    if provider is None:
        provider = aws.Provider("aws", region=config.region)
    opts = pulumi.ResourceOptions(providers=[provider])
    name = config.tags.stack
    shape = config.gateway_shape
    network = GpuNetwork(f"{name}-net", config.network, shape, config.gateway.port, opts)
    servers = GpuServers(f"{name}-gpu", config.servers, network, opts)
    gateway = None
    if shape is GatewayShape.DEDICATED:
        gateway = GatewayHost(
            f"{name}-gateway",
            config.gateway,
            login=config.servers,
            network=network,
            servers=servers,
            opts=opts,
        )
    guardrails = Guardrails(f"{name}-guard", config.guardrails, servers, opts, gateway=gateway)

    costs = cost_outputs(config)
    if costs["estimatedUsdPerMonth"] > config.guardrails.budget_usd:
        pulumi.log.warn(
            f"estimated ${costs['estimatedUsdPerMonth']:.2f}/month exceeds the "
            f"${config.guardrails.budget_usd:.2f} budget (budgetUsd)"
        )
    port = config.network.inference_port
    gateway_outputs = _gateway_outputs(config, servers, gateway)
    inventory = pulumi.Output.all(
        servers.instance_ids,
        servers.public_ips,
        servers.public_dns,
        servers.private_ips,
        pulumi.Output.from_input(gateway_outputs),
    ).apply(
        lambda values: render_inventory(
            stack=name,
            instance_ids=values[0],
            public_ips=values[1],
            public_dns=values[2],
            ssh_user=config.servers.ssh_user,
            inference_port=port,
            admin_cidrs=config.network.admin_cidrs,
            client_cidrs=config.network.inference_sources,
            instance_type=config.servers.instance_type,
            spot=config.servers.spot,
            private_ips=values[3],
            gateway=gateway_from_outputs(values[4] | {"privateIps": values[3]}),
        )
    )
    outputs: dict[str, Any] = {
        "stack": name,
        "region": config.region,
        "instanceType": config.servers.instance_type,
        "market": "spot" if config.servers.spot else "on-demand",
        "instanceIds": servers.instance_ids,
        "publicIps": servers.public_ips,
        "publicDns": servers.public_dns,
        # The image the hosts run (kept across routine runs), and the one a host created
        # now would get: `pulumi config set amiId <latestAmiId>` is how to move to it.
        "amiId": servers.ami_ids.apply(lambda amis: amis[0]),
        "amiIds": servers.ami_ids,
        "latestAmiId": servers.ami_id,
        "sshUser": config.servers.ssh_user,
        "inferencePort": port,
        "adminCidrs": list(config.network.admin_cidrs),
        "clientCidrs": list(config.network.inference_sources),
        "inferenceUrls": servers.public_dns.apply(
            lambda hosts: [f"http://{host}:{port}/v1" for host in hosts]
        ),
        "privateIps": servers.private_ips,
        **gateway_outputs,
        "ansibleInventory": inventory,
        "budgetName": guardrails.budget_name,
        **costs,
    }
    return Stack(
        network=network, servers=servers, guardrails=guardrails, outputs=outputs, gateway=gateway
    )


def _gateway_outputs(
    config: StackConfig, servers: GpuServers, gateway: GatewayHost | None
) -> dict[str, Any]:
    """``gateway`` (the resolved shape) and, with one, its port and ``inferenceUrl``.

    ``inferenceUrl`` is the one address clients use: the gateway's HTTPS port on the
    gateway instance's Elastic IP name, or on the single GPU host in the local shape.
    """
    shape, port = config.gateway_shape, config.gateway.port
    if shape is GatewayShape.NONE:
        return {"gateway": shape.value}
    if gateway is None:  # local: the single GPU host is the gateway
        host: pulumi.Output[str] = servers.public_dns.apply(lambda names: names[0])
        extra: dict[str, Any] = {}
    else:
        host = gateway.public_dns
        extra = {
            "gatewayInstanceId": gateway.instance_id,
            "gatewayPublicIp": gateway.public_ip,
            "gatewayPublicDns": gateway.public_dns,
            "gatewayPrivateIp": gateway.private_ip,
        }
    return {
        "gateway": shape.value,
        "gatewayPort": port,
        "inferenceUrl": host.apply(lambda name: f"https://{name}:{port}/v1"),
        **extra,
    }


def load_config() -> StackConfig:
    """Read ``<project>:*`` from the running stack's config and validate it."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    config = pulumi.Config()
    getters: dict[str, Callable[[str], Any]] = {
        "string": config.get,
        "integer": config.get_int,
        "boolean": config.get_bool,
        "array": config.get_object,
    }
    raw: dict[str, Any] = {}
    for key, kind in CONFIG_TYPES.items():
        value = getters[kind](key)
        if value is not None:
            raw[key] = value
    # Read the raw value only to learn whether one is set; it never leaves this function.
    api_key_set = bool(pulumi.runtime.get_config(f"{project}:apiKey"))
    api_key_is_secret = api_key_set and pulumi.runtime.is_config_secret(f"{project}:apiKey")
    if api_key_set and not api_key_is_secret:
        raise StackConfigError(
            f"{project}:apiKey is stored in plain text; set it with "
            "`pulumi config set --secret apiKey <key>`"
        )
    api_key = pulumi.runtime.get_config(f"{project}:apiKey") or ""
    if api_key_set and len(api_key.strip()) < MIN_API_KEY_LENGTH:
        # The serving roles refuse a shorter key; say so now, without showing the key.
        raise StackConfigError(
            f"{project}:apiKey is shorter than {MIN_API_KEY_LENGTH} characters (its value is "
            'not shown); set a longer one: `pulumi config set --secret apiKey "$(openssl rand '
            '-hex 24)"`'
        )
    return config_from_flat(raw, project=project, stack=stack, api_key_is_secret=api_key_is_secret)
