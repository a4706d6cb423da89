"""Read the built-in catalog (``llmbox/cost/catalog/*.csv``) and look names up in it.

Fetching prices is kept apart from reading them: the CSVs are edited by hand from the
sources named in their ``Source`` column. Each file has a fixed PascalCase header with the
unit in the column name; a file whose header differs is rejected rather than guessed at.
Unknown names raise ``ValueError`` with "did you mean ..." suggestions.
"""

from __future__ import annotations

import csv
import difflib
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

from llmbox.cost.catalog_rows import (
    ApiPrice,
    CloudInstance,
    Gpu,
    HardwareBuild,
    ModelSpec,
    SystemPower,
    Throughput,
)

__all__ = [
    "ApiPrice",
    "Catalog",
    "CloudInstance",
    "Gpu",
    "HardwareBuild",
    "ModelSpec",
    "SystemPower",
    "Throughput",
    "catalog_file",
    "load_catalog",
    "normalise_name",
]

Row = TypeVar("Row")

# column kinds: "s" text, "s?" optional text, "f" number >= 0, "f?" optional number, "i" int
_COLUMNS: dict[str, tuple[type[Any], list[tuple[str, str, str]]]] = {
    "gpus.csv": (
        Gpu,
        [
            ("Name", "name", "s"),
            ("VramGB", "vram_gb", "f"),
            ("BandwidthGBps", "bandwidth_gbps", "f"),
            ("TdpW", "tdp_w", "f"),
        ],
    ),
    "cloud.csv": (
        CloudInstance,
        [
            ("InstanceType", "instance_type", "s"),
            ("Provider", "provider", "s"),
            ("Region", "region", "s?"),
            ("Gpu", "gpu", "s"),
            ("GpuCount", "gpu_count", "i"),
            ("VramGB", "vram_gb", "f"),
            ("VCpus", "vcpus", "i?"),
            ("MemoryGiB", "memory_gib", "f?"),
            ("OnDemandLowUsdPerHour", "on_demand_low_usd_per_hour", "f"),
            ("OnDemandHighUsdPerHour", "on_demand_high_usd_per_hour", "f"),
            ("SpotLowUsdPerHour", "spot_low_usd_per_hour", "f?"),
            ("SpotHighUsdPerHour", "spot_high_usd_per_hour", "f?"),
        ],
    ),
    "hardware.csv": (
        HardwareBuild,
        [
            ("Name", "name", "s"),
            ("Cpu", "cpu", "s"),
            ("RamGB", "ram_gb", "f?"),
            ("Gpu", "gpu", "s"),
            ("GpuCount", "gpu_count", "i"),
            ("VramGB", "vram_gb", "f"),
            ("PriceUsd", "price_usd", "f?"),
            ("TypicalPowerW", "typical_power_w", "f?"),
            ("IdlePowerW", "idle_power_w", "f?"),
            ("PriceEstimate", "price_estimate", "s?"),
            ("PowerEstimate", "power_estimate", "s?"),
        ],
    ),
    "throughput.csv": (
        Throughput,
        [
            ("Gpu", "gpu", "s"),
            ("Model", "model", "s"),
            ("Quantization", "quantization", "s"),
            ("TgTokPerS", "tg_tok_s", "f"),
            ("PpTokPerS", "pp_tok_s", "f?"),
        ],
    ),
    "api.csv": (
        ApiPrice,
        [
            ("Name", "name", "s"),
            ("InputUsdPer1KTokens", "input_usd_per_1k_tokens", "f"),
            ("OutputUsdPer1KTokens", "output_usd_per_1k_tokens", "f"),
        ],
    ),
    "models.csv": (
        ModelSpec,
        [
            ("Name", "name", "s"),
            ("ParamsB", "params_b", "f"),
            ("ActiveParamsB", "active_params_b", "f?"),
            ("Layers", "layers", "i"),
            ("KvHeads", "kv_heads", "i"),
            ("HeadDim", "head_dim", "i"),
        ],
    ),
    "power.csv": (
        SystemPower,
        [
            ("Gpu", "gpu", "s"),
            ("System", "system", "s"),
            ("Model", "model", "s"),
            ("TokPerS", "tok_s", "f"),
            ("LoadPowerW", "load_power_w", "f"),
            ("IdlePowerW", "idle_power_w", "f"),
        ],
    ),
}
_PROVENANCE = [("Source", "source", "s"), ("AsOf", "as_of", "s")]


def normalise_name(name: str) -> str:
    """Key for forgiving lookups: "NVIDIA GeForce RTX 4090", "rtx4090" -> "rtx4090"."""
    lowered = name.lower().replace("nvidia", "").replace("geforce", "")
    return re.sub(r"[^a-z0-9]", "", lowered)


def _parse_cell(raw: str, kind: str, where: str) -> object:
    text = raw.strip()
    if text == "":
        if kind.endswith("?"):
            return None
        raise ValueError(f"{where}: a value is required here, got a blank cell")
    if kind.startswith("s"):
        return text
    try:
        number = int(text) if kind.startswith("i") else float(text)
    except ValueError:
        expected = "a whole number" if kind.startswith("i") else "a number"
        raise ValueError(f"{where}: {text!r} is not {expected}") from None
    if number < 0:
        raise ValueError(f"{where}: {text!r} is negative; catalog figures are >= 0")
    return number


