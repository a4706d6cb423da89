"""The cloud seam: the Pulumi stack's ``ansibleInventory`` -> ``llmbox inventory`` ->
``playbooks/site.yml``'s validation and read-only preflights on a booted test host.

For each stack config the program runs under Pulumi's own mocks (the mock setup of
``tests/stacks/conftest.py``), its outputs go to ``llmbox inventory`` as the JSON of
``pulumi stack output --json``, and site.yml runs with that inventory file unchanged.
A second ``-i`` inventory overrides only how Ansible reaches the host (address, user,
key, ssh options): every stack host name points at ONE Debian 12 test host.

``--tags untagged`` runs what the play always runs (facts, its ``always`` pre_tasks:
the engine check, every role's argument spec, every role's read-only preflight) and
none of the roles' tasks, which are all tagged. The test checks by name
that the preflight tasks ran: site.yml includes them with ``include_role`` (dynamic),
and only its ``apply: tags: [always]`` makes a tag filter keep the included tasks.

The Pulumi CLI is not installed here: a test-only stand-in ``pulumi`` on PATH answers
the inventory's ``pulumi config get apiKey --stack ... --cwd ...`` with a test key (what
the real CLI prints for the stack's secret) and records how it was called.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi
import pytest
import yaml
from click.testing import CliRunner

from llmbox.cli import main
from llmbox.cloud.inventory import host_names
from llmbox.lab.playbooks import parse_recap
from llmbox.lab.testhosts import REPO_ROOT, TestHost, TestNetwork

pytestmark = pytest.mark.real_host

# A test-only key for the throw-away host, what the stand-in `pulumi` prints.
STACK_KEY = "cloud-seam-test-key-7d41c08b"
# Task names that prove each preflight really ran (asserted in the output).
PREFLIGHT_TASKS = (
    "Validate the variables of every role against its argument spec",
    "model_store : Assert that the chosen source is fully given",
    "llama_cpp : Assert an API key of at least 16 characters is set",
    "firewall : Assert that both network lists have an entry",
    "firewall : Assert that the controller keeps SSH access",
)


def _load_stack_mocks() -> ModuleType:
    """tests/stacks/conftest.py as a module: RecordingMocks, BASE_CONFIG, the loop fix."""
    path = REPO_ROOT / "tests" / "stacks" / "conftest.py"
    spec = importlib.util.spec_from_file_location("llmbox_cloud_seam_stack_mocks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # also puts the repo root on sys.path for `stacks`
    return module


STACK_MOCKS = _load_stack_mocks()


def exported_outputs(flat: dict[str, Any]) -> dict[str, Any]:
    """The stack's outputs for ``flat`` config, resolved as `pulumi stack output --json`."""
    from stacks.flat_config import config_from_flat  # noqa: PLC0415 - path set above
    from stacks.program import build_stack  # noqa: PLC0415

    STACK_MOCKS._ensure_event_loop()
    pulumi.runtime.set_mocks(STACK_MOCKS.RecordingMocks(), project="llmbox", stack="dev",
                             preview=False)  # fmt: skip
    # The stack's secret apiKey is set (config_from_flat learns only that, never the value).
    config = config_from_flat(flat, project="llmbox", stack="dev", api_key_is_secret=True)
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[misc]
    def build() -> pulumi.Output[None]:
        stack = build_stack(config)
        return pulumi.Output.all(
            *[r.urn for r in stack.resources], pulumi.Output.from_input(stack.outputs)
        ).apply(lambda values: resolved.update(values[-1]))

    build()
    assert "ansibleInventory" in resolved, "the stack exported no inventory"
    return resolved


def stack_config(subnet: str, case: str) -> dict[str, Any]:
    """A flat stack config; adminCidrs holds the test subnet, where the controller is."""
    flat: dict[str, Any] = dict(STACK_MOCKS.BASE_CONFIG) | {"adminCidrs": [subnet]}
    if case == "spot-3":
        flat |= {"spot": True, "instanceCount": 3}
    elif case == "no-clients":
        del flat["clientCidrs"]
    elif case == "public":
        flat |= {"allowPublicInference": True}
    return flat


def _stand_in_pulumi(directory: Path) -> tuple[Path, Path]:
    """A `pulumi` that answers only `config get apiKey`; returns (bin dir, call log)."""
    bin_dir, log = directory / "bin", directory / "pulumi-calls.log"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        "# Test stand-in for the Pulumi CLI (not installed here): prints the test key\n"
        "# for `pulumi config get apiKey`, as the real CLI prints the stack's secret.\n"
        f'echo "$*" >> {log}\n'
        '[ "$1 $2 $3" = "config get apiKey" ] || { echo "stand-in: $*" >&2; exit 2; }\n'
        f"echo {STACK_KEY}\n"
    )
    script.chmod(0o755)
    return bin_dir, log


