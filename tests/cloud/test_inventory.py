"""Stack outputs -> Ansible inventory: the YAML shape, bad outputs, atomic writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llmbox.cloud.inventory import InventoryError, write_atomically
from llmbox.cloud.stack_outputs import inventory_from_stack_outputs

OUTPUTS: dict[str, Any] = {
    "stack": "dev",
    "instanceIds": ["i-0aaa", "i-0bbb"],
    "publicIps": ["203.0.113.10", ""],
    "publicDns": ["ec2-a.compute-1.amazonaws.com", "ec2-b.compute-1.amazonaws.com"],
    "sshUser": "ubuntu",
    "inferencePort": 8080,
    "adminCidrs": ["203.0.113.7/32"],
    "clientCidrs": ["198.51.100.0/24", "2001:db8::/48"],
    "instanceType": "g5.xlarge",
    "market": "on-demand",
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
    # the roles' own variables: served port, host firewall, driver policy
    assert (group["vars"]["llama_cpp_port"], group["vars"]["vllm_port"]) == (8080, 8080)
    assert group["vars"]["firewall_admin_networks"] == ["203.0.113.7/32"]
    assert group["vars"]["firewall_client_networks"] == ["198.51.100.0/24", "2001:db8::/48"]
    assert group["vars"]["nvidia_driver_accept_installed"] is True


def test_api_key_is_read_from_the_stack_secret_when_the_playbook_runs() -> None:
    variables = yaml.safe_load(inventory_from_stack_outputs(OUTPUTS))["all"]["children"][
        "llm_servers"
    ]["vars"]
    lookup = "{{ lookup('ansible.builtin.pipe', llmbox_api_key_command) }}"
    assert variables["llama_cpp_api_key"] == variables["vllm_api_key"] == lookup
    assert variables["llmbox_api_key_command"] == (
        "pulumi config get apiKey --stack dev --cwd '{{ playbook_dir }}/..'"
    )


def test_inventory_text_keeps_each_value_on_one_line() -> None:
    text = inventory_from_stack_outputs(OUTPUTS)
    assert "llmbox_api_key_command: pulumi config get apiKey --stack dev --cwd " in text
    lookup = "'{{ lookup(''ansible.builtin.pipe'', llmbox_api_key_command) }}'"
    assert f"llama_cpp_api_key: {lookup}" in text


def test_empty_client_networks_are_refused_with_the_way_out() -> None:
    # The stack exports the admin networks when clientCidrs is unset; an empty list comes
    # from an older stack whose security group opened the API to nobody.
    with pytest.raises(InventoryError) as caught:
        inventory_from_stack_outputs(OUTPUTS | {"clientCidrs": []})
    message = str(caught.value)
    assert "stack output 'clientCidrs' is empty" in message
    assert "run `pulumi up` again" in message
    assert "serves the API to adminCidrs" in message


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


def test_each_host_is_recorded_as_its_instance_type_and_market() -> None:
    """benchmark.yml writes this into each run's manifest; the report prices it from it."""
    group_vars = yaml.safe_load(inventory_from_stack_outputs(OUTPUTS | {"market": "spot"}))["all"][
        "children"
    ]["llm_servers"]["vars"]
    assert group_vars["llm_benchmark_hardware"] == {"cloud": "g5.xlarge", "spot": True}
    on_demand = yaml.safe_load(inventory_from_stack_outputs(OUTPUTS))
    hardware = on_demand["all"]["children"]["llm_servers"]["vars"]["llm_benchmark_hardware"]
    assert hardware == {"cloud": "g5.xlarge", "spot": False}


def test_an_unknown_market_is_refused() -> None:
    with pytest.raises(InventoryError, match=r"'market' is 'reserved'; expected one of"):
        inventory_from_stack_outputs(OUTPUTS | {"market": "reserved"})


