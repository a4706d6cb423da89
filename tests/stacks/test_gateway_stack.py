"""The stack with a TLS gateway in front of its hosts, under Pulumi's mocks.

Policy on the recorded resource graph: the public HTTPS port is open only on the
gateway's security group, the engines' port only from that group (SG-to-SG) and the
admin networks; the exported ``inferenceUrl``; the inventory's ``llm_gateways``.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import yaml

from llmbox.cloud.stack_outputs import inventory_from_stack_outputs
from stacks.flat_config import config_from_flat
from stacks.program import Stack, build_stack
from stacks.tagged import TAGGABLE_TYPES
from tests.stacks.conftest import DEBIAN_AMI, DEBIAN_OWNER, MOCK_AMI, RecordingMocks

UBUNTU_24 = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) *"
GATEWAY_DNS = "ec2-198-51-100-200.compute-1.amazonaws.com"  # the mocked Elastic IP's name
REQUIRED_TAGS = {"project": "llmbox", "stack": "dev", "owner": "ml-platform",
                 "cost-center": "research-42"}  # fmt: skip
SG = "aws:ec2/securityGroup:SecurityGroup"


def _build(flat: dict[str, Any]) -> Stack:
    return build_stack(
        config_from_flat(flat, project="llmbox", stack="dev", api_key_is_secret=True)
    )


def _after_all(stack: Stack, check: Any) -> pulumi.Output[Any]:
    """``check(outputs, gateway_security_group_id)`` once every resource is registered."""
    group_id = stack.network.gateway_security_group_id or pulumi.Output.from_input("")
    return pulumi.Output.all(
        *[r.urn for r in stack.resources], pulumi.Output.from_input(stack.outputs), group_id
    ).apply(lambda values: check(values[-2], values[-1]))


def _group(mocks: RecordingMocks, name: str) -> dict[str, Any]:
    [group] = [g for g in mocks.of_type(SG) if g.name == name]
    return group.inputs


def _rules(group: dict[str, Any], port: int) -> list[dict[str, Any]]:
    return [r for r in group["ingress"] if r["fromPort"] <= port <= r["toPort"]]


def _sources(rules: list[dict[str, Any]]) -> set[str]:
    return {
        source
        for rule in rules
        for key in ("cidrBlocks", "ipv6CidrBlocks", "securityGroups")
        for source in rule.get(key, [])
    }


def _inventory(outputs: dict[str, Any]) -> dict[str, Any]:
    children: dict[str, Any] = yaml.safe_load(outputs["ansibleInventory"])["all"]["children"]
    return children


@pulumi.runtime.test
def test_dedicated_gateway_is_the_only_public_port(mocks, flat_config):
    stack = _build(flat_config(gateway="auto", instanceCount=2))

    def check(outputs: dict[str, Any], gateway_group_id: str) -> None:
        assert sorted(g.name for g in mocks.of_type(SG)) == ["dev-net-gateway", "dev-net-hosts"]
        gateway, hosts = _group(mocks, "dev-net-gateway"), _group(mocks, "dev-net-hosts")
        gateway_id = mocks.states["dev-net-gateway"]  # the mock's id is name-derived
        [gateway_sg] = ({r.name: r for r in mocks.of_type(SG)}["dev-net-gateway"].inputs,)
        del gateway_sg, gateway_id
        # The gateway's group: SSH from the admins, HTTPS from the clients, nothing else.
        assert _sources(_rules(gateway, 22)) == {"203.0.113.7/32"}
        assert _sources(_rules(gateway, 8443)) == {"198.51.100.0/24"}
        assert {r["fromPort"] for r in gateway["ingress"]} == {22, 8443}
        # The GPU hosts' group: no HTTPS port, the engine from the gateway's group and the
        # admins (never the clients), SSH from the admins.
        assert _rules(hosts, 8443) == []
        engine = _rules(hosts, 8080)
        [by_group] = [r for r in engine if r.get("securityGroups")]
        assert by_group["securityGroups"] == [gateway_group_id]
        assert "cidrBlocks" not in by_group and "ipv6CidrBlocks" not in by_group
        assert _sources([r for r in engine if r is not by_group]) == {"203.0.113.7/32"}
        assert {r["fromPort"] for r in hosts["ingress"]} == {22, 8080}
        for group in (gateway, hosts):
            for rule in group["ingress"]:
                assert not {"0.0.0.0/0", "::/0"} & _sources([rule])

    return _after_all(stack, check)


@pulumi.runtime.test
def test_dedicated_gateway_instance_and_its_address(mocks, flat_config):
    stack = _build(flat_config(gateway="dedicated", instanceCount=2, gatewayPort=443))

    def check(outputs: dict[str, Any], gateway_group_id: str) -> None:
        instances = {i.name: i.inputs for i in mocks.of_type("aws:ec2/instance:Instance")}
        assert sorted(instances) == ["dev-gateway", "dev-gpu-0", "dev-gpu-1"]
        gateway = instances["dev-gateway"]
        assert (gateway["instanceType"], gateway["ami"]) == ("t3.small", DEBIAN_AMI)
        assert gateway["vpcSecurityGroupIds"] == [gateway_group_id]
        assert gateway["metadataOptions"]["httpTokens"] == "required"
        assert gateway["rootBlockDevice"]["encrypted"] is True
        assert "useradd" in gateway["userData"]
        for name in ("dev-gpu-0", "dev-gpu-1"):
            assert instances[name]["ami"] == MOCK_AMI
            assert instances[name]["vpcSecurityGroupIds"] != gateway["vpcSecurityGroupIds"]
        # Debian's own images, looked up once, for the gateway only.
        debian = [c for c in mocks.calls if c.args.get("owners") == [DEBIAN_OWNER]]
        assert [c.args["filters"][0]["values"] for c in debian] == [["debian-12-amd64-*"]]
        # A newer Debian image never replaces the running gateway.
        assert mocks.options["dev-gateway"]["ignoreChanges"] == ["ami"]
        [address] = mocks.of_type("aws:ec2/eip:Eip")
        assert address.inputs["instance"] == outputs["gatewayInstanceId"]
        assert outputs["gateway"] == "dedicated"
        assert outputs["gatewayPort"] == 443
        assert outputs["inferenceUrl"] == f"https://{GATEWAY_DNS}:443/v1"
        # The per-host URLs are there as before.
        assert outputs["inferenceUrls"] == [f"http://{h}:8080/v1" for h in outputs["publicDns"]]
        assert len(outputs["inferenceUrls"]) == 2 and GATEWAY_DNS not in outputs["publicDns"]
        assert (
            "gateway instance (t3.small, not in the catalog)"
            in (outputs["costEstimate"]["excludes"])
        )
        taggable = [r for r in mocks.resources if r.typ in TAGGABLE_TYPES]
        for resource in taggable:
            assert REQUIRED_TAGS.items() <= resource.inputs["tags"].items(), resource.name

    return _after_all(stack, check)


@pulumi.runtime.test
def test_schedule_and_budget_stop_the_gateway_too_but_no_idle_alarm(mocks, flat_config):
    stack = _build(flat_config(gateway="dedicated", instanceCount=2))

    def check(outputs: dict[str, Any], gateway_group_id: str) -> None:
        every = [*outputs["instanceIds"], outputs["gatewayInstanceId"]]
        for schedule in mocks.of_type("aws:scheduler/schedule:Schedule"):
            assert json.loads(schedule.inputs["target"]["input"]) == {"InstanceIds": every}
        [stop] = [a for a in mocks.of_type("aws:budgets/budgetAction:BudgetAction")
                  if a.name == "dev-guard-stop"]  # fmt: skip
        assert stop.inputs["definition"]["ssmActionDefinition"]["instanceIds"] == every
        alarms = mocks.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        watched = sorted(a.inputs["dimensions"]["InstanceId"] for a in alarms)
        assert watched == sorted(outputs["instanceIds"])

    return _after_all(stack, check)


@pulumi.runtime.test
def test_dedicated_inventory_assigns_the_gateway_group(mocks, flat_config):
    stack = _build(flat_config(gateway="dedicated", instanceCount=2))

    def check(outputs: dict[str, Any], gateway_group_id: str) -> None:
        groups = _inventory(outputs)
        gateways = groups["llm_gateways"]
        assert list(gateways["hosts"]) == ["dev-gateway"]
        assert gateways["hosts"]["dev-gateway"]["ansible_host"] == outputs["gatewayPublicIp"]
        variables = gateways["vars"]
        assert (variables["gateway_mode"], variables["gateway_port"]) == ("fleet", 8443)
        assert variables["gateway_backend_port"] == 8080
        assert variables["firewall_client_networks"] == ["198.51.100.0/24"]
        servers = groups["llm_servers"]
        # The engines are reached at their private addresses, from the gateway's.
        assert [h["gateway_backend_address"] for h in servers["hosts"].values()] == (
            outputs["privateIps"]
        )
        gateway_ip = outputs["gatewayPrivateIp"]
        assert gateway_ip.startswith("10.42.1.") and gateway_ip not in outputs["privateIps"]
        assert servers["vars"]["firewall_gateway_networks"] == [f"{gateway_ip}/32"]
        assert "llama_cpp_host" not in servers["vars"]
        # `llmbox inventory` on the same outputs writes the same file.
        assert inventory_from_stack_outputs(outputs) == outputs["ansibleInventory"]

    return _after_all(stack, check)


@pulumi.runtime.test
def test_local_gateway_on_the_single_host(mocks, flat_config):
    stack = _build(flat_config(gateway="auto", amiNameFilter=UBUNTU_24, allowPublicInference=True))

    def check(outputs: dict[str, Any], gateway_group_id: str) -> None:
        [hosts] = [g.inputs for g in mocks.of_type(SG)]
        # Only HTTPS is served (to the clients and, asked for, the world); the engine
        # listens on loopback, so its port is not opened to anyone.
        assert _rules(hosts, 8080) == []
        assert _sources(_rules(hosts, 8443)) == {"198.51.100.0/24", "0.0.0.0/0", "::/0"}
        assert _sources(_rules(hosts, 22)) == {"203.0.113.7/32"}
        assert not mocks.of_type("aws:ec2/eip:Eip")
        assert len(mocks.of_type("aws:ec2/instance:Instance")) == 1
        assert outputs["gateway"] == "local"
        assert outputs["inferenceUrl"] == "https://ec2-203-0-113-10.compute-1.amazonaws.com:8443/v1"
        groups = _inventory(outputs)
        assert list(groups["llm_gateways"]["hosts"]) == ["dev-gpu-0"]
        assert groups["llm_gateways"]["vars"]["gateway_port"] == 8443
        server_vars = groups["llm_servers"]["vars"]
        assert (server_vars["llama_cpp_host"], server_vars["vllm_host"]) == ("127.0.0.1",) * 2
        assert inventory_from_stack_outputs(outputs) == outputs["ansibleInventory"]

    return _after_all(stack, check)


@pulumi.runtime.test
def test_no_gateway_keeps_the_stack_as_it_was(mocks, flat_config):
    stack = _build(flat_config(instanceCount=2))

    def check(outputs: dict[str, Any], gateway_group_id: str) -> None:
        assert [g.name for g in mocks.of_type(SG)] == ["dev-net-hosts"]
        assert not mocks.of_type("aws:ec2/eip:Eip")
        assert outputs["gateway"] == "none"
        assert "inferenceUrl" not in outputs and "gatewayPort" not in outputs
        assert "llm_gateways" not in _inventory(outputs)

    return _after_all(stack, check)
