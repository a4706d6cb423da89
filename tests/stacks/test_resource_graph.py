"""Policy assertions on the resource graph the stack builds, under Pulumi's mocks.

Each test builds the stack for one config, waits on every resource's URN (so every
registration reached the mocks) and checks the recorded inputs inside the apply.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
import yaml

from stacks.config import StackConfig
from stacks.flat_config import config_from_flat
from stacks.program import Stack, build_stack
from stacks.tagged import TAGGABLE_TYPES
from tests.stacks.conftest import MOCK_AMI, NEWER_AMI, RecordingMocks, use_mocks

REQUIRED_TAGS = {"project": "llmbox", "stack": "dev", "owner": "ml-platform",
                 "cost-center": "research-42"}  # fmt: skip


def _config(flat: dict[str, Any], api_key_is_secret: bool = True) -> StackConfig:
    return config_from_flat(
        flat, project="llmbox", stack="dev", api_key_is_secret=api_key_is_secret
    )


def _after_all(stack: Stack, check: Any) -> pulumi.Output[Any]:
    """Run ``check`` once every resource is registered and every output resolved."""
    return pulumi.Output.all(
        *[r.urn for r in stack.resources], pulumi.Output.from_input(stack.outputs)
    ).apply(lambda values: check(values[-1]))


def _ingress_on(mocks: Any, port: int) -> list[dict[str, Any]]:
    [group] = mocks.of_type("aws:ec2/securityGroup:SecurityGroup")
    return [r for r in group.inputs["ingress"] if r["fromPort"] <= port <= r["toPort"]]


@pulumi.runtime.test
def test_ssh_only_from_admins_and_inference_only_from_clients(mocks, flat_config):
    stack = build_stack(_config(flat_config(clientCidrs=["198.51.100.0/24", "2001:db8::/48"])))

    def check(_outputs: dict[str, Any]) -> None:
        ssh = _ingress_on(mocks, 22)
        assert [r.get("cidrBlocks") for r in ssh] == [["203.0.113.7/32"]]
        assert all(not r.get("ipv6CidrBlocks") for r in ssh)
        api = _ingress_on(mocks, 8080)
        assert sorted(str(r.get("cidrBlocks") or r.get("ipv6CidrBlocks")) for r in api) == [
            "['198.51.100.0/24']",
            "['2001:db8::/48']",
        ]
        [group] = mocks.of_type("aws:ec2/securityGroup:SecurityGroup")
        for rule in group.inputs["ingress"]:
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", [])
            assert "::/0" not in rule.get("ipv6CidrBlocks", [])

    return _after_all(stack, check)


@pulumi.runtime.test
def test_no_client_networks_open_the_api_to_the_admins_only(mocks, flat_config):
    stack = build_stack(_config(flat_config(clientCidrs=None)))

    def check(outputs: dict[str, Any]) -> None:
        # Security group, exported clientCidrs and the host firewall agree: admins only.
        assert [r["cidrBlocks"] for r in _ingress_on(mocks, 8080)] == [["203.0.113.7/32"]]
        assert outputs["clientCidrs"] == ["203.0.113.7/32"]
        inventory = yaml.safe_load(outputs["ansibleInventory"])
        variables = inventory["all"]["children"]["llm_servers"]["vars"]
        assert variables["firewall_client_networks"] == ["203.0.113.7/32"]
        assert variables["firewall_admin_networks"] == ["203.0.113.7/32"]

    return _after_all(stack, check)


@pulumi.runtime.test
def test_public_inference_opens_only_the_api_port_when_keyed(mocks, flat_config):
    config = _config(flat_config(allowPublicInference=True, inferencePort=8443), True)
    stack = build_stack(config)

    def check(outputs: dict[str, Any]) -> None:
        assert {c for r in _ingress_on(mocks, 8443) for c in r.get("cidrBlocks", [])} == {
            "198.51.100.0/24",
            "0.0.0.0/0",
        }
        assert {c for r in _ingress_on(mocks, 8443) for c in r.get("ipv6CidrBlocks", [])} == {
            "::/0"
        }
        assert [r["cidrBlocks"] for r in _ingress_on(mocks, 22)] == [["203.0.113.7/32"]]
        assert outputs["inferenceUrls"] == [
            "http://ec2-203-0-113-10.compute-1.amazonaws.com:8443/v1"
        ]

    return _after_all(stack, check)


@pulumi.runtime.test
def test_on_demand_hosts_imdsv2_encrypted_gp3_no_spot(mocks, flat_config):
    stack = build_stack(_config(flat_config(instanceCount=2, rootVolumeGb=300)))

    def check(_outputs: dict[str, Any]) -> None:
        instances = mocks.of_type("aws:ec2/instance:Instance")
        assert len(instances) == 2
        for instance in instances:
            inputs = instance.inputs
            assert inputs["metadataOptions"]["httpTokens"] == "required"
            root = inputs["rootBlockDevice"]
            assert (root["volumeType"], root["volumeSize"], root["encrypted"]) == ("gp3", 300, True)
            assert root["deleteOnTermination"] is True
            assert "instanceMarketOptions" not in inputs
            assert inputs["instanceType"] == "g5.xlarge"
            assert inputs["ami"] == "ami-0f1e2d3c4b5a69788"
            assert "useradd" in inputs["userData"] and "python3" in inputs["userData"]

    return _after_all(stack, check)


@pulumi.runtime.test
def test_spot_market_with_max_price(mocks, flat_config):
    stack = build_stack(_config(flat_config(spot=True, spotMaxPrice="0.45")))

    def check(_outputs: dict[str, Any]) -> None:
        [instance] = mocks.of_type("aws:ec2/instance:Instance")
        market = instance.inputs["instanceMarketOptions"]
        assert market["marketType"] == "spot"
        assert market["spotOptions"] == {
            "maxPrice": "0.45",
            "spotInstanceType": "persistent",
            "instanceInterruptionBehavior": "stop",
        }

    return _after_all(stack, check)


@pulumi.runtime.test
def test_ami_looked_up_from_amazon_deep_learning_images(mocks, flat_config):
    stack = build_stack(_config(flat_config(instanceCount=2)))

    def check(outputs: dict[str, Any]) -> None:
        [lookup] = [c for c in mocks.calls if c.token == "aws:ec2/getAmi:getAmi"]
        assert lookup.args["owners"] == ["amazon"]
        assert lookup.args["mostRecent"] is True
        filters = {f["name"]: f["values"] for f in lookup.args["filters"]}
        assert filters["name"] == ["Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"]
        assert outputs["amiId"] == MOCK_AMI
        assert outputs["amiIds"] == [MOCK_AMI, MOCK_AMI]
        assert outputs["latestAmiId"] == MOCK_AMI
        # The looked-up image is pinned per host: the engine keeps `ami` from the state.
        for instance in mocks.of_type("aws:ec2/instance:Instance"):
            assert mocks.options[instance.name]["ignoreChanges"] == ["ami"]

    return _after_all(stack, check)


def _deploy(config: StackConfig, recording: RecordingMocks) -> dict[str, Any]:
    """One `pulumi up` of ``config`` against ``recording``; returns the stack outputs."""
    use_mocks(recording)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        return _after_all(build_stack(config), outputs.update)

    run()
    return outputs


def _instances(recording: RecordingMocks) -> dict[str, dict[str, Any]]:
    """Each instance's inputs as the program sent them this run."""
    return {r.name: r.inputs for r in recording.of_type("aws:ec2/instance:Instance")}