def _read_rows(
    path: Path, row_type: type[Row], columns: list[tuple[str, str, str]]
) -> tuple[Row, ...]:
    spec = [*columns, *_PROVENANCE]
    expected_header = [header for header, _, _ in spec]
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if header != expected_header:
            raise ValueError(
                f"{path.name}: header {','.join(header)!r} does not match the expected "
                f"{','.join(expected_header)!r}"
            )
        rows: list[Row] = []
        for line_number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(spec):
                raise ValueError(
                    f"{path.name} line {line_number}: {len(cells)} cells, expected {len(spec)}"
                )
            values = {
                field: _parse_cell(cell, kind, f"{path.name} line {line_number} column {header}")
                for cell, (header, field, kind) in zip(cells, spec, strict=True)
            }
            rows.append(row_type(**values))
    return tuple(rows)


def _lookup(name: str, rows: Iterable[Row], key: Callable[[Row], str], what: str) -> Row:
    by_key = {normalise_name(key(row)): row for row in rows}
    found = by_key.get(normalise_name(name))
    if found is not None:
        return found
    names = [key(row) for row in by_key.values()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    if not close:  # try the forgiving key too: "rtx4090" is close to "RTX 4090"
        normalised = {normalise_name(n): n for n in names}
        keys = difflib.get_close_matches(normalise_name(name), list(normalised), n=3, cutoff=0.4)
        close = [normalised[k] for k in keys]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown {what} {name!r}{hint} (known: {', '.join(sorted(names))})")


@dataclass(frozen=True)
class Catalog:
    """Every row of the catalog, with lookups that suggest near names on a miss."""

    gpus: tuple[Gpu, ...]
    cloud_instances: tuple[CloudInstance, ...]
    hardware_builds: tuple[HardwareBuild, ...]
    throughputs: tuple[Throughput, ...]
    api_prices: tuple[ApiPrice, ...]
    models: tuple[ModelSpec, ...]
    system_power: tuple[SystemPower, ...]

    def gpu(self, name: str) -> Gpu:
        return _lookup(name, self.gpus, lambda row: row.name, "GPU")

    def cloud_instance(self, name: str) -> CloudInstance:
        return _lookup(name, self.cloud_instances, lambda row: row.instance_type, "instance type")

    def hardware(self, name: str) -> HardwareBuild:
        return _lookup(name, self.hardware_builds, lambda row: row.name, "hardware build")

    def api(self, name: str) -> ApiPrice:
        return _lookup(name, self.api_prices, lambda row: row.name, "hosted API")

    def model(self, name: str) -> ModelSpec:
        return _lookup(name, self.models, lambda row: row.name, "model")

    def throughput(self, gpu: str, model: str, quantization: str) -> Throughput | None:
        """The published throughput for exactly this GPU, model and quantization, if any."""
        wanted = (normalise_name(gpu), normalise_name(model), normalise_name(quantization))
        for row in self.throughputs:
            key = (
                normalise_name(row.gpu),
                normalise_name(row.model),
                normalise_name(row.quantization),
            )
            if key == wanted:
                return row
        return None

    def power(self, gpu: str) -> SystemPower | None:
        """A measured whole-system power figure for a PC with this GPU, if any."""
        wanted = normalise_name(gpu)
        return next((row for row in self.system_power if normalise_name(row.gpu) == wanted), None)


def _default_directory() -> Path:
    return Path(str(files("llmbox.cost").joinpath("catalog")))


def catalog_file(file_name: str) -> Path:
    """Path of one of the built-in catalog CSVs, e.g. ``catalog_file("cloud.csv")``."""
    if file_name not in _COLUMNS:
        raise ValueError(f"unknown catalog file {file_name!r} (known: {', '.join(_COLUMNS)})")
    return _default_directory() / file_name


def load_catalog(directory: Path | str | None = None) -> Catalog:
    """Read every catalog CSV in ``directory`` (default: the one shipped with llmbox).

    A file that is missing from a custom directory counts as empty, so a test can write
    just the file it exercises; a directory with none of the files is an error.
    """
    if directory is None:
        return _load_builtin()
    return _load(Path(directory))


@functools.cache
def _load_builtin() -> Catalog:
    return _load(_default_directory())


def _load(directory: Path) -> Catalog:
    present = [name for name in _COLUMNS if (directory / name).is_file()]
    if not present:
        raise ValueError(
            f"catalog directory {str(directory)!r} holds none of {', '.join(_COLUMNS)}"
        )
    tables: dict[str, tuple[Any, ...]] = {}
    for file_name, (row_type, columns) in _COLUMNS.items():
        path = directory / file_name
        tables[file_name] = _read_rows(path, row_type, columns) if path.is_file() else ()
    return Catalog(
        gpus=tables["gpus.csv"],
        cloud_instances=tables["cloud.csv"],
        hardware_builds=tables["hardware.csv"],
        throughputs=tables["throughput.csv"],
        api_prices=tables["api.csv"],
        models=tables["models.csv"],
        system_power=tables["power.csv"],
    )
