"""Telemetry of the machine the bench runs on, sampled in a thread during each level.

GPU figures come from NVML (nvidia-ml-py); CPU and memory from psutil. A host with no
NVIDIA GPU gets ``gpu: null`` and a ``gpu_note`` saying why, never a crash. The GPU
source is an interface so its maths (means, maxima, integrated energy) can be tested
with readings chosen by hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from llmbox.bench.schema import GpuInfo

_MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuReading:
    """All GPUs of the host at one instant: power and memory summed, the rest averaged."""

    power_w: float
    util_pct: float
    mem_used_mib: float
    temp_c: float
    sm_clock_mhz: float


@dataclass(frozen=True)
class Sample:
    t_s: float  # monotonic clock
    cpu_util_pct: float
    mem_used_mib: float
    gpu: GpuReading | None


class GpuSource(Protocol):
    def read(self) -> GpuReading: ...

    def close(self) -> None: ...


class NvmlGpuSource:
    """Reads every NVIDIA GPU through NVML. Construct with :func:`detect_gpu`."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    def read(self) -> GpuReading:
        nvml = self._nvml
        power, util, mem, temp, clock = [], [], [], [], []
        for handle in self._handles:
            power.append(nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)  # mW -> W
            util.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            mem.append(nvml.nvmlDeviceGetMemoryInfo(handle).used / _MIB)
            temp.append(float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)))
            clock.append(float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)))
        count = len(self._handles)
        return GpuReading(sum(power), sum(util) / count, sum(mem), max(temp), sum(clock) / count)

    def close(self) -> None:
        self._nvml.nvmlShutdown()


def detect_gpu() -> tuple[GpuInfo | None, str | None, GpuSource | None]:
    """(GPU description, note, source); on a GPU-less host (None, why, None)."""
    try:
        import pynvml  # noqa: PLC0415  (nvidia-ml-py: only when measuring)

        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError
        return None, f"no NVIDIA GPU: NVML not available ({exc})", None
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            pynvml.nvmlShutdown()
            return None, "no NVIDIA GPU: NVML found 0 devices", None
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()  # e.g. 12040 -> "12.4"
        info = GpuInfo(
            name=_text(pynvml.nvmlDeviceGetName(handles[0])),
            count=count,
            driver=_text(pynvml.nvmlSystemGetDriverVersion()),
            cuda=f"{cuda // 1000}.{cuda % 1000 // 10}",
            memory_total_mib=int(pynvml.nvmlDeviceGetMemoryInfo(handles[0]).total // _MIB),
        )
    except Exception as exc:
        pynvml.nvmlShutdown()
        return None, f"NVIDIA GPU present but NVML failed to describe it ({exc})", None
    return info, None, NvmlGpuSource(pynvml, handles)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def psutil_host_reading() -> tuple[float, float]:
    """(system-wide CPU %, used memory MiB) since the previous call."""
    import psutil  # noqa: PLC0415  (only when measuring)

    return psutil.cpu_percent(interval=None), psutil.virtual_memory().used / _MIB


@dataclass(frozen=True)
class TelemetrySummary:
    gpu_power_w_mean: float | None
    gpu_util_pct_mean: float | None
    gpu_mem_used_mib_max: float | None
    gpu_energy_j: float | None
    gpu_temp_c_max: float | None
    gpu_sm_clock_mhz_mean: float | None
    cpu_util_pct_mean: float | None
    mem_used_mib_max: float | None
    samples: int


def trapezoid_energy_j(times_s: Sequence[float], power_w: Sequence[float]) -> float:
    """Energy in joules: power integrated over time with the trapezoid rule."""
    return sum(
        (t1 - t0) * (p0 + p1) / 2
        for t0, t1, p0, p1 in zip(times_s, times_s[1:], power_w, power_w[1:], strict=False)
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(samples: Sequence[Sample]) -> TelemetrySummary:
    gpu = [(s.t_s, s.gpu) for s in samples if s.gpu is not None]
    readings = [g for _, g in gpu]
    # psutil's first cpu_percent() call has no interval to measure over and says 0.
    cpu = [s.cpu_util_pct for s in samples[1:]]
    return TelemetrySummary(
        gpu_power_w_mean=_mean([g.power_w for g in readings]),
        gpu_util_pct_mean=_mean([g.util_pct for g in readings]),
        gpu_mem_used_mib_max=max((g.mem_used_mib for g in readings), default=None),
        gpu_energy_j=(
            trapezoid_energy_j([t for t, _ in gpu], [g.power_w for g in readings])
            if len(readings) >= 2
            else None
        ),
        gpu_temp_c_max=max((g.temp_c for g in readings), default=None),
        gpu_sm_clock_mhz_mean=_mean([g.sm_clock_mhz for g in readings]),
        cpu_util_pct_mean=_mean(cpu),
        mem_used_mib_max=max((s.mem_used_mib for s in samples), default=None),
        samples=len(samples),
    )


class TelemetrySampler:
    """Samples every ``interval_s`` in a daemon thread between start() and stop()."""

    def __init__(
        self,
        gpu: GpuSource | None,
        interval_s: float = 0.2,
        host_reader: Callable[[], tuple[float, float]] = psutil_host_reading,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gpu = gpu
        self._interval_s = interval_s
        self._host_reader = host_reader
        self._clock = clock
        self._samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample_once(self) -> None:
        cpu, mem = self._host_reader()
        gpu = self._gpu.read() if self._gpu is not None else None
        self._samples.append(Sample(self._clock(), cpu, mem, gpu))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self._interval_s)

    def start(self) -> None:
        self._samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="llmbox-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> TelemetrySummary:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample_once()  # close the window at the stop instant for the energy integral
        return summarize(self._samples)