def test_newer_image_never_replaces_running_hosts(flat_config, caplog) -> None:
    # Run 1 creates two hosts from the image the lookup returns today.
    config = _config(flat_config(instanceCount=2))
    first = RecordingMocks(ami=MOCK_AMI)
    assert _deploy(config, first)["amiIds"] == [MOCK_AMI, MOCK_AMI]

    # Amazon publishes a newer image; the next routine `pulumi up` looks it up.
    second = RecordingMocks(ami=NEWER_AMI, prior=first.states)
    outputs = _deploy(config, second)
    for name, inputs in _instances(second).items():
        assert inputs["ami"] == NEWER_AMI  # what the program now asks for …
        assert second.options[name]["ignoreChanges"] == ["ami"]
        # … and what the engine keeps: `ami` (replace-on-change for aws:ec2/Instance)
        # stays the old image, and nothing else differs from run 1's state either.
        assert second.states[name]["ami"] == MOCK_AMI, name
        assert second.states[name] == first.states[name], name
    assert outputs["amiIds"] == [MOCK_AMI, MOCK_AMI]
    assert outputs["amiId"] == MOCK_AMI
    assert outputs["latestAmiId"] == NEWER_AMI
    # The operator is told, with the command that moves the hosts on purpose.
    assert f"pulumi config set amiId {NEWER_AMI} && pulumi up" in caplog.text


