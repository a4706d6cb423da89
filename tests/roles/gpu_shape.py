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


def make_gpu_shaped(host: TestHost, gpus: int = 1) -> None:
    """``gpus`` NVIDIA 3D controllers (RTX 3060: device 0x2504, class 0x030200), each with
    its HDMI audio function (vendor 0x10de too, class 0x040300: not a GPU), and one non-GPU
    device (audio, class 0x040300), as /sys/bus/pci/devices lists them. Replaces any shape
    made before, so one host can be given another GPU count."""
    if gpus < 1:
        raise ValueError(f"gpus={gpus}; valid: 1 or more")
    nvidia = " && ".join(
        f"mkdir -p {FAKE_PCI}/0000:0{slot}:00.0 {FAKE_PCI}/0000:0{slot}:00.1 && "
        f"cd {FAKE_PCI}/0000:0{slot}:00.0 && echo 0x10de > vendor && echo 0x2504 > device && "
        "echo 0x030200 > class && "
        f"cd {FAKE_PCI}/0000:0{slot}:00.1 && echo 0x10de > vendor && echo 0x228e > device && "
        "echo 0x040300 > class"
        for slot in range(1, gpus + 1)
    )
    host.ssh(
        f"rm -rf {FAKE_PCI} && {nvidia} && mkdir -p {FAKE_PCI}/0000:00:1f.3 && "
        f"cd {FAKE_PCI}/0000:00:1f.3 && echo 0x8086 > vendor && echo 0x7a50 > device && "
        "echo 0x040300 > class"
    )
