"""Flat ``llmbox:*`` Pulumi config keys -> the nested, validated :class:`StackConfig`.

Pulumi config is a flat list of keys (see ``Pulumi.yaml``); the components each take
one nested config object. :data:`CONFIG_KEYS` maps one onto the other, and errors are
reported back under the key the user typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from stacks.config import CostTags, StackConfig, StackConfigError

# Pulumi config key (llmbox:<key>) -> where it lands in the nested StackConfig.
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "region": ("region",),
    "owner": ("tags", "owner"),
    "costCenter": ("tags", "costCenter"),
    "vpcId": ("network", "vpcId"),
    "subnetId": ("network", "subnetId"),
    "vpcCidr": ("network", "vpcCidr"),
    "subnetCidr": ("network", "subnetCidr"),
    "availabilityZone": ("network", "availabilityZone"),
    "adminCidrs": ("network", "adminCidrs"),
    "clientCidrs": ("network", "clientCidrs"),
    "inferencePort": ("network", "inferencePort"),
    "allowPublicInference": ("network", "allowPublicInference"),
    "instanceType": ("servers", "instanceType"),
    "instanceCount": ("servers", "instanceCount"),
    "spot": ("servers", "spot"),
    "spotMaxPrice": ("servers", "spotMaxPrice"),
    "amiId": ("servers", "amiId"),
    "amiNameFilter": ("servers", "amiNameFilter"),
    "rootVolumeGb": ("servers", "rootVolumeGb"),
    "sshUser": ("servers", "sshUser"),
    "sshPublicKey": ("servers", "sshPublicKey"),
    "idleStop": ("guardrails", "idleStop"),
    "idleCpuPercent": ("guardrails", "idleCpuPercent"),
    "idleMinutes": ("guardrails", "idleMinutes"),
    "workStart": ("guardrails", "schedule", "start"),
    "hoursPerDay": ("guardrails", "schedule", "hoursPerDay"),
    "workDays": ("guardrails", "schedule", "days"),
    "timezone": ("guardrails", "schedule", "timezone"),
    "budgetUsd": ("guardrails", "budgetUsd"),
    "budgetEmail": ("guardrails", "budgetEmail"),
    "budgetThresholdPercent": ("guardrails", "budgetThresholdPercent"),
    "budgetAction": ("guardrails", "budgetAction"),
    "budgetStopPercent": ("guardrails", "budgetStopPercent"),
    "costAllocationTagsActive": ("guardrails", "costAllocationTagsActive"),
    "gateway": ("gateway", "shape"),
    "gatewayPort": ("gateway", "port"),
    "gatewayInstanceType": ("gateway", "instanceType"),
    "gatewayAmiNameFilter": ("gateway", "amiNameFilter"),
}
# Pulumi config type of every key the loader reads as a value (Pulumi.yaml agrees).
CONFIG_TYPES: dict[str, str] = {
    key: "array"
    if key in ("adminCidrs", "clientCidrs", "workDays")
    else "boolean"
    if key
    in ("allowPublicInference", "spot", "idleStop", "scheduleEnabled", "costAllocationTagsActive")
    else "integer"
    if key
    in (
        "inferencePort",
        "instanceCount",
        "rootVolumeGb",
        "idleCpuPercent",
        "idleMinutes",
        "hoursPerDay",
        "budgetUsd",
        "budgetThresholdPercent",
        "budgetStopPercent",
        "gatewayPort",
    )
    else "string"
    for key in [*CONFIG_KEYS, "scheduleEnabled"]
}
# Keys read by the loader itself rather than copied into the model.
LOADER_KEYS = ("scheduleEnabled", "apiKey")
# Optional string keys whose empty value means "not set" (Pulumi.yaml defaults them to "").
_EMPTY_IS_UNSET = {"vpcId", "subnetId", "availabilityZone", "amiId", "spotMaxPrice"}
_KEY_BY_PATH = {path: key for key, path in CONFIG_KEYS.items()}


def _format_error(
    error: ValidationError, raw: Mapping[str, Any], project: str, within: tuple[str, ...] = ()
) -> str:
    lines = []
    for item in error.errors():
        path = within + tuple(str(p) for p in item["loc"] if not isinstance(p, int))
        message = str(item["msg"]).removeprefix("Value error, ")
        key = next(
            (_KEY_BY_PATH[path[:n]] for n in range(len(path), 0, -1) if path[:n] in _KEY_BY_PATH),
            None,
        )
        if key is None:
            lines.append(f"{project} config: {message}")
        else:
            shown = raw.get(key, "<not set>")
            lines.append(f"{project}:{key} = {shown!r}: {message}")
    return "invalid stack config:\n  " + "\n  ".join(lines)


def config_from_flat(
    raw: Mapping[str, Any],
    *,
    project: str,
    stack: str,
    api_key_is_secret: bool = False,
) -> StackConfig:
    """Build the validated config from flat ``llmbox:*`` values (missing = default)."""
    unknown = sorted(set(raw) - set(CONFIG_KEYS) - set(LOADER_KEYS))
    if unknown:
        raise StackConfigError(
            f"unknown config key {project}:{unknown[0]}; known keys: "
            + ", ".join(sorted([*CONFIG_KEYS, *LOADER_KEYS]))
        )
    values = {k: v for k, v in raw.items() if not (k in _EMPTY_IS_UNSET and v in ("", None))}
    try:
        tags = CostTags.model_validate(
            {"project": project, "stack": stack}
            | {k: values[k] for k in ("owner", "costCenter") if k in values}
        )
    except ValidationError as error:
        raise StackConfigError(_format_error(error, raw, project, within=("tags",))) from None
    nested: dict[str, Any] = {
        "tags": tags,
        "network": {"tags": tags, "apiKeyIsSecret": api_key_is_secret},
        "servers": {"tags": tags},
        "guardrails": {"tags": tags, "region": values.get("region", "us-east-1")},
    }
    schedule_enabled = values.get("scheduleEnabled", True)
    for key, value in values.items():
        if key in LOADER_KEYS or key in ("owner", "costCenter"):
            continue
        path = CONFIG_KEYS[key]
        if path[:2] == ("guardrails", "schedule") and not schedule_enabled:
            continue
        target = nested
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    if not schedule_enabled:
        nested["guardrails"]["schedule"] = None
    try:
        return StackConfig.model_validate(nested)
    except ValidationError as error:
        raise StackConfigError(_format_error(error, raw, project)) from None