DEDICATED: dict[str, Any] = OUTPUTS | {
    "gateway": "dedicated",
    "gatewayPort": 8443,
    "privateIps": ["10.42.1.10", "10.42.1.11"],
    "gatewayInstanceId": "i-0ccc",
    "gatewayPublicIp": "198.51.100.200",
    "gatewayPublicDns": "ec2-198-51-100-200.compute-1.amazonaws.com",
    "gatewayPrivateIp": "10.42.1.20",
}


def test_outputs_without_a_gateway_key_have_no_gateway_group() -> None:
    """Outputs of a stack from before the gateway, and gateway none, read the same."""
    for outputs in (OUTPUTS, OUTPUTS | {"gateway": "none"}):
        children = yaml.safe_load(inventory_from_stack_outputs(outputs))["all"]["children"]
        assert list(children) == ["llm_servers"]
        assert "firewall_gateway_networks" not in children["llm_servers"]["vars"]


def test_dedicated_gateway_in_front_of_the_private_addresses() -> None:
    children = yaml.safe_load(inventory_from_stack_outputs(DEDICATED))["all"]["children"]
    gateways, servers = children["llm_gateways"], children["llm_servers"]
    assert gateways["hosts"] == {
        "dev-gateway": {
            "ansible_host": "198.51.100.200",
            "llmbox_instance_id": "i-0ccc",
            "llmbox_public_dns": "ec2-198-51-100-200.compute-1.amazonaws.com",
        }
    }
    variables = gateways["vars"]
    assert variables["gateway_mode"] == "fleet"
    assert (variables["gateway_port"], variables["gateway_backend_port"]) == (8443, 8080)
    assert variables["gateway_tls_extra_names"] == ["{{ llmbox_public_dns }}"]
    # The engines' key from the stack's secret, as on the servers; no client key here.
    assert variables["gateway_backend_api_key"] == servers["vars"]["llama_cpp_api_key"]
    assert "gateway_api_keys" not in variables
    assert variables["firewall_client_networks"] == ["198.51.100.0/24", "2001:db8::/48"]
    assert variables["ansible_user"] == "ubuntu"
    addresses = [host["gateway_backend_address"] for host in servers["hosts"].values()]
    assert addresses == ["10.42.1.10", "10.42.1.11"]
    assert servers["vars"]["firewall_gateway_networks"] == ["10.42.1.20/32"]


def test_local_gateway_is_the_serving_host_with_its_engine_on_loopback() -> None:
    local = OUTPUTS | {"instanceIds": ["i-0aaa"], "publicIps": ["203.0.113.10"],
                       "publicDns": ["ec2-a.compute-1.amazonaws.com"],
                       "gateway": "local", "gatewayPort": 443}  # fmt: skip
    children = yaml.safe_load(inventory_from_stack_outputs(local))["all"]["children"]
    assert children["llm_gateways"] == {
        "hosts": {"dev-gpu-0": {}},
        "vars": {"gateway_port": 443, "gateway_tls_extra_names": ["{{ llmbox_public_dns }}"]},
    }
    server_vars = children["llm_servers"]["vars"]
    assert (server_vars["llama_cpp_host"], server_vars["vllm_host"]) == ("127.0.0.1", "127.0.0.1")
    assert "firewall_gateway_networks" not in server_vars


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gateway": "sideways"}, r"'gateway' is 'sideways'; expected one of \('none', 'local'"),
        ({"gatewayPrivateIp": None}, r"'gateway' is 'dedicated' but gatewayPrivateIp missing"),
        ({"gatewayPort": "8443"}, r"'gatewayPort' must be a TCP port, got '8443'"),
        ({"gatewayPublicIp": ""}, r"'gatewayPublicIp' must be a non-empty string, got ''"),
        ({"privateIps": ["10.42.1.10"]}, r"privateIps \(1\) must list one address per instance"),
    ],
)
def test_bad_gateway_outputs_name_the_key(change: dict[str, Any], message: str) -> None:
    outputs = {k: v for k, v in (DEDICATED | change).items() if v is not None}
    with pytest.raises(InventoryError, match=message):
        inventory_from_stack_outputs(outputs)
