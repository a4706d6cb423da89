"""Pulumi.yaml's typed config schema, the example stack file and the loader agree.

The loader reads each key with the getter for its declared type, and the pydantic
defaults must equal the schema defaults, so neither can drift from the other.
"""

from __future__ import annotations

import json
import runpy
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from click.testing import CliRunner

from llmbox.cli import main
from stacks.config import StackConfigError
from stacks.flat_config import CONFIG_TYPES, config_from_flat
from stacks.program import load_config
from stacks.servers import ansible_ready_user_data

REPO = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
SCHEMA: dict[str, dict[str, Any]] = PROJECT["config"]
# Keys with no usable default: the stack refuses to run until they are set.
REQUIRED = {"owner", "costCenter", "adminCidrs", "sshPublicKey", "budgetEmail"}
# A stack whose secret apiKey is set (required too, but read by the loader, not the model).
STACK: dict[str, Any] = {"project": "llmbox", "stack": "dev", "api_key_is_secret": True}
TEST_KEY = "stack-secret-key-0123456789abcdef"


def test_project_runs_the_stacks_directory_with_the_venv() -> None:
    assert PROJECT["name"] == "llmbox"
    assert PROJECT["main"] == "stacks/"
    assert PROJECT["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }
    assert (REPO / "stacks" / "__main__.py").is_file()


def test_every_key_has_type_default_description() -> None:
    for key, spec in SCHEMA.items():
        assert {"type", "default", "description"} <= spec.keys(), key
        assert spec["description"].strip(), key


def test_schema_types_match_the_loader() -> None:
    assert set(SCHEMA) == {*CONFIG_TYPES, "apiKey"}
    for key, kind in CONFIG_TYPES.items():
        assert SCHEMA[key]["type"] == kind, key
    assert SCHEMA["apiKey"]["type"] == "string"


def test_schema_defaults_equal_model_defaults(flat_config) -> None:
    defaults = {
        key: spec["default"]
        for key, spec in SCHEMA.items()
        if key not in REQUIRED and key != "apiKey"
    }
    from_schema = config_from_flat(defaults | flat_config(), **STACK)
    from_model = config_from_flat(flat_config(), **STACK)
    assert from_schema == from_model


def test_required_keys_fail_with_their_schema_defaults() -> None:
    defaults = {key: spec["default"] for key, spec in SCHEMA.items() if key != "apiKey"}
    with pytest.raises(StackConfigError) as caught:
        config_from_flat(defaults, project="llmbox", stack="dev")
    # owner/costCenter are checked first, as the tags every component needs.
    assert "llmbox:owner = '': must not be empty" in str(caught.value)
    assert "llmbox:costCenter = '': must not be empty" in str(caught.value)
    filled = defaults | {"owner": "me", "costCenter": "cc"}
    with pytest.raises(StackConfigError) as caught:
        config_from_flat(filled, project="llmbox", stack="dev")
    for key in REQUIRED - {"owner", "costCenter"}:
        assert f"llmbox:{key} = " in str(caught.value), key


def test_example_stack_file_is_valid() -> None:
    example = yaml.safe_load((REPO / "Pulumi.example.yaml").read_text())["config"]
    assert all(key.startswith("llmbox:") for key in example)
    flat = {key.removeprefix("llmbox:"): value for key, value in example.items()}
    config = config_from_flat(flat, **STACK)
    assert config.guardrails.schedule is not None
    assert config.guardrails.schedule.timezone == "Europe/Berlin"


def _set_stack_config(values: dict[str, Any], secret_keys: list[str]) -> None:
    # What the Pulumi CLI hands the program: every value a string, objects as JSON.
    encoded = {f"llmbox:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    pulumi.runtime.set_all_config(encoded, [f"llmbox:{k}" for k in secret_keys])


@pytest.fixture
def stack_config(mocks, flat_config):
    """Sets the running stack's config; a secret apiKey unless the test says otherwise."""

    def apply(secret_keys: tuple[str, ...] = ("apiKey",), **overrides: Any) -> None:
        _set_stack_config(flat_config(**{"apiKey": TEST_KEY} | overrides), list(secret_keys))

    yield apply
    pulumi.runtime.set_all_config({})


def test_loader_reads_typed_values_from_pulumi_config(stack_config) -> None:
    stack_config(instanceCount=2, spot=True, workDays=["MON", "TUE"], hoursPerDay=10)
    config = load_config()
    assert config.servers.instance_count == 2
    assert config.servers.spot is True
    assert config.guardrails.schedule is not None
    assert config.guardrails.schedule.days == ("MON", "TUE")
    assert config.hours_per_day == 10
    assert config.tags.stack == "dev"


def test_loader_accepts_secret_api_key_for_public_inference(stack_config) -> None:
    stack_config(allowPublicInference=True)
    assert load_config().network.allow_public_inference is True


def test_loader_refuses_plain_text_api_key(stack_config) -> None:
    stack_config((), apiKey="s3cret-but-long-enough")
    with pytest.raises(StackConfigError, match=r"llmbox:apiKey is stored in plain text"):
        load_config()


def test_loader_refuses_a_missing_api_key(stack_config) -> None:
    stack_config((), apiKey=None)
    with pytest.raises(StackConfigError, match=r"apiKey is not set: every served host requires"):
        load_config()


def test_loader_refuses_a_short_api_key_without_showing_it(stack_config) -> None:
    stack_config(apiKey="s3cret")
    with pytest.raises(StackConfigError) as caught:
        load_config()
    assert "llmbox:apiKey is shorter than 16 characters (its value is not shown)" in str(
        caught.value
    )
    assert "s3cret" not in str(caught.value)


def test_user_data_is_valid_bash_and_quotes_the_key() -> None:
    script = ansible_ready_user_data("llm", "ssh-ed25519 AAAAkey it's-me@host")
    assert script.startswith("#!/bin/bash\n")
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert "useradd --create-home --shell /bin/bash llm" in script
    assert "'ssh-ed25519 AAAAkey it'\"'\"'s-me@host'" in script
    assert "llm ALL=(ALL) NOPASSWD:ALL" in script


def _platform_section() -> str:
    readme = (REPO / "README.md").read_text()
    start, end = (
        readme.index("<!-- section:platform -->"),
        readme.index("<!-- /section:platform -->"),
    )
    return readme[start:end]


def test_readme_documents_every_key_and_command() -> None:
    section = _platform_section()
    for key in SCHEMA:
        assert f"| `{key}` |" in section, f"README's platform section lacks config key {key}"
    for command in ("pulumi up", "pulumi destroy", "llmbox inventory", "llmbox cloud check",
                    "ansible-playbook -i inventories/cloud.yml playbooks/site.yml"):  # fmt: skip
        assert command in section, command


def test_readme_price_example_matches_the_estimate(flat_config) -> None:
    # 8 h x Mon-Sat of one on-demand g5.xlarge, as the README quotes it.
    config = config_from_flat(flat_config(), **STACK)
    assert f"≈ ${config.estimate().usd_per_month:.2f}/month" in _platform_section()


@pulumi.runtime.test
def test_entry_point_builds_the_stack_from_pulumi_config(stack_config, mocks):
    # What `pulumi up` runs: stacks/__main__.py, here against the mocks.
    stack_config(instanceCount=2)
    program = runpy.run_path(str(REPO / "stacks"), run_name="__main__")

    def check(_: Any) -> None:
        assert len(mocks.of_type("aws:ec2/instance:Instance")) == 2
        assert len(mocks.of_type("aws:budgets/budget:Budget")) == 1

    return pulumi.Output.all(*[r.urn for r in program["stack"].resources]).apply(check)


def test_entry_point_stops_on_bad_config_before_any_resource(stack_config, mocks) -> None:
    stack_config(budgetUsd=-5)
    with pytest.raises(pulumi.RunError, match=r"llmbox:budgetUsd = -5: Input should be greater"):
        runpy.run_path(str(REPO / "stacks"), run_name="__main__")
    assert mocks.resources == []


@pulumi.runtime.test
def test_api_key_is_in_no_output_resource_or_inventory(stack_config, mocks, tmp_path):
    # The secret apiKey stays in the stack config: the exported outputs (as
    # `pulumi stack output --json` would print them), every resource's inputs and the
    # inventory `llmbox inventory` writes from those outputs carry only the command that
    # reads it back.
    stack_config(instanceCount=2, allowPublicInference=True)
    program = runpy.run_path(str(REPO / "stacks"), run_name="__main__")
    stack = program["stack"]

    def check(outputs: dict[str, Any]) -> None:
        exported = json.dumps(outputs)
        assert TEST_KEY not in exported
        for resource in mocks.resources:
            assert TEST_KEY not in json.dumps(resource.inputs, default=str), resource.name
        out = tmp_path / "cloud.yml"
        result = CliRunner().invoke(main, ["inventory", "--out", str(out)], input=exported)
        assert result.exit_code == 0, result.output
        written = out.read_text()
        assert TEST_KEY not in written
        variables = yaml.safe_load(written)["all"]["children"]["llm_servers"]["vars"]
        assert variables["llmbox_api_key_command"].startswith(
            "pulumi config get apiKey --stack dev "
        )
        assert "llmbox_api_key_command" in variables["llama_cpp_api_key"]

    return pulumi.Output.all(
        *[r.urn for r in stack.resources], pulumi.Output.from_input(stack.outputs)
    ).apply(lambda values: check(values[-1]))
