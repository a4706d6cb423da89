"""Telemetry: the GPU maths with readings chosen by hand, the GPU-less path for real."""

from __future__ import annotations

import itertools
import shutil
import sys
import time
import types

import pytest

from llmbox.bench.schema import GpuInfo
from llmbox.bench.telemetry import (
    GpuReading,
    TelemetrySampler,
    detect_gpu,
    summarize,
    trapezoid_energy_j,
)


def test_trapezoid_energy_by_hand() -> None:
    # 100 W -> 200 W over 2 s, then 200 W flat for 1 s: 300 J + 200 J
    assert trapezoid_energy_j([0.0, 2.0, 3.0], [100.0, 200.0, 200.0]) == pytest.approx(500.0)


class _ScriptedGpu:
    """Readings chosen by hand, standing in for NVML on a machine without a GPU."""

    def __init__(self, power: list[float]) -> None:
        self._power = iter(power)
        self.closed = False

    def read(self) -> GpuReading:
        watts = next(self._power)
        return GpuReading(
            power_w=watts, util_pct=watts / 4, mem_used_mib=watts * 10, temp_c=50, sm_clock_mhz=1500
        )

    def close(self) -> None:
        self.closed = True


def test_sampler_summary_from_scripted_readings() -> None:
    clock = itertools.count(start=0.0, step=0.5)  # a sample every 0.5 s
    host = iter([(0.0, 1000.0), (40.0, 1100.0), (60.0, 1050.0), (80.0, 900.0)])
    sampler = TelemetrySampler(
        _ScriptedGpu([100.0, 300.0, 300.0, 100.0]),
        host_reader=lambda: next(host),
        clock=lambda: next(clock),
    )
    for _ in range(4):
        sampler.sample_once()
    summary = summarize(sampler._samples)
    assert summary.gpu_power_w_mean == pytest.approx(200.0)
    # trapezoids of 0.5 s: (100+300)/2 + (300+300)/2 + (300+100)/2 = 700 W, x 0.5 s = 350 J
    assert summary.gpu_energy_j == pytest.approx(350.0)
    assert summary.gpu_util_pct_mean == pytest.approx(50.0)
    assert summary.gpu_mem_used_mib_max == pytest.approx(3000.0)
    # psutil's first reading has no interval behind it and is left out: (40+60+80)/3
    assert summary.cpu_util_pct_mean == pytest.approx(60.0)
    assert summary.mem_used_mib_max == pytest.approx(1100.0)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has an NVIDIA GPU")
def test_no_gpu_host_reports_why_and_samples_cpu() -> None:
    gpu, note, source = detect_gpu()  # real NVML lookup on this GPU-less machine
    assert gpu is None
    assert source is None
    assert note is not None
    assert note.startswith("no NVIDIA GPU")
    sampler = TelemetrySampler(source, interval_s=0.05)
    sampler.start()
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:  # CPU work for the sampler to see
        sum(i * i for i in range(1000))
    summary = sampler.stop()
    assert summary.gpu_power_w_mean is None
    assert summary.gpu_energy_j is None
    assert summary.samples >= 5
    assert summary.cpu_util_pct_mean is not None
    assert summary.cpu_util_pct_mean > 0
    assert summary.mem_used_mib_max is not None
    assert summary.mem_used_mib_max > 0


class _FakeNvml:
    """The pynvml calls detect_gpu and NvmlGpuSource make, with two GPUs' figures
    chosen by hand (NVML's units: mW, bytes, CUDA version as 1000*major + 10*minor)."""

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    def __init__(self) -> None:
        self.shut_down = False

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54"

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA GeForce RTX 4090"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> types.SimpleNamespace:
        gib = 1024**3
        return types.SimpleNamespace(total=24 * gib, used=(handle + 1) * gib)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return [250_500, 149_500][handle]  # mW

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(gpu=[90, 30][handle])

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return [71, 64][handle]

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        return [2500, 2100][handle]


def test_nvml_path_converts_units_and_aggregates_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpu, note, source = detect_gpu()
    assert note is None
    assert gpu == GpuInfo(
        name="NVIDIA GeForce RTX 4090", count=2, driver="550.54", cuda="12.4",
        memory_total_mib=24 * 1024,
    )  # fmt: skip
    assert source is not None
    reading = source.read()
    assert reading.power_w == pytest.approx(400.0)  # 250.5 W + 149.5 W
    assert reading.util_pct == pytest.approx(60.0)  # mean of 90 and 30
    assert reading.mem_used_mib == pytest.approx(3 * 1024)  # 1 GiB + 2 GiB
    assert reading.temp_c == 71  # the hotter GPU
    assert reading.sm_clock_mhz == pytest.approx(2300.0)
    source.close()
    assert fake.shut_down
