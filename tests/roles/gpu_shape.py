"""A "GPU-shaped" test host: what the GPU roles read on a machine with an NVIDIA GPU.

The nspawn test hosts have no GPU and a read-only /sys, so the host gets a made-up PCI
tree that the nvidia_driver role reads instead of /sys/bus/pci/devices (its test seam
``__nvidia_driver_sysfs_pci``, like NVIDIA's nvidia-driver-assistant --sys-path). It
proves the roles' decisions on a GPU host without a driver yet, not any real driver.
"""

from __future__ import annotations

from typing import Any

from llmbox.lab.testhosts import TestHost

FAKE_PCI = "/run/llmbox-fake-pci"
# Extra vars that point the roles at the made-up tree.
GPU_SHAPED: dict[str, Any] = {"__nvidia_driver_sysfs_pci": FAKE_PCI}


def make_gpu_shaped(host: TestHost) -> None:
    """One NVIDIA 3D controller (RTX 3060: device 0x2504, class 0x030200) and one
    non-GPU device (audio, class 0x040300), as /sys/bus/pci/devices lists them."""
    host.ssh(
        f"mkdir -p {FAKE_PCI}/0000:01:00.0 {FAKE_PCI}/0000:00:1f.3 && "
        f"cd {FAKE_PCI}/0000:01:00.0 && echo 0x10de > vendor && echo 0x2504 > device && "
        "echo 0x030200 > class && "
        f"cd {FAKE_PCI}/0000:00:1f.3 && echo 0x8086 > vendor && echo 0x7a50 > device && "
        "echo 0x040300 > class"
    )
