"""Stack outputs -> the Ansible inventory that ``playbooks/site.yml`` runs on.

The Pulumi stack calls :func:`render_inventory` to export ``ansibleInventory``;
``llmbox inventory`` calls it through
:func:`llmbox.cloud.stack_outputs.inventory_from_stack_outputs` on the JSON of
``pulumi stack output --json``, so both produce the same file.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The inventory group playbooks/site.yml targets for served GPU hosts.
GROUP = "llm_servers"
# The group playbooks/gateway.yml puts the TLS gateway (roles/gateway) on.
GATEWAY_GROUP = "llm_gateways"
# The served model's API key has one source of truth: the stack's secret config value
# `apiKey` (`pulumi config set --secret apiKey ...`; the stack refuses to run without it).
# It never passes through stack outputs or this file: the inventory holds only the command
# that reads it, and Ansible runs that command on the controller (a `pipe` lookup) each
# time a role needs the key, so the key exists only in the playbook's memory. The command
# is its own variable so a controller without the Pulumi CLI on PATH, or a Pulumi Cloud
# stack named org/stack, can override it (`-e llmbox_api_key_command=...`).
API_KEY_VARIABLE = "llmbox_api_key_command"
API_KEY_LOOKUP = f"{{{{ lookup('ansible.builtin.pipe', {API_KEY_VARIABLE}) }}}}"


def api_key_command(stack: str) -> str:
    """The controller-side command that prints the stack's secret ``apiKey``.

    ``--cwd`` points at the Pulumi project (the repo root, one up from ``playbooks/``),
    so the playbook finds it whatever directory it is started from.
    """
    project = "'{{ playbook_dir }}/..'"
    return f"pulumi config get apiKey --stack {shlex.quote(stack)} --cwd {project}"


class InventoryError(ValueError):
    """Stack outputs that cannot become an inventory; the message says which key and why."""


@dataclass(frozen=True)
class CloudHost:
    """One GPU instance as Ansible sees it."""

    name: str
    instance_id: str
    address: str
    public_dns: str


@dataclass(frozen=True)
class CloudGateway:
    """Where the stack put the TLS gateway and on which port it listens.

    ``local``: on the single GPU host (no instance of its own, the other fields empty);
    ``dedicated``: on its own instance, reached by the engines at ``private_ip``.
    """

    shape: str
    port: int
    instance_id: str = ""
    public_ip: str = ""
    public_dns: str = ""
    private_ip: str = ""


def host_names(stack: str, count: int) -> list[str]:
    return [f"{stack}-gpu-{index}" for index in range(count)]


def gateway_host_name(stack: str) -> str:
    return f"{stack}-gateway"


def _gateway_group(
    *,
    stack: str,
    gateway: CloudGateway,
    server_names: list[str],
    shared: dict[str, Any],
    inference_port: int,
) -> dict[str, Any]:
    """The ``llm_gateways`` group: the single GPU host itself, or the gateway instance.

    Client keys (``gateway_api_keys`` / ``gateway_api_keys_file``) are not here: they
    belong in ansible-vault or the environment (roles/gateway/README.md), and the role's
    preflight names them when they are missing.
    """
    variables: dict[str, Any] = {
        "gateway_port": gateway.port,
        # The certificate also names the public DNS name clients use (inferenceUrl).
        "gateway_tls_extra_names": ["{{ llmbox_public_dns }}"],
    }
    if gateway.shape == "local":
        return {"hosts": {name: {} for name in server_names}, "vars": variables}
    host = {
        "ansible_host": gateway.public_ip or gateway.public_dns,
        "llmbox_instance_id": gateway.instance_id,
        "llmbox_public_dns": gateway.public_dns,
    }
    variables |= shared | {
        "gateway_mode": "fleet",
        "gateway_backend_port": inference_port,
        # The engines' key, read from the stack's secret like the servers' own.
        "gateway_backend_api_key": API_KEY_LOOKUP,
    }
    return {"hosts": {gateway_host_name(stack): host}, "vars": variables}


def render_inventory(
    *,
    stack: str,
    instance_ids: Sequence[str],
    public_ips: Sequence[str],
    public_dns: Sequence[str],
    ssh_user: str,
    inference_port: int,
    admin_cidrs: Sequence[str],
    client_cidrs: Sequence[str],
    instance_type: str,
    spot: bool,
    private_ips: Sequence[str] = (),
    gateway: CloudGateway | None = None,
) -> str:
    """The inventory as YAML: group ``llm_servers``, one host per instance.

    With a gateway, group ``llm_gateways`` too: in the local shape the GPU host itself
    (its engine bound to loopback), in the dedicated shape the gateway instance, which
    reaches each engine at its private address (``gateway_backend_address``), the one
    the security group's gateway rule and the hosts' firewall admit.

    Group variables use the roles' own names, so the engine listens on the port the
    security group opens and the host firewall admits the same networks, and
    ``playbooks/benchmark.yml`` records each host as the instance type and market it is
    rented at (the report prices its measured figures from the catalog with that).
    """
    if not client_cidrs:
        # The stack never exports an empty list (no clientCidrs means "serve the admin
        # networks", see stacks.config.NetworkConfig.inference_sources); an empty one is
        # from an older stack whose security group opens the API to nobody. Writing a
        # firewall for it would disagree with that security group (and the firewall role
        # refuses an empty client list), so say how to get matching outputs instead.
        raise InventoryError(
            "stack output 'clientCidrs' is empty: run `pulumi up` again with this llmbox "
            "version (without clientCidrs the stack serves the API to adminCidrs) and "
            "pass the new `pulumi stack output --json`"
        )
    if not len(instance_ids) == len(public_ips) == len(public_dns):
        raise InventoryError(
            f"instanceIds ({len(instance_ids)}), publicIps ({len(public_ips)}) and "
            f"publicDns ({len(public_dns)}) must list the same number of instances"
        )
    shape = "none" if gateway is None else gateway.shape
    if shape == "dedicated" and len(private_ips) != len(instance_ids):
        raise InventoryError(
            f"privateIps ({len(private_ips)}) must list one address per instance "
            f"({len(instance_ids)}): the gateway reaches the engines there"
        )
    hosts: dict[str, dict[str, Any]] = {}
    for index, (name, instance_id, ip, dns) in enumerate(
        zip(host_names(stack, len(instance_ids)), instance_ids, public_ips, public_dns, strict=True)
    ):
        hosts[name] = {
            # A stopped instance has no public IP; fall back to its DNS name.
            "ansible_host": ip or dns,
            "llmbox_instance_id": instance_id,
            "llmbox_public_dns": dns,
        }
        if shape == "dedicated":
            hosts[name]["gateway_backend_address"] = private_ips[index]
    shared = {
        "ansible_user": ssh_user,
        "ansible_python_interpreter": "/usr/bin/python3",
        "llmbox_cloud_stack": stack,
        API_KEY_VARIABLE: api_key_command(stack),
        "firewall_admin_networks": list(admin_cidrs),
        "firewall_client_networks": list(client_cidrs),
    }
    server_vars: dict[str, Any] = shared | {
        "llama_cpp_port": inference_port,
        "vllm_port": inference_port,
        "llama_cpp_api_key": API_KEY_LOOKUP,
        "vllm_api_key": API_KEY_LOOKUP,
        # The default AMI (Amazon's deep-learning base image) ships its own NVIDIA driver
        # whose branch moves with each image release (AWS's DLAMI release notes: 580.105.08
        # in Dec 2025/Jan 2026, 595.x from Apr 2026): keep a working one instead of
        # stopping on the pinned branch, and never install driver packages over it. What
        # was checked and how: roles/nvidia_driver/README.md.
        "nvidia_driver_accept_installed": True,
        "llm_benchmark_hardware": {"cloud": instance_type, "spot": spot},
    }
    if shape == "local":
        # Only the gateway on the same host reaches the engine.
        server_vars |= {"llama_cpp_host": "127.0.0.1", "vllm_host": "127.0.0.1"}
    elif shape == "dedicated" and gateway is not None:
        # The engines' port admits the gateway's private address (and the admin networks).
        server_vars["firewall_gateway_networks"] = [f"{gateway.private_ip}/32"]
    groups: dict[str, Any] = {GROUP: {"hosts": hosts, "vars": server_vars}}
    if gateway is not None and shape != "none":
        groups[GATEWAY_GROUP] = _gateway_group(
            stack=stack,
            gateway=gateway,
            server_names=list(hosts),
            shared=shared,
            inference_port=inference_port,
        )
    document = {"all": {"children": groups}}
    header = f"# Ansible inventory for Pulumi stack {stack!r}, written by llmbox.\n"
    # width: keep each value on one line, as a person would write it.
    return header + yaml.safe_dump(document, sort_keys=False, width=1000)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory + os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp_name).replace(path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
