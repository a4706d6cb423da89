"""The CUDA variants of the serving units and nvidia_driver's nvidia-uvm loader, as systemd
sees them on a real test host (no GPU here: rendered and verified, never started).

Hardened CUDA units cannot load nvidia-uvm themselves (NoNewPrivileges stops CUDA's setuid
nvidia-modprobe), so they must want and come after the root unit that does; vLLM's must
not reach for nvcc (no toolkit on vLLM hosts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from playbook_runner import unit_exposure

from llmbox.lab.testhosts import TestHost

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
UVM_UNIT = "llmbox-nvidia-uvm.service"
GPU_EXPOSURE_GOAL = 4.0  # issue 11: the CUDA units, with the NVIDIA device nodes only


def _render(tmp_path: Path, role: str, template: str, overrides: dict[str, Any]) -> str:
    """Renders one role template with Ansible's template module (local), with the role's
    defaults and vars as the role would have them."""
    vars_files = [str(ROLES / role / "defaults" / "main.yml")]
    if (ROLES / role / "vars" / "main.yml").exists():
        vars_files.append(str(ROLES / role / "vars" / "main.yml"))
    dest = tmp_path / template.removesuffix(".j2")
    play = [
        {
            "name": f"Render {template}",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars_files": vars_files,
            "tasks": [
                {
                    "name": "Render",
                    "ansible.builtin.template": {
                        "src": str(ROLES / role / "templates" / template),
                        "dest": str(dest),
                        "mode": "0600",
                    },
                }
            ],
        }
    ]
    playbook = tmp_path / f"render-{role}.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    extra = tmp_path / f"vars-{role}.json"
    extra.write_text(json.dumps(overrides))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
         "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{extra}", str(playbook)],
        capture_output=True, text=True, check=False, cwd=REPO,
        env=os.environ | {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest.read_text()


def _directive(unit: str, key: str) -> list[str]:
    return [
        word
        for line in unit.splitlines()
        if line.startswith(f"{key}=")
        for word in line.split("=", 1)[1].split()
    ]


@pytest.mark.real_host
def test_cuda_units_want_the_root_nvidia_uvm_loader_and_systemd_accepts_them(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    llama = _render(
        tmp_path,
        "llama_cpp",
        "llama-server.service.j2",
        {"__llama_cpp_backend": "cuda", "llama_cpp_api_key": "k" * 24},
    )
    vllm = _render(
        tmp_path,
        "vllm",
        "vllm.service.j2",
        {"vllm_api_key": "k" * 24, "__vllm_tensor_parallel_size": 1, "__vllm_model_path": "/m"},
    )
    uvm_unit = _render(tmp_path, "nvidia_driver", "llmbox-nvidia-uvm.service.j2", {
        "__nvidia_driver_uvm_script": "/usr/local/sbin/llmbox-nvidia-uvm"})  # fmt: skip
    uvm_script = _render(tmp_path, "nvidia_driver", "llmbox-nvidia-uvm.sh.j2", {})

    for unit in (llama, vllm):
        assert UVM_UNIT in _directive(unit, "After")
        assert UVM_UNIT in _directive(unit, "Wants")
        assert "NoNewPrivileges=yes" in unit and "ProtectKernelModules=yes" in unit
    # vLLM hosts have no CUDA toolkit: the nvcc-compiled FlashInfer sampler is off.
    assert "Environment=VLLM_USE_FLASHINFER_SAMPLER=0" in vllm
    assert "ExecStart=/usr/local/sbin/llmbox-nvidia-uvm" in uvm_unit
    assert "NoNewPrivileges=" not in uvm_unit  # it is the root helper the others rely on

    host = boot_host("debian12")
    host.ssh(
        "useradd --system --no-create-home llama && useradd --system --no-create-home vllm && "
        "mkdir -p /opt/llama.cpp/bin /opt/vllm/venv/bin /etc/vllm /etc/llama-server "
        "/var/cache/vllm && ln -s /bin/true /opt/llama.cpp/bin/llama-server && "
        "ln -s /bin/true /opt/llama.cpp/bin/llama-server-check-model && "
        "ln -s /bin/true /opt/vllm/venv/bin/vllm && touch /etc/vllm/vllm.env "
        "/etc/llama-server/llama-server.env"
    )
    files = {
        "/etc/systemd/system/llama-server.service": llama,
        "/etc/systemd/system/vllm.service": vllm,
        f"/etc/systemd/system/{UVM_UNIT}": uvm_unit,
        "/usr/local/sbin/llmbox-nvidia-uvm": uvm_script,
    }
    for path, text in files.items():
        host.ssh(f"cat > {path} <<'EOF'\n{text}EOF")
    host.ssh(
        "chmod 755 /usr/local/sbin/llmbox-nvidia-uvm && sh -n /usr/local/sbin/llmbox-nvidia-uvm"
    )

    verify = host.ssh(
        f"systemd-analyze verify /etc/systemd/system/{UVM_UNIT} "
        "/etc/systemd/system/llama-server.service /etc/systemd/system/vllm.service",
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    for name in ("llama-server.service", "vllm.service", UVM_UNIT):
        assert name not in verify.stderr, verify.stderr
    # The CUDA units' exposure, read from their files (they cannot run without a GPU).
    for name in ("llama-server.service", "vllm.service"):
        exposure = unit_exposure(host, name, offline_file=f"/etc/systemd/system/{name}")
        print(f"measured: systemd-analyze security --offline=yes {name} (CUDA): {exposure}")
        assert exposure <= GPU_EXPOSURE_GOAL, name