def _reach(host: TestHost) -> dict[str, str]:
    """Host variables that say only how to reach the test host."""
    return {
        "ansible_host": host.address,
        "ansible_user": host.ssh_user,
        "ansible_ssh_private_key_file": str(host.ssh_key),
        "ansible_ssh_common_args": f"-F {host.ssh_key.parent / 'ssh_config'}",
    }


def _connection_inventory(path: Path, names: list[str], host: TestHost) -> None:
    """Only how to reach the test host, per stack host name, in group llm_servers."""
    hosts = dict.fromkeys(names, _reach(host))
    path.write_text(json.dumps({"all": {"children": {"llm_servers": {"hosts": hosts}}}}))


@pytest.mark.parametrize("case", ["default", "spot-3", "no-clients", "public"])
def test_stack_inventory_passes_site_preflights_and_changes_nothing(
    boot_host: Callable[..., TestHost],
    test_network: TestNetwork,
    tmp_path: Path,
    case: str,
) -> None:
    outputs = exported_outputs(stack_config(test_network.subnet, case))
    assert STACK_KEY not in json.dumps(outputs)

    cloud_yml = tmp_path / "cloud.yml"
    written = CliRunner().invoke(
        main, ["inventory", "--out", str(cloud_yml)], input=json.dumps(outputs)
    )
    assert written.exit_code == 0, written.output
    text = cloud_yml.read_text()
    assert STACK_KEY not in text
    assert text == outputs["ansibleInventory"]  # the CLI and the stack agree byte for byte
    group = yaml.safe_load(text)["all"]["children"]["llm_servers"]
    names = sorted(group["hosts"])
    assert len(names) == (3 if case == "spot-3" else 1)
    if case == "no-clients":
        # No clientCidrs: the API serves the admin networks, firewall and security group alike.
        assert group["vars"]["firewall_client_networks"] == [test_network.subnet]
        assert outputs["clientCidrs"] == [test_network.subnet]

    host = boot_host("debian12")
    host.ssh("touch /run/llmbox-before-play")
    connection_yml = tmp_path / "connection.yml"
    _connection_inventory(connection_yml, names, host)
    bin_dir, calls = _stand_in_pulumi(tmp_path)
    ansible = Path(sys.executable).with_name("ansible-playbook")
    argv = [str(ansible), "-i", str(cloud_yml), "-i", str(connection_yml),
            str(REPO_ROOT / "playbooks" / "site.yml"), "--tags", "untagged", "-v"]  # fmt: skip
    env = os.environ | {
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    env.pop("LLMBOX_API_KEY", None)  # the key must come from the stack, not from here
    # From /tmp, not the repo: the inventory's `--cwd {{ playbook_dir }}/..` finds the project.
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900, check=False)  # fmt: skip
    output = run.stdout + run.stderr

    assert run.returncode == 0, output[-6000:]
    stats = parse_recap(run.stdout)
    assert sorted(stats) == names, output[-3000:]
    for name in names:
        assert stats[name]["failed"] == stats[name]["unreachable"] == 0, name
        assert stats[name]["changed"] == 0, (name, output[-3000:])
    for task in PREFLIGHT_TASKS:
        assert f"TASK [{task}]" in output, task
    # Besides facts, the play's pre_tasks and the preflights they include, only the roles'
    # own argument-spec checks ran (Ansible tags those `always`); no role task ran.
    ran = set(re.findall(r"^TASK \[(.+?)\] \*+$", output, re.MULTILINE))
    roles_ran = {t for t in ran if " : " in t and not t.split(" : ")[1].startswith("Validating")}
    preflighted = {"nvidia_driver", "cuda_toolkit", "model_store", "llama_cpp", "firewall"}
    assert {t.split(" : ")[0] for t in roles_ran} <= preflighted
    changed = host.ssh(
        "find /etc /opt /usr /var/lib/dpkg /var/lib/llmbox -xdev -newer /run/llmbox-before-play"
        " -print 2>/dev/null",
        check=False,
    )
    assert changed.stdout.split() == []
    # The key came from the stack's secret through the inventory's command, and is in no log.
    assert STACK_KEY not in output
    for line in calls.read_text().splitlines():
        assert line == f"config get apiKey --stack dev --cwd {REPO_ROOT / 'playbooks'}/.."
    assert calls.read_text(), "the inventory never asked the stack for its key"


# A test-only client key for the gateway (the role wants at least one; from vault or the
# environment in real use, never in the inventory).
CLIENT_KEYS = {"gateway_api_keys": [{"owner": "team-a", "key": "cloud-seam-client-0a1b2c3d4e"}]}
# What the gateway would balance to, written on the controller by a probe play that runs
# the role's own (read-only) preflight, where the backend list is made.
BACKENDS_PROBE = """
- name: Report the gateway's backends as its preflight makes them
  hosts: llm_gateways
  tasks:
    - name: Run the gateway role's read-only preflight
      ansible.builtin.include_role:
        name: gateway
        tasks_from: preflight.yml
    - name: Write the backend list on the controller
      ansible.builtin.copy:
        content: "{{ __gateway_backends | to_json }}"
        dest: "{{ backends_file }}"
        mode: "0600"
      delegate_to: localhost
"""


