"""Pulumi's own mocks for the stack tests: no CLI, no credentials, no AWS.

``RecordingMocks`` answers every resource registration with realistic ids/ARNs and
keeps the inputs, so tests can assert policy on the whole resource graph. It also
answers the ``aws:ec2/getAmi:getAmi`` call the servers component makes.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

# `stacks` is the Pulumi program directory at the repo root, not an installed package.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

ACCOUNT = "123456789012"
# Debian's AWS account (stacks.gateway_config.DEBIAN_AMI_OWNER, written out: the test
# would not notice a wrong owner if it read the same constant).
DEBIAN_OWNER = "136693071363"
MOCK_AMI = "ami-0f1e2d3c4b5a69788"
# The image Amazon "publishes" later, for the AMI-pinning test.
NEWER_AMI = "ami-0aaa1111bbbb22223"
# What the lookup of Debian's images (the dedicated gateway's) answers.
DEBIAN_AMI = "ami-0deb12deb12deb120"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bWJveHRlc3RrZXkwMDAwMDAwMDAwMDAwMDAwMDAw ci@test"

BASE_CONFIG: dict[str, Any] = {
    "owner": "ml-platform",
    "costCenter": "research-42",
    "adminCidrs": ["203.0.113.7/32"],
    "clientCidrs": ["198.51.100.0/24"],
    "sshPublicKey": SSH_KEY,
    "budgetEmail": "gpu-owner@example.com",
}


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that record every resource and call, returning AWS-shaped ids.

    ``ami`` is the image the AMI lookup answers (a later run can "publish" a newer one).
    ``options`` holds, per resource name, the resource options the program sent to the
    engine that the mock's ``MockResourceArgs`` leaves out (see :class:`RecordingMonitor`).
    ``prior`` plays a second ``pulumi up``: the state an earlier run left, per resource
    name. A resource found there keeps, for each property its ``ignoreChanges`` names,
    the earlier value, which is the engine's documented rule; ``states`` is the result.
    """

    def __init__(self, ami: str = MOCK_AMI, prior: dict[str, dict[str, Any]] | None = None):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self.options: dict[str, dict[str, list[str]]] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.ami = ami
        self.prior = prior or {}
        self._instances = 0

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        state = dict(args.inputs)
        if args.name in self.prior:
            for key in self.options.get(args.name, {}).get("ignoreChanges", []):
                state[key] = self.prior[args.name][key]
        self.states[args.name] = state
        short = args.typ.rsplit(":", 1)[-1]
        resource_id = f"{args.name}-id"
        if short == "Instance":
            index = self._instances
            self._instances += 1
            resource_id = f"i-0{index:016x}"
            state |= {
                "publicIp": f"203.0.113.{10 + index}",
                "publicDns": f"ec2-203-0-113-{10 + index}.compute-1.amazonaws.com",
                "privateIp": f"10.42.1.{10 + index}",
                "arn": f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{resource_id}",
            }
        elif short == "Eip":
            resource_id = f"eipalloc-0{abs(hash(args.name)) % 16**16:016x}"
            state |= {
                "publicIp": "198.51.100.200",
                "publicDns": "ec2-198-51-100-200.compute-1.amazonaws.com",
            }
        elif short in {"Vpc", "Subnet", "SecurityGroup", "InternetGateway", "RouteTable"}:
            prefix = {"Vpc": "vpc", "Subnet": "subnet", "SecurityGroup": "sg",
                      "InternetGateway": "igw", "RouteTable": "rtb"}[short]  # fmt: skip
            resource_id = f"{prefix}-0{abs(hash(args.name)) % 16**16:016x}"
        elif short == "KeyPair":
            state["keyName"] = args.name
        elif short in {"Role", "InstanceProfile"}:
            kind = "role" if short == "Role" else "instance-profile"
            state |= {"name": args.name, "arn": f"arn:aws:iam::{ACCOUNT}:{kind}/{args.name}"}
        elif short == "Policy":
            state |= {"name": args.name, "arn": f"arn:aws:iam::{ACCOUNT}:policy/{args.name}"}
        elif short == "Budget":
            state["name"] = args.name
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append(args)
        if args.token == "aws:ec2/getAmi:getAmi" and args.args.get("owners") == [DEBIAN_OWNER]:
            return {
                "id": DEBIAN_AMI,
                "imageId": DEBIAN_AMI,
                "name": "debian-12-amd64-20260101-2345",
                "architecture": "x86_64",
                "ownerId": DEBIAN_OWNER,
            }
        if args.token == "aws:ec2/getAmi:getAmi":
            return {
                "id": self.ami,
                "imageId": self.ami,
                "name": "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20260101",
                "architecture": "x86_64",
                "ownerId": "898082745236",
            }
        return {}

    def of_type(self, type_token: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == type_token]


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """The mock resource monitor, also keeping the options each registration carried.

    ``ignoreChanges`` is what the engine would use to keep a property's old value on an
    update; the plain mocks drop it, so the AMI-pinning test reads it here.
    """

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self._recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        self._recording.options[request.name] = {
            "ignoreChanges": list(request.ignoreChanges),
            "replaceOnChanges": list(request.replaceOnChanges),
        }
        return super().RegisterResource(request)


def use_mocks(recording: RecordingMocks) -> RecordingMocks:
    """Route the Pulumi runtime to ``recording`` (preview=False: outputs are known)."""
    _ensure_event_loop()
    pulumi.runtime.set_mocks(
        recording,
        project="llmbox",
        stack="dev",
        preview=False,
        monitor=RecordingMonitor(recording),
    )
    return recording


def _ensure_event_loop() -> None:
    """Pulumi's test runtime schedules on the thread's current event loop and keeps
    futures on it across tests. A test that ran ``asyncio.run`` earlier in the session
    (the bench client does) leaves the thread with none, so make one once and keep it."""
    policy = asyncio.get_event_loop_policy()
    try:
        policy.get_event_loop()
    except RuntimeError:
        policy.set_event_loop(policy.new_event_loop())


@pytest.fixture
def mocks() -> RecordingMocks:
    """Fresh mocks per test; set before any resource of that test is created."""
    return use_mocks(RecordingMocks())


@pytest.fixture
def flat_config() -> Callable[..., dict[str, Any]]:
    """A valid flat config with overrides (``None`` removes a key)."""

    def make(**overrides: Any) -> dict[str, Any]:
        merged = BASE_CONFIG | overrides
        return {k: v for k, v in merged.items() if v is not None}

    return make
