"""Stack outputs -> the Ansible inventory that ``playbooks/site.yml`` runs on.

The Pulumi stack calls :func:`render_inventory` to export ``ansibleInventory``;
``llmbox inventory`` calls :func:`inventory_from_stack_outputs` on the JSON of
``pulumi stack output --json``, so both produce the same file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The inventory group playbooks/site.yml targets for served GPU hosts.
GROUP = "llm_servers"
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
)
# The served model's API key never passes through Pulumi outputs: the playbook reads it
# from the environment of whoever runs it (the office inventory does the same).
API_KEY_FROM_ENV = "{{ lookup('ansible.builtin.env', 'LLMBOX_API_KEY') }}"


class InventoryError(ValueError):
    """Stack outputs that cannot become an inventory; the message says which key and why."""


@dataclass(frozen=True)
class CloudHost:
    """One GPU instance as Ansible sees it."""

    name: str
    instance_id: str
    address: str
    public_dns: str


def host_names(stack: str, count: int) -> list[str]:
    return [f"{stack}-gpu-{index}" for index in range(count)]


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
) -> str:
    """The inventory as YAML: group ``llm_servers``, one host per instance.

    Group variables use the roles' own names, so the engine listens on the port the
    security group opens and the host firewall admits the same networks.
    """
    if not len(instance_ids) == len(public_ips) == len(public_dns):
        raise InventoryError(
            f"instanceIds ({len(instance_ids)}), publicIps ({len(public_ips)}) and "
            f"publicDns ({len(public_dns)}) must list the same number of instances"
        )
    hosts: dict[str, dict[str, Any]] = {}
    for name, instance_id, ip, dns in zip(
        host_names(stack, len(instance_ids)), instance_ids, public_ips, public_dns, strict=True
    ):
        hosts[name] = {
            # A stopped instance has no public IP; fall back to its DNS name.
            "ansible_host": ip or dns,
            "llmbox_instance_id": instance_id,
            "llmbox_public_dns": dns,
        }
    document = {
        "all": {
            "children": {
                GROUP: {
                    "hosts": hosts,
                    "vars": {
                        "ansible_user": ssh_user,
                        "ansible_python_interpreter": "/usr/bin/python3",
                        "llmbox_cloud_stack": stack,
                        "llama_cpp_port": inference_port,
                        "vllm_port": inference_port,
                        "llama_cpp_api_key": API_KEY_FROM_ENV,
                        "vllm_api_key": API_KEY_FROM_ENV,
                        "firewall_admin_networks": list(admin_cidrs),
                        "firewall_client_networks": list(client_cidrs),
                    },
                }
            }
        }
    }
    header = f"# Ansible inventory for Pulumi stack {stack!r}, written by llmbox.\n"
    return header + yaml.safe_dump(document, sort_keys=False)


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
    )


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
