"""`llmbox inventory` and `llmbox cloud check` through click's CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from moto import mock_aws

from llmbox.cli import main

OUTPUTS = {
    "stack": "prod",
    "instanceIds": ["i-0aaa"],
    "publicIps": ["203.0.113.10"],
    "publicDns": ["ec2-a.compute-1.amazonaws.com"],
    "sshUser": "ubuntu",
    "inferencePort": 8080,
    "adminCidrs": ["203.0.113.7/32"],
    "clientCidrs": ["198.51.100.0/24", "2001:db8::/48"],
    "instanceType": "g5.xlarge",
    "market": "on-demand",
}


def test_inventory_from_stdin_writes_file(tmp_path: Path) -> None:
    out = tmp_path / "cloud.yml"
    result = CliRunner().invoke(main, ["inventory", "--out", str(out)], input=json.dumps(OUTPUTS))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "1 hosts" in result.output
    hosts = yaml.safe_load(out.read_text())["all"]["children"]["llm_servers"]["hosts"]
    assert hosts["prod-gpu-0"]["ansible_host"] == "203.0.113.10"


def _listed_by_ansible(inventory: Path) -> dict[str, Any]:
    """The inventory as real ``ansible-inventory --list`` reads it (unparsable fails)."""
    ansible_inventory = Path(sys.executable).with_name("ansible-inventory")
    listed = subprocess.run(
        [str(ansible_inventory), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"},
    )
    parsed: dict[str, Any] = json.loads(listed.stdout)
    return parsed


def test_written_inventory_is_what_ansible_reads(tmp_path: Path) -> None:
    out = tmp_path / "cloud.yml"
    result = CliRunner().invoke(main, ["inventory", "--out", str(out)], input=json.dumps(OUTPUTS))
    assert result.exit_code == 0, result.output
    parsed = _listed_by_ansible(out)
    assert parsed["llm_servers"]["hosts"] == ["prod-gpu-0"]
    host = parsed["_meta"]["hostvars"]["prod-gpu-0"]
    assert (host["ansible_host"], host["ansible_user"]) == ("203.0.113.10", "ubuntu")


def test_inventory_from_saved_file_to_stdout(tmp_path: Path) -> None:
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(OUTPUTS))
    result = CliRunner().invoke(main, ["inventory", str(saved), "--out", "-"])
    assert result.exit_code == 0, result.output
    variables = yaml.safe_load(result.output)["all"]["children"]["llm_servers"]["vars"]
    assert variables["ansible_user"] == "ubuntu"
    assert variables["llmbox_cloud_stack"] == "prod"
    assert variables["llama_cpp_port"] == 8080


def test_inventory_malformed_json_keeps_old_file(tmp_path: Path) -> None:
    out = tmp_path / "cloud.yml"
    out.write_text("previous inventory\n")
    result = CliRunner().invoke(main, ["inventory", "--out", str(out)], input="{not json")
    assert result.exit_code == 1
    assert "is not JSON" in result.output
    assert out.read_text() == "previous inventory\n"


def test_inventory_missing_keys(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["inventory", "--out", str(tmp_path / "x.yml")], input=json.dumps({"stack": "dev"})
    )
    assert result.exit_code == 1
    assert (
        "lack instanceIds, publicIps, publicDns, sshUser, inferencePort, adminCidrs, clientCidrs"
        in result.output
    )
    assert not (tmp_path / "x.yml").exists()


def test_inventory_missing_input_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["inventory", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "nope.json': No such file or directory" in result.output


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def test_cloud_check_prints_gpu_and_spot_table(aws: None) -> None:
    result = CliRunner().invoke(
        main, ["cloud", "check", "--instance-type", "g5.xlarge", "--region", "us-east-1", "--spot"]
    )
    assert result.exit_code == 0, result.output
    assert "1x NVIDIA A10G" in result.output
    assert "offered in: us-east-1a" in result.output
    assert "latest Linux spot price" in result.output
    # the catalog's figures, labelled as such, beside AWS's answer
    assert "catalog (us-east-1): on-demand 1.006 USD/h, spot 0.397-0.418 USD/h" in result.output


def test_cloud_check_not_offered_fails(aws: None) -> None:
    result = CliRunner().invoke(main, ["cloud", "check", "-t", "g6e.xlarge", "-r", "us-west-1"])
    assert result.exit_code == 1
    assert "Error: 'g6e.xlarge' is not offered in us-west-1" in result.output


@pytest.mark.parametrize("command", [["cloud"], ["cloud", "check"], ["inventory"]])
def test_every_command_has_help_text(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    summary = result.output.split("\n\n")[1].strip()
    assert len(summary) > 20, f"{command} lacks help text"


def test_gateway_inventory_is_what_ansible_reads(tmp_path: Path) -> None:
    outputs = OUTPUTS | {
        "instanceIds": ["i-0aaa", "i-0bbb"],
        "publicIps": ["203.0.113.10", "203.0.113.11"],
        "publicDns": ["ec2-a.compute-1.amazonaws.com", "ec2-b.compute-1.amazonaws.com"],
        "privateIps": ["10.42.1.10", "10.42.1.11"],
        "gateway": "dedicated",
        "gatewayPort": 8443,
        "gatewayInstanceId": "i-0ccc",
        "gatewayPublicIp": "198.51.100.200",
        "gatewayPublicDns": "ec2-198-51-100-200.compute-1.amazonaws.com",
        "gatewayPrivateIp": "10.42.1.20",
    }
    out = tmp_path / "cloud.yml"
    result = CliRunner().invoke(main, ["inventory", "--out", str(out)], input=json.dumps(outputs))
    assert result.exit_code == 0, result.output
    assert "(2 hosts in group llm_servers, 1 hosts in group llm_gateways)" in result.output
    parsed = _listed_by_ansible(out)
    assert parsed["llm_servers"]["hosts"] == ["prod-gpu-0", "prod-gpu-1"]
    assert parsed["llm_gateways"]["hosts"] == ["prod-gateway"]
    hostvars = parsed["_meta"]["hostvars"]
    gateway = hostvars["prod-gateway"]
    assert (gateway["ansible_host"], gateway["gateway_mode"]) == ("198.51.100.200", "fleet")
    assert "llama_cpp_port" not in gateway  # the gateway serves no engine
    server = hostvars["prod-gpu-1"]
    assert server["gateway_backend_address"] == "10.42.1.11"
    assert server["firewall_gateway_networks"] == ["10.42.1.20/32"]
    assert "gateway_mode" not in server
