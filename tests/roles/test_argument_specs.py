"""Drift check: every role's defaults/main.yml and meta/argument_specs.yml declare the
same variables, with defaults of the declared type (prometheus-community's CI check)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
ROLE_DIRS = sorted(p for p in ROLES.iterdir() if (p / "tasks" / "main.yml").exists())
PY_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "path": (str,),
    "raw": (object,),
    "int": (int,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "float": (float, int),
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.exists() else None


def _options(role: Path) -> dict[str, Any]:
    spec = _load(role / "meta" / "argument_specs.yml")
    assert spec, f"{role.name}: meta/argument_specs.yml is missing or empty"
    return dict(spec["argument_specs"]["main"]["options"])


def test_the_serving_roles_are_checked() -> None:
    names = {p.name for p in ROLE_DIRS}
    assert {"llama_cpp", "model_store", "firewall"} <= names


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_defaults_and_argument_spec_declare_the_same_variables(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml") or {}
    options = _options(role)
    assert set(defaults) - set(options) == set(), "in defaults/main.yml only"
    assert set(options) - set(defaults) == set(), "in meta/argument_specs.yml only"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_every_option_is_prefixed_typed_and_described(role: Path) -> None:
    for name, option in _options(role).items():
        assert name.startswith(f"{role.name}_"), f"{name} lacks the prefix {role.name}_"
        assert option.get("type") in PY_TYPES, f"{name}: type {option.get('type')!r}"
        assert str(option.get("description", "")).strip(), f"{name} has no description"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_spec_defaults_equal_defaults_main(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml") or {}
    for name, option in _options(role).items():
        assert "default" in option, f"{name}: meta/argument_specs.yml declares no default"
        assert option["default"] == defaults.get(name), f"{name}: spec and defaults disagree"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_plain_defaults_have_the_declared_type(role: Path) -> None:
    defaults = _load(role / "defaults" / "main.yml") or {}
    for name, option in _options(role).items():
        value = defaults.get(name)
        if value is None or (isinstance(value, str) and "{{" in value):
            continue  # templated defaults are typed when Ansible renders them
        expected = PY_TYPES[option["type"]]
        assert isinstance(value, expected), f"{name}={value!r} is not {option['type']}"
        if option["type"] == "int":
            assert not isinstance(value, bool), f"{name}={value!r} is a bool, not an int"
        if "choices" in option:
            assert value in option["choices"], f"{name}={value!r} not in {option['choices']}"


SECRET_SUFFIXES = ("_api_key", "_password", "_token", "_secret")


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_secret_options_are_never_logged(role: Path) -> None:
    secrets = {n: o for n, o in _options(role).items() if n.endswith(SECRET_SUFFIXES)}
    for name, option in secrets.items():
        assert option.get("no_log") is True, f"{name} is a secret without no_log: true"