def test_setting_ami_id_is_the_explicit_move(flat_config) -> None:
    first = RecordingMocks(ami=MOCK_AMI)
    _deploy(_config(flat_config()), first)
    [name] = _instances(first)

    second = RecordingMocks(ami=NEWER_AMI, prior=first.states)
    outputs = _deploy(_config(flat_config(amiId=NEWER_AMI)), second)
    # An explicit amiId is not ignored: the engine sees the new image, so the preview
    # shows the replacement and `pulumi up` performs it.
    assert second.options[name]["ignoreChanges"] == []
    assert (first.states[name]["ami"], second.states[name]["ami"]) == (MOCK_AMI, NEWER_AMI)
    assert outputs["amiIds"] == [NEWER_AMI]
    assert not [c for c in second.calls if c.token == "aws:ec2/getAmi:getAmi"]


@pulumi.runtime.test
def test_given_ami_and_existing_network_skip_lookup_and_vpc(mocks, flat_config):
    flat = flat_config(amiId="ami-0123456789abcdef0", vpcId="vpc-0aa", subnetId="subnet-0bb")
    stack = build_stack(_config(flat))

    def check(_outputs: dict[str, Any]) -> None:
        assert not [c for c in mocks.calls if c.token == "aws:ec2/getAmi:getAmi"]
        assert not mocks.of_type("aws:ec2/vpc:Vpc")
        assert not mocks.of_type("aws:ec2/subnet:Subnet")
        [group] = mocks.of_type("aws:ec2/securityGroup:SecurityGroup")
        assert group.inputs["vpcId"] == "vpc-0aa"
        [instance] = mocks.of_type("aws:ec2/instance:Instance")
        assert instance.inputs["subnetId"] == "subnet-0bb"
        assert instance.inputs["ami"] == "ami-0123456789abcdef0"

    return _after_all(stack, check)


@pulumi.runtime.test
def test_idle_alarm_stops_each_instance(mocks, flat_config):
    stack = build_stack(_config(flat_config(instanceCount=2, idleCpuPercent=7, idleMinutes=45)))

    def check(outputs: dict[str, Any]) -> None:
        alarms = mocks.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        assert sorted(a.inputs["dimensions"]["InstanceId"] for a in alarms) == sorted(
            outputs["instanceIds"]
        )
        for alarm in alarms:
            inputs = alarm.inputs
            assert (inputs["namespace"], inputs["metricName"]) == ("AWS/EC2", "CPUUtilization")
            assert inputs["comparisonOperator"] == "LessThanThreshold"
            assert inputs["threshold"] == 7
            assert (inputs["period"], inputs["evaluationPeriods"]) == (300, 9)  # 45 min / 5
            assert inputs["alarmActions"] == ["arn:aws:automate:us-east-1:ec2:stop"]

    return _after_all(stack, check)


