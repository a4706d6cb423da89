"""Stack outputs -> Ansible inventory: the YAML shape, bad outputs, atomic writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llmbox.cloud.inventory import (
    InventoryError,
    inventory_from_stack_outputs,
    write_atomically,
)

OUTPUTS: dict[str, Any] = {
    "stack": "dev",
    "instanceIds": ["i-0aaa", "i-0bbb"],
    "publicIps": ["203.0.113.10", ""],
    "publicDns": ["ec2-a.compute-1.amazonaws.com", "ec2-b.compute-1.amazonaws.com"],
    "sshUser": "ubuntu",
    "inferencePort": 8080,
    "adminCidrs": ["203.0.113.7/32"],
    "clientCidrs": ["198.51.100.0/24", "2001:db8::/48"],
    "estimatedUsdPerMonth": 209.2,  # extra keys are ignored
}


def test_inventory_groups_hosts_under_llm_servers() -> None:
    inventory = yaml.safe_load(inventory_from_stack_outputs(OUTPUTS))
    group = inventory["all"]["children"]["llm_servers"]
    assert group["hosts"] == {
        "dev-gpu-0": {
            "ansible_host": "203.0.113.10",
            "llmbox_instance_id": "i-0aaa",
            "llmbox_public_dns": "ec2-a.compute-1.amazonaws.com",
        },
        # no public IP (stopped): the DNS name is the address
        "dev-gpu-1": {
            "ansible_host": "ec2-b.compute-1.amazonaws.com",
            "llmbox_instance_id": "i-0bbb",
            "llmbox_public_dns": "ec2-b.compute-1.amazonaws.com",
        },
    }
    assert group["vars"]["ansible_user"] == "ubuntu"
    # the roles' own variables: served port, host firewall, API key from the environment
    assert (group["vars"]["llama_cpp_port"], group["vars"]["vllm_port"]) == (8080, 8080)
    assert group["vars"]["firewall_admin_networks"] == ["203.0.113.7/32"]
    assert group["vars"]["firewall_client_networks"] == ["198.51.100.0/24", "2001:db8::/48"]
    assert (
        group["vars"]["llama_cpp_api_key"]
        == "{{ lookup('ansible.builtin.env', 'LLMBOX_API_KEY') }}"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"publicIps": None}, r"lack publicIps"),
        ({"instanceIds": []}, r"'instanceIds' is empty"),
        ({"publicIps": ["203.0.113.10"]}, r"same number of instances"),
        ({"inferencePort": "8080"}, r"'inferencePort' must be a TCP port, got '8080'"),
        ({"sshUser": ""}, r"'sshUser' must be a non-empty string"),
        ({"publicDns": "ec2-a"}, r"'publicDns' must be a list of strings"),
        ({"clientCidrs": None}, r"lack clientCidrs"),
    ],
)
def test_bad_outputs_name_the_key(change: dict[str, Any], message: str) -> None:
    outputs = {k: v for k, v in (OUTPUTS | change).items() if v is not None}
    with pytest.raises(InventoryError, match=message):
        inventory_from_stack_outputs(outputs)


def test_not_an_object() -> None:
    with pytest.raises(InventoryError, match="must be a JSON object, got list"):
        inventory_from_stack_outputs([OUTPUTS])


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "inventories" / "cloud.yml"
    write_atomically(target, "old\n")
    write_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["cloud.yml"]