def _run(playbook: Path, inventories: list[Path], extra: Path, tmp_path: Path, bin_dir: Path,
         *args: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    ansible = Path(sys.executable).with_name("ansible-playbook")
    argv = [str(ansible)]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    argv += [str(playbook), "-e", f"@{extra}", *args]
    env = os.environ | {
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    env.pop("LLMBOX_API_KEY", None)
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900, check=False)  # fmt: skip


# The local shape runs on the single GPU host, whose image must ship HAProxy 2.6+.
UBUNTU_24 = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) *"
SHAPES = {
    "dedicated": {"gateway": "dedicated", "instanceCount": 2},
    "local": {"gateway": "auto", "amiNameFilter": UBUNTU_24},
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_gateway_stack_inventory_passes_site_preflights(
    boot_host: Callable[..., TestHost],
    test_network: TestNetwork,
    tmp_path: Path,
    shape: str,
) -> None:
    """A gateway in the stack: its inventory, unchanged, passes site.yml's argument specs
    and read-only preflights (the gateways' own play, the servers', then gateway.yml's),
    and the gateway would balance over the engines' private addresses (dedicated: what
    the security group's gateway rule admits, not the public ones Ansible connects to)
    or the engine on loopback (local)."""
    outputs = exported_outputs(stack_config(test_network.subnet, "default") | SHAPES[shape])
    assert outputs["gateway"] == shape and outputs["gatewayPort"] == 8443
    assert outputs["inferenceUrl"].startswith("https://")
    cloud_yml = tmp_path / "cloud.yml"
    written = CliRunner().invoke(
        main, ["inventory", "--out", str(cloud_yml)], input=json.dumps(outputs)
    )
    assert written.exit_code == 0, written.output
    assert cloud_yml.read_text() == outputs["ansibleInventory"]
    groups = yaml.safe_load(cloud_yml.read_text())["all"]["children"]
    servers, gateways = (
        sorted(groups["llm_servers"]["hosts"]),
        list(groups["llm_gateways"]["hosts"]),
    )
    assert gateways == (["dev-gateway"] if shape == "dedicated" else servers)

    host = boot_host("debian12")
    host.ssh("touch /run/llmbox-before-play")
    # Every stack host name reaches the one test host; only connection variables.
    names = sorted({*servers, *gateways})
    connection_yml = tmp_path / "connection.yml"
    connection_yml.write_text(json.dumps({"all": {"hosts": dict.fromkeys(names, _reach(host))}}))
    bin_dir, calls = _stand_in_pulumi(tmp_path)
    backends_file = tmp_path / "backends.json"
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(CLIENT_KEYS | {"backends_file": str(backends_file)}))
    inventories = [cloud_yml, connection_yml]

    run = _run(REPO_ROOT / "playbooks" / "site.yml", inventories, extra, tmp_path, bin_dir,
               "--tags", "untagged", "-v")  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    stats = parse_recap(run.stdout)
    assert sorted(stats) == names, output[-3000:]
    for name, counts in stats.items():
        assert counts["failed"] == counts["unreachable"] == counts["changed"] == 0, name
    for task in (
        "Validate the variables of the gateway and firewall roles against their argument specs",
        "Validate the variables of every role against its argument spec",
        "gateway : Choose the shape (local or fleet)",
        "gateway : Assert every key has an owner and at least 16 characters",
        "llama_cpp : Assert an API key of at least 16 characters is set",
        "firewall : Assert that the controller keeps SSH access",
    ):
        assert f"TASK [{task}]" in output, task

    probe = tmp_path / "probe.yml"
    probe.write_text(BACKENDS_PROBE)
    run = _run(probe, inventories, extra, tmp_path, bin_dir)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    backends = {b["name"]: b["address"] for b in json.loads(backends_file.read_text())}
    if shape == "dedicated":
        assert backends == dict(zip(host_names("dev", 2), outputs["privateIps"], strict=True))
        assert host.address not in backends.values()
    else:
        assert backends == {"local": "127.0.0.1"}

    changed = host.ssh(
        "find /etc /opt /usr /var/lib/dpkg /var/lib/llmbox -xdev -newer /run/llmbox-before-play"
        " -print 2>/dev/null",
        check=False,
    )
    assert changed.stdout.split() == []
    assert STACK_KEY not in output and "cloud-seam-client-0a1b2c3d4e" not in output
    assert calls.read_text(), "the engines' key was not read from the stack"