@pulumi.runtime.test
def test_schedule_crons_match_working_hours(mocks, flat_config):
    flat = flat_config(workStart="07:30", hoursPerDay=10, workDays=["MON", "WED", "FRI"],
                       timezone="Europe/Berlin")  # fmt: skip
    stack = build_stack(_config(flat))

    def check(outputs: dict[str, Any]) -> None:
        schedules = {s.name: s.inputs for s in mocks.of_type("aws:scheduler/schedule:Schedule")}
        start, stop = schedules["dev-guard-start"], schedules["dev-guard-stop"]
        assert start["scheduleExpression"] == "cron(30 7 ? * MON,WED,FRI *)"
        assert stop["scheduleExpression"] == "cron(30 17 ? * MON,WED,FRI *)"
        assert start["scheduleExpressionTimezone"] == "Europe/Berlin"
        assert start["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:ec2:startInstances"
        assert stop["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:ec2:stopInstances"
        assert json.loads(stop["target"]["input"]) == {"InstanceIds": outputs["instanceIds"]}
        [role] = [r for r in mocks.of_type("aws:iam/role:Role") if r.name == "dev-guard-scheduler"]
        assert stop["target"]["roleArn"] == f"arn:aws:iam::123456789012:role/{role.name}"
        trust = json.loads(role.inputs["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
        # The estimate uses the same schedule: 10 h x 3 days/week x 30.4375/7 days.
        assert outputs["costEstimate"]["hoursPerMonth"] == pytest.approx(130.45, abs=0.01)

    return _after_all(stack, check)


@pulumi.runtime.test
def test_no_schedule_when_disabled_and_cost_is_always_on(mocks, flat_config):
    stack = build_stack(_config(flat_config(scheduleEnabled=False)))

    def check(outputs: dict[str, Any]) -> None:
        assert not mocks.of_type("aws:scheduler/schedule:Schedule")
        # g5.xlarge on-demand $1.006/h x 24 h x 30.4375 days = $734.89
        assert outputs["estimatedUsdPerMonth"] == pytest.approx(734.89, abs=0.01)

    return _after_all(stack, check)


@pulumi.runtime.test
def test_budget_amount_and_email(mocks, flat_config):
    stack = build_stack(_config(flat_config(budgetUsd=450, budgetThresholdPercent=90)))

    def check(_outputs: dict[str, Any]) -> None:
        [budget] = mocks.of_type("aws:budgets/budget:Budget")
        inputs = budget.inputs
        assert (inputs["limitAmount"], inputs["limitUnit"]) == ("450.00", "USD")
        assert inputs["timeUnit"] == "MONTHLY"
        assert {n["notificationType"] for n in inputs["notifications"]} == {"ACTUAL", "FORECASTED"}
        for notification in inputs["notifications"]:
            assert notification["threshold"] == 90
            assert notification["subscriberEmailAddresses"] == ["gpu-owner@example.com"]

    return _after_all(stack, check)


@pulumi.runtime.test
def test_every_taggable_resource_carries_the_cost_tags(mocks, flat_config):
    stack = build_stack(_config(flat_config(instanceCount=2)))

    def check(_outputs: dict[str, Any]) -> None:
        taggable = [r for r in mocks.resources if r.typ in TAGGABLE_TYPES]
        # VPC, subnet, IGW, route table, SG, key pair, 2 instances, 3 roles (host,
        # scheduler, budget), instance profile, 2 alarms, budget, 2 budget actions,
        # the budget's hold policy
        assert len(taggable) == 18
        for resource in taggable:
            assert REQUIRED_TAGS.items() <= resource.inputs["tags"].items(), resource.name
        untagged_kinds = {r.typ for r in mocks.resources if not r.typ.startswith("llmbox:")}
        untagged_kinds -= TAGGABLE_TYPES
        assert untagged_kinds == {
            "pulumi:providers:aws",
            "aws:ec2/routeTableAssociation:RouteTableAssociation",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "aws:iam/rolePolicy:RolePolicy",
            "aws:scheduler/schedule:Schedule",  # EventBridge schedules take no tags
        }

    return _after_all(stack, check)


@pulumi.runtime.test
def test_outputs_inventory_and_cost(mocks, flat_config):
    stack = build_stack(_config(flat_config(instanceCount=2, spot=True)))

    def check(outputs: dict[str, Any]) -> None:
        assert outputs["instanceIds"] == ["i-00000000000000000", "i-00000000000000001"]
        assert outputs["publicIps"] == ["203.0.113.10", "203.0.113.11"]
        assert outputs["sshUser"] == "ubuntu"
        inventory = yaml.safe_load(outputs["ansibleInventory"])
        group = inventory["all"]["children"]["llm_servers"]
        assert group["hosts"]["dev-gpu-1"]["ansible_host"] == "203.0.113.11"
        assert group["vars"]["ansible_user"] == "ubuntu"
        assert group["vars"]["firewall_admin_networks"] == ["203.0.113.7/32"]
        assert group["vars"]["firewall_client_networks"] == ["198.51.100.0/24"]
        assert outputs["clientCidrs"] == ["198.51.100.0/24"]
        # Spot: catalog's highest zone price $0.418/h x 2 instances, 8 h x 6 days/week.
        assert outputs["estimatedUsdPerHour"] == pytest.approx(0.836)
        days = 6 * 30.4375 / 7
        assert outputs["estimatedUsdPerMonth"] == pytest.approx(round(0.836 * 8 * days, 2))
        cost = outputs["costEstimate"]
        assert cost["market"] == "spot"
        assert cost["priceBasis"].startswith("spot")
        assert "skypilot" in cost["source"]
        assert cost["asOf"] == "2024-11-01"

    return _after_all(stack, check)


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(policy["policy"])["Statement"]


@pulumi.runtime.test
def test_budget_stops_the_hosts_at_the_stop_share(mocks, flat_config):
    stack = build_stack(_config(flat_config(instanceCount=2, budgetStopPercent=110)))

    def check(outputs: dict[str, Any]) -> None:
        actions = {a.name: a.inputs for a in mocks.of_type("aws:budgets/budgetAction:BudgetAction")}
        stop, hold = actions["dev-guard-stop"], actions["dev-guard-hold"]
        [budget] = mocks.of_type("aws:budgets/budget:Budget")
        for action in (stop, hold):
            assert action["budgetName"] == budget.name
            assert (action["notificationType"], action["approvalModel"]) == ("ACTUAL", "AUTOMATIC")
            assert action["actionThreshold"] == {
                "actionThresholdType": "PERCENTAGE",
                "actionThresholdValue": 110,
            }
            assert action["subscribers"] == [
                {"address": "gpu-owner@example.com", "subscriptionType": "EMAIL"}
            ]
            assert action["executionRoleArn"] == "arn:aws:iam::123456789012:role/dev-guard-budget"
        # The stop: AWS's SSM automation on exactly this stack's instances, in its region.
        assert stop["actionType"] == "RUN_SSM_DOCUMENTS"
        assert stop["definition"]["ssmActionDefinition"] == {
            "actionSubType": "STOP_EC2_INSTANCES",
            "instanceIds": outputs["instanceIds"],
            "region": "us-east-1",
        }
        # The hold: the schedule's role may not start the hosts again this period.
        [deny] = mocks.of_type("aws:iam/policy:Policy")
        assert _statements(deny.inputs) == [
            {"Effect": "Deny", "Action": "ec2:StartInstances", "Resource": "*"}
        ]
        assert hold["actionType"] == "APPLY_IAM_POLICY"
        assert hold["definition"]["iamActionDefinition"] == {
            "policyArn": mocks.states[deny.name]["arn"],
            "roles": ["dev-guard-scheduler"],
        }
        # The role only AWS Budgets assumes, allowed no more than these two acts.
        roles = {r.name: r.inputs for r in mocks.of_type("aws:iam/role:Role")}
        trust = json.loads(roles["dev-guard-budget"]["assumeRolePolicy"])["Statement"]
        assert trust == [
            {
                "Effect": "Allow",
                "Principal": {"Service": "budgets.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
        [grant] = [
            p.inputs
            for p in mocks.of_type("aws:iam/rolePolicy:RolePolicy")
            if p.name == "dev-guard-budget"
        ]
        by_action = {tuple(s["Action"]): s for s in _statements(grant)}
        instance_arns = [
            f"arn:aws:ec2:us-east-1:123456789012:instance/{i}" for i in outputs["instanceIds"]
        ]
        assert by_action[("ec2:StopInstances",)]["Resource"] == instance_arns
        assert by_action[("ec2:StopInstances",)]["Condition"] == {
            "ForAnyValue:StringEquals": {"aws:CalledVia": ["ssm.amazonaws.com"]}
        }
        assert by_action[("ssm:StartAutomationExecution",)]["Resource"] == (
            "arn:aws:ssm:us-east-1:*:automation-definition/AWS-StopEC2Instance:*"
        )
        attach = by_action[("iam:AttachRolePolicy", "iam:DetachRolePolicy")]
        assert attach["Resource"] == "arn:aws:iam::123456789012:role/dev-guard-scheduler"
        deny_arn = hold["definition"]["iamActionDefinition"]["policyArn"]
        assert attach["Condition"] == {"ArnEquals": {"iam:PolicyARN": deny_arn}}
        assert not any("StartInstances" in str(s["Action"]) for s in _statements(grant))

    return _after_all(stack, check)


@pulumi.runtime.test
def test_budget_without_schedule_only_stops(mocks, flat_config):
    stack = build_stack(_config(flat_config(scheduleEnabled=False)))

    def check(_outputs: dict[str, Any]) -> None:
        [action] = mocks.of_type("aws:budgets/budgetAction:BudgetAction")
        assert action.inputs["actionType"] == "RUN_SSM_DOCUMENTS"
        assert action.inputs["actionThreshold"]["actionThresholdValue"] == 100
        assert not mocks.of_type("aws:iam/policy:Policy")
        [grant] = mocks.of_type("aws:iam/rolePolicy:RolePolicy")
        assert "iam:" not in grant.inputs["policy"]

    return _after_all(stack, check)


@pulumi.runtime.test
def test_notify_only_budget_has_no_action(mocks, flat_config):
    stack = build_stack(_config(flat_config(budgetAction="notify")))

    def check(_outputs: dict[str, Any]) -> None:
        assert not mocks.of_type("aws:budgets/budgetAction:BudgetAction")
        assert not mocks.of_type("aws:iam/policy:Policy")
        assert "dev-guard-budget" not in {r.name for r in mocks.of_type("aws:iam/role:Role")}
        [budget] = mocks.of_type("aws:budgets/budget:Budget")
        assert len(budget.inputs["notifications"]) == 2  # the e-mails stay

    return _after_all(stack, check)


@pytest.mark.parametrize("active", [True, False])
@pulumi.runtime.test
def test_budget_scoped_to_the_stack_tag_when_tags_are_active(mocks, flat_config, active):
    stack = build_stack(_config(flat_config(costAllocationTagsActive=active)))

    def check(_outputs: dict[str, Any]) -> None:
        [budget] = mocks.of_type("aws:budgets/budget:Budget")
        if active:
            assert budget.inputs["costFilters"] == [
                {"name": "TagKeyValue", "values": ["user:stack$dev"]}
            ]
            # Every instance carries the tag the filter counts.
            for instance in mocks.of_type("aws:ec2/instance:Instance"):
                assert instance.inputs["tags"]["stack"] == "dev"
                assert instance.inputs["rootBlockDevice"]["tags"]["stack"] == "dev"
        else:
            assert "costFilters" not in budget.inputs  # the whole account

    return _after_all(stack, check)
