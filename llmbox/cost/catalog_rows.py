"""Row types of the built-in catalog, one per CSV file in ``llmbox/cost/catalog/``.

Units are in the field names (and the CSV headers): ``_gb`` is 10^9 bytes, ``_gbps`` is
GB/s, ``_w`` watts, ``_usd_per_hour`` US dollars per hour. ``None`` means the source gives
no figure (a blank cell), never zero. Every row carries where it came from (``source``)
and how recent it is (``as_of``, ISO date).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    """A GPU model: memory, memory bandwidth (drives decode speed) and board power."""

    name: str
    vram_gb: float
    bandwidth_gbps: float
    tdp_w: float
    source: str
    as_of: str


@dataclass(frozen=True)
class CloudInstance:
    """A rentable GPU machine. Prices are a low-high range (equal when one price is known).

    ``region`` is ``None`` for offers that are not tied to a region (a rental marketplace);
    ``spot_*`` are ``None`` where no spot market is offered.
    """

    instance_type: str
    provider: str
    region: str | None
    gpu: str
    gpu_count: int
    vram_gb: float
    vcpus: int | None
    memory_gib: float | None
    on_demand_low_usd_per_hour: float
    on_demand_high_usd_per_hour: float
    spot_low_usd_per_hour: float | None
    spot_high_usd_per_hour: float | None
    source: str
    as_of: str


@dataclass(frozen=True)
class HardwareBuild:
    """An office PC bought once. ``price_usd`` is ``None`` when the source gives no price.

    ``typical_power_w`` is the whole system at the wall while generating, ``idle_power_w``
    the whole system idle; ``None`` where not measured (the model then estimates them).
    ``vram_gb`` is one GPU's memory; a build with ``gpu_count`` > 1 has that many.

    ``price_estimate`` / ``power_estimate``: blank when ``source`` gives the price / power
    figures as they are; otherwise the figure is an estimate (never a quoted price or a
    measurement) and this says how it was made, so the report marks it estimated.
    """

    name: str
    cpu: str
    ram_gb: float | None
    gpu: str
    gpu_count: int
    vram_gb: float
    price_usd: float | None
    typical_power_w: float | None
    idle_power_w: float | None
    source: str
    as_of: str
    price_estimate: str | None = None
    power_estimate: str | None = None


@dataclass(frozen=True)
class Throughput:
    """A published llama.cpp throughput: generation (tg) and prompt (pp) tokens/s, 1 stream."""

    gpu: str
    model: str
    quantization: str
    tg_tok_s: float
    pp_tok_s: float | None
    source: str
    as_of: str


@dataclass(frozen=True)
class ApiPrice:
    """A hosted API's price in US dollars per 1,000 input and output tokens."""

    name: str
    input_usd_per_1k_tokens: float
    output_usd_per_1k_tokens: float
    source: str
    as_of: str


@dataclass(frozen=True)
class ModelSpec:
    """An open model's shape: parameters (billions) and what sizes its KV cache.

    ``active_params_b`` is ``None`` for a dense model; for a mixture of experts it is the
    parameters one token reads (what the decode roofline divides the bandwidth by).
    """

    name: str
    params_b: float
    active_params_b: float | None
    layers: int
    kv_heads: int
    head_dim: int
    source: str
    as_of: str


@dataclass(frozen=True)
class SystemPower:
    """A measured whole-system power figure at the wall while generating, and idle."""

    gpu: str
    system: str
    model: str
    tok_s: float
    load_power_w: float
    idle_power_w: float
    source: str
    as_of: str
