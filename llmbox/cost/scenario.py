"""The scenario YAML: a usage profile, a model, prices of power and money, options to compare.

Validated with pydantic before any computation; a bad scenario gives one line naming the
field and the bad value (``ScenarioError``). Catalog names are checked later, when the
options are resolved against the catalog (``llmbox.cost.options``).
"""

from __future__ import annotations

from enum import StrEnum
from importlib.resources import files
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmbox.cost.fit import Quantization

SEED_SCENARIO = "seed.yaml"


class ScenarioError(ValueError):
    """A scenario that cannot be used, with a one-line reason naming the bad value."""


class OptionKind(StrEnum):
    OFFICE = "office"  # bought once, runs on the office's electricity
    CLOUD = "cloud"  # rented by the hour
    API = "api"  # a hosted API billed per token


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Usage(_Strict):
    """How much the model is used. Defaults are the seed's 8 h/day x 26 days/month."""

    hours_per_day: float = Field(8, gt=0, le=24, description="hours of use per working day")
    days_per_month: float = Field(26, gt=0, le=31, description="working days per month")
    demand_tokens_per_month: float | None = Field(
        None, gt=0, description="generated tokens needed per month; sizes the number of boxes"
    )
    concurrency: int = Field(
        1, ge=1, description="requests served at once; picks which measured bench run applies"
    )
    input_tokens_per_output_token: float = Field(
        1.0, ge=0, description="prompt tokens an API would bill per generated token"
    )
    office_stays_on: bool = Field(
        False, description="office boxes stay on (idle) outside working hours, all month"
    )


class ModelChoice(_Strict):
    """The model to serve: a catalog model name, or an inline one with ``params_b``."""

    name: str = Field(min_length=1)
    quantization: Quantization = Quantization.Q4_K_M
    context_tokens: int = Field(4096, ge=1)
    parallel_slots: int = Field(1, ge=1)
    params_b: float | None = Field(None, gt=0, description="billions of parameters (inline)")
    layers: int | None = Field(None, ge=1)
    kv_heads: int | None = Field(None, ge=1)
    head_dim: int | None = Field(None, ge=1)


class ServiceLevel(_Strict):
    """How fast users must get answers; the report then prices each measured box at the
    highest throughput it delivered while meeting this (``llmbox.cost.capacity``)."""

    ttft_p95_ms: float | None = Field(
        None, gt=0, description="95th percentile time to first token, ms, at most"
    )
    itl_p95_ms: float | None = Field(
        None, gt=0, description="95th percentile inter-token latency, ms, at most"
    )

    @model_validator(mode="after")
    def _some_limit(self) -> Self:
        if self.ttft_p95_ms is None and self.itl_p95_ms is None:
            raise ValueError("a service level needs ttft_p95_ms and/or itl_p95_ms")
        return self


