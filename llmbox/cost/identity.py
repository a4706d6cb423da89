"""What a benchmarked host *is*, so its measured figures can be priced: the contract
between the ``llm_benchmark`` role (which writes it) and ``llmbox report`` (which reads it).

A host's hardware identity is one of:

- ``build: <catalog hardware build>`` - an office PC the catalog knows (price, power);
- ``cloud: <catalog instance type>`` (+ ``spot``) - a rented instance priced from the catalog;
- inline ``price_usd`` (+ ``gpu`` from the catalog, or no ``gpu`` for a CPU-only box,
  power and memory if known) - a box the catalog does not list.

Every benchmark run folder (``results/<host>/<run id>/``) carries a :class:`RunManifest`
in ``llmbox-run.json`` beside the bench result files. ``python -m llmbox.cost.identity``
checks an identity given as JSON on stdin against the catalog (the role's preflight).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmbox.cost.catalog import Catalog, load_catalog, normalise_name

MANIFEST_NAME = "llmbox-run.json"
MANIFEST_VERSION = 1


class IdentityError(ValueError):
    """A hardware identity or run manifest that cannot be used; one line naming the value."""


class HardwareIdentity(BaseModel):
    """``llm_benchmark_hardware`` of one host (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    build: str | None = Field(None, min_length=1, description="a catalog hardware build")
    cloud: str | None = Field(None, min_length=1, description="a catalog cloud instance type")
    spot: bool = False
    name: str | None = Field(None, min_length=1, description="option name in the report")
    price_usd: float | None = Field(None, ge=0, description="purchase price of an inline box")
    gpu: str | None = Field(None, min_length=1, description="catalog GPU; none: CPU only")
    gpu_count: int = Field(1, ge=1)
    load_power_w: float | None = Field(None, gt=0)
    idle_power_w: float | None = Field(None, ge=0)
    ram_gb: float | None = Field(None, gt=0, description="system memory (CPU-only fit)")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [key for key in ("build", "cloud", "price_usd") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of build (a catalog PC), cloud (a catalog instance type) "
                f"or price_usd (an inline box); got {', '.join(given) or 'none of them'}"
            )
        if self.spot and self.cloud is None:
            raise ValueError("spot applies to a cloud instance only (set cloud: <type>)")
        if self.price_usd is None and (self.gpu is not None or self.ram_gb is not None):
            raise ValueError("gpu and ram_gb describe an inline box; a catalog entry has its own")
        if self.price_usd is not None and self.gpu is None and self.ram_gb is None:
            raise ValueError(
                "an inline box without gpu is CPU only: give ram_gb (its memory holds the "
                "model), or gpu: <catalog GPU>"
            )
        if self.cloud is not None and (self.load_power_w or self.idle_power_w):
            raise ValueError("load_power_w/idle_power_w do not apply to a rented instance")
        return self

    @property
    def cpu_only(self) -> bool:
        return self.price_usd is not None and self.gpu is None

    def catalog_gpu(self, catalog: Catalog) -> str | None:
        """The catalog name of the GPU this identity has (``None``: CPU only).

        ``ValueError`` (with did-you-mean) for a build, instance or GPU the catalog lacks.
        """
        if self.build is not None:
            return catalog.hardware(self.build).gpu
        if self.cloud is not None:
            return catalog.cloud_instance(self.cloud).gpu
        return None if self.gpu is None else catalog.gpu(self.gpu).name

    def catalog_gpu_count(self, catalog: Catalog) -> int:
        """How many GPUs this identity has: the catalog build's or instance's count, or
        ``gpu_count`` of an inline box (1 for a CPU-only box: its memory is one device)."""
        if self.build is not None:
            return catalog.hardware(self.build).gpu_count
        if self.cloud is not None:
            return catalog.cloud_instance(self.cloud).gpu_count
        return self.gpu_count


def builds_with(catalog: Catalog, gpu_seen: str, gpu_count: int) -> list[str]:
    """Catalog hardware builds with ``gpu_count`` of the GPU NVML named ``gpu_seen``
    ("NVIDIA GeForce RTX 3060" is the catalog's "RTX 3060"), by name."""
    seen = normalise_name(gpu_seen)
    return sorted(
        build.name
        for build in catalog.hardware_builds
        if build.gpu_count == gpu_count and normalise_name(build.gpu) in seen
    )


def hardware_mismatch(
    identity: HardwareIdentity, catalog: Catalog, gpu_seen: str | None, gpu_count_seen: int | None
) -> str | None:
    """Why what NVML saw on the host (``gpu_seen`` x ``gpu_count_seen``; ``None``: no GPU /
    count not recorded) is not the hardware ``identity`` names, or ``None`` when it is.
    A count mismatch names the catalog builds that do have what was seen."""
    gpu = identity.catalog_gpu(catalog)
    if gpu is None or gpu_seen is None:
        if gpu == gpu_seen:
            return None
        return f"NVML saw {gpu_seen or 'no GPU'}, the hardware has {gpu or 'no GPU'}"
    if normalise_name(gpu) not in normalise_name(gpu_seen):
        return f"NVML saw a {gpu_seen}, the hardware has a {gpu}"
    count = identity.catalog_gpu_count(catalog)
    if gpu_count_seen is None or gpu_count_seen == count:
        return None
    matching = builds_with(catalog, gpu_seen, gpu_count_seen)
    hint = f" (catalog builds with that: {', '.join(matching)})" if matching else ""
    return f"NVML saw {gpu_count_seen} x {gpu_seen}, the hardware has {count} x {gpu}{hint}"


def _one_line(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "hardware"
    message = str(first["msg"]).removeprefix("Value error, ")
    got = "" if first["type"] == "missing" else f" (got {first['input']!r})"
    return f"{origin}: {where}: {message}{got}"


def parse_identity(data: Any, origin: str) -> HardwareIdentity:
    """Validate one identity; ``IdentityError`` names the field and value."""
    if not isinstance(data, dict):
        raise IdentityError(
            f"{origin}: expected a mapping (build, cloud or price_usd), got {data!r}"
        )
    try:
        return HardwareIdentity.model_validate(data)
    except ValidationError as error:
        raise IdentityError(_one_line(error, origin)) from None


class RunManifest(BaseModel):
    """``llmbox-run.json``: who was measured, on what hardware, which files the run wrote."""

    model_config = ConfigDict(extra="allow", frozen=True)

    manifest_version: int
    run_id: str = Field(min_length=1)
    host: str = Field(min_length=1, description="the inventory_hostname")
    created_at: str
    engine: str
    hardware: HardwareIdentity
    gpu_seen: str | None = Field(description="the GPU NVML saw during the run; null: none")
    # NVML's device count on the host (the bench result's metadata.gpu.count); absent from
    # manifests that predate it, when the run's result files say it instead
    gpu_count_seen: int | None = Field(None, ge=1, description="how many GPUs NVML listed")
    result_files: list[str]


def read_manifest(path: Path) -> RunManifest:
    """Parse a run manifest; ``IdentityError`` names the file and the problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IdentityError(f"run manifest {path}: not readable JSON ({error})") from None
    if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION:
        version = data.get("manifest_version") if isinstance(data, dict) else None
        raise IdentityError(
            f"run manifest {path}: manifest_version {version!r} is not supported "
            f"(this llmbox reads {MANIFEST_VERSION})"
        )
    try:
        return RunManifest.model_validate(data)
    except ValidationError as error:
        raise IdentityError(_one_line(error, f"run manifest {path}")) from None


def check_identity(data: Any, origin: str, catalog: Catalog | None = None) -> HardwareIdentity:
    """Validate an identity and its catalog names (did-you-mean on a typo)."""
    identity = parse_identity(data, origin)
    try:
        identity.catalog_gpu(catalog or load_catalog())
    except ValueError as error:
        raise IdentityError(f"{origin}: {error}") from None
    return identity


def main(argv: list[str] | None = None) -> int:
    """``python -m llmbox.cost.identity ORIGIN`` < identity JSON: exit 0 if usable, else
    2 with one line on stderr (the ``llm_benchmark`` role's preflight calls this)."""
    args = sys.argv[1:] if argv is None else argv
    origin = args[0] if args else "hardware"
    try:
        data = json.loads(sys.stdin.read() or "null")
        identity = check_identity(data, origin)
    except json.JSONDecodeError as error:
        print(f"{origin}: not valid JSON ({error.msg})", file=sys.stderr)
        return 2
    except IdentityError as error:
        print(str(error), file=sys.stderr)
        return 2
    print(identity.model_dump_json(exclude_none=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