class OptionSpec(_Strict):
    """One option: ``hardware: <catalog build>``, ``cloud: <catalog instance>``, or inline.

    Inline boxes give ``name``, ``kind`` and ``gpu`` (a catalog GPU) and their price
    (``price_usd`` for office, ``usd_per_hour`` for cloud); an office box with no GPU gives
    ``ram_gb`` (system memory, which then holds the model) instead. Any box may override
    throughput (``tok_s``: the box's tokens/s at the scenario's concurrency) or power, and
    name the bench ``host`` whose results it uses (and ``engine``, to take only that
    engine's runs of a host measured with several). An inline hosted API gives ``name``,
    ``kind: api`` and its two prices per 1M tokens (``input_usd_per_mtok``,
    ``output_usd_per_mtok``); catalog APIs are listed under ``apis:``.
    """

    hardware: str | None = None
    cloud: str | None = None
    spot: bool = False
    name: str | None = None
    kind: OptionKind | None = None
    gpu: str | None = None
    gpu_count: int = Field(1, ge=1)
    price_usd: float | None = Field(None, ge=0)
    usd_per_hour: float | None = Field(None, ge=0)
    usd_per_hour_high: float | None = Field(None, ge=0)
    load_power_w: float | None = Field(None, ge=0)
    idle_power_w: float | None = Field(None, ge=0)
    tok_s: float | None = Field(None, gt=0, description="tokens/s per box, if known")
    host: str | None = Field(None, description="bench result host name to take figures from")
    engine: str | None = Field(
        None,
        min_length=1,
        description="with host: only its runs with this engine (llama.cpp, vllm)",
    )
    ram_gb: float | None = Field(None, gt=0, description="system memory of a CPU-only box")
    origin: str | None = Field(
        None, description="where the inline figures were typed (default: the scenario)"
    )
    input_usd_per_mtok: float | None = Field(None, ge=0, description="API: $ per 1M prompt tokens")
    output_usd_per_mtok: float | None = Field(
        None, ge=0, description="API: $ per 1M generated tokens"
    )

    @model_validator(mode="after")
    def _one_way_of_naming(self) -> Self:
        if self.kind is OptionKind.API:
            self._api_fields()
            return self
        given = [key for key in ("hardware", "cloud") if getattr(self, key) is not None]
        if len(given) > 1:
            raise ValueError("give either 'hardware' or 'cloud', not both")
        if not given:
            cpu_only = self.kind is OptionKind.OFFICE and self.ram_gb is not None
            needed = ("name", "kind") if cpu_only else ("name", "kind", "gpu")
            missing = [key for key in needed if getattr(self, key) is None]
            if missing:
                raise ValueError(
                    "an option needs 'hardware: <build>' or 'cloud: <instance type>', or an "
                    f"inline name, kind and gpu (or ram_gb for a CPU-only office box; "
                    f"missing: {', '.join(missing)})"
                )
            if self.kind is OptionKind.CLOUD and self.usd_per_hour is None:
                raise ValueError(f"inline cloud option {self.name!r} needs usd_per_hour")
        if (self.hardware and self.kind is OptionKind.CLOUD) or (
            self.cloud and self.kind is OptionKind.OFFICE
        ):
            raise ValueError(f"kind {self.kind.value!r} contradicts hardware/cloud")
        self._fields_fit_the_kind()
        if self.engine is not None and self.host is None:
            raise ValueError(
                f"engine {self.engine!r} picks among a host's bench runs; it needs 'host: <name>'"
            )
        if self.spot and self.cloud is None:
            raise ValueError(
                "'spot' picks a catalog instance's spot prices; it needs 'cloud: <instance>'"
            )
        if (
            self.usd_per_hour is not None
            and self.usd_per_hour_high is not None
            and self.usd_per_hour_high < self.usd_per_hour
        ):
            raise ValueError(
                f"usd_per_hour_high ({self.usd_per_hour_high}) is below usd_per_hour "
                f"({self.usd_per_hour})"
            )
        return self

    def _api_fields(self) -> None:
        """An inline API: a name and two prices, nothing a box would have."""
        missing = [
            key for key in ("name", "input_usd_per_mtok", "output_usd_per_mtok")
            if getattr(self, key) is None
        ]  # fmt: skip
        if missing:
            raise ValueError(f"an inline hosted API (kind: api) needs {', '.join(missing)}")
        box_fields = ("hardware", "cloud", "gpu", "price_usd", "usd_per_hour", "usd_per_hour_high",
                      "load_power_w", "idle_power_w", "tok_s", "host", "engine",
                      "ram_gb")  # fmt: skip
        given = [key for key in box_fields if getattr(self, key) is not None]
        if self.spot:
            given.append("spot")
        if given:
            raise ValueError(f"{', '.join(given)} does not apply to a hosted API (kind: api)")

    def _fields_fit_the_kind(self) -> None:
        """Reject a field the option's kind would silently ignore."""
        if (self.hardware or self.cloud) and self.gpu is not None:
            raise ValueError("'gpu' is for inline options; a catalog build or instance has its own")
        if self.ram_gb is not None and (self.gpu is not None or self.kind is not OptionKind.OFFICE):
            raise ValueError("'ram_gb' is for an inline office box without a GPU (CPU only)")
        office = self.hardware is not None or self.kind is OptionKind.OFFICE
        ignored: tuple[str, ...] = ("usd_per_hour", "usd_per_hour_high") if office else (
            "price_usd", "load_power_w", "idle_power_w")  # fmt: skip
        ignored += ("input_usd_per_mtok", "output_usd_per_mtok")
        given = [field for field in ignored if getattr(self, field) is not None]
        if given:
            kind = "office" if office else "cloud"
            raise ValueError(f"{', '.join(given)} does not apply to a {kind} option")


class Scenario(_Strict):
    """A whole rent-or-buy question."""

    name: str = Field(min_length=1)
    description: str = ""
    usage: Usage = Usage()
    model: ModelChoice
    electricity_usd_per_kwh: float = Field(ge=0)
    amortisation_months: int = Field(36, ge=1, description="months to spread a purchase over")
    horizon_months: int = Field(36, ge=1, le=240, description="months shown in the curves")
    options: list[OptionSpec] = Field(min_length=1)
    apis: list[str] = Field(default_factory=list, description="catalog hosted APIs to compare")
    service_level: ServiceLevel | None = Field(
        None, description="latency users must get; measured boxes are taken at it"
    )


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "scenario"


def _one_line(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    where = _location(tuple(first["loc"]))
    message = first["msg"][0].lower() + first["msg"][1:]
    message = message.removeprefix("value error, ")
    got = "" if first["type"] == "missing" else f" (got {first['input']!r})"
    if first["type"] == "model_type" or first["type"].endswith("model_attributes_type"):
        got = f" (got {type(first['input']).__name__})"
    more = error.error_count() - 1
    also = f"; {more} more problem(s) after fixing this one" if more else ""
    return f"{origin}: {where}: {message}{got}{also}"


def parse_scenario(data: Any, origin: str = "scenario") -> Scenario:
    """Validate already-parsed YAML data; ``origin`` names it in the error."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin}: expected a mapping of scenario fields, got {data!r}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(_one_line(error, origin)) from None


def load_scenario(path: Path | str | None = None) -> Scenario:
    """Read and validate a scenario YAML file (default: the built-in seed scenario)."""
    if path is None:
        text = files("llmbox.cost").joinpath("scenarios", SEED_SCENARIO).read_text("utf-8")
        return parse_scenario(yaml.safe_load(text), "built-in seed scenario")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"cannot read scenario {str(path)!r}: {error.strerror}") from None
    except UnicodeDecodeError as error:  # a binary file, or text in another encoding
        byte = error.object[error.start]
        raise ScenarioError(
            f"{path}: not a UTF-8 text file (byte 0x{byte:02x} at offset {error.start}); "
            "a scenario is a YAML text file"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ScenarioError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_scenario(data, str(path))
