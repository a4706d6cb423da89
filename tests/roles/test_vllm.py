"""vllm: preflight on GPU-less systemd-nspawn test hosts, templates through Ansible.

vLLM's wheels are CUDA builds and the test hosts have no GPU, so the role's
install/start path is not exercised here. What is: the preflight refusing a GPU-less
host (and saying what it found and what it needs), bad variables stopping the role
before anything changes, the API key never printed, and the unit and environment
file rendered by Ansible's own template module from the role's templates.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from playbook_runner import PlaybookResult, converge_role, run_playbook

from llmbox.lab.testhosts import TestHost

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "vllm"
API_KEY = "test-key-0123456789-do-not-print"


# Assertions quote role messages as written: keep each task result on one line.
pytestmark = pytest.mark.usefixtures("one_line_results")


def _converge(
    host: TestHost, tmp_path: Path, extra_vars: dict[str, Any] | None = None, *, check: bool = False
) -> PlaybookResult:
    return converge_role("vllm", [host], tmp_path, extra_vars, check=check)


def _assert_untouched(host: TestHost) -> None:
    infra = host.testinfra()
    assert not infra.user("vllm").exists
    for path in ("/opt/vllm", "/var/cache/vllm", "/etc/vllm", "/etc/systemd/system/vllm.service"):
        assert not infra.file(path).exists, path
    assert not infra.package("python3-venv").is_installed


@pytest.mark.real_host
@pytest.mark.parametrize("check", [False, True], ids=["converge", "check-mode"])
def test_gpu_less_host_is_refused_with_what_was_found_and_needed(
    boot_host: Callable[..., TestHost], tmp_path: Path, check: bool
) -> None:
    host = boot_host("debian12")
    pci_count = int(host.ssh("ls /sys/bus/pci/devices | wc -l").stdout)

    result = _converge(host, tmp_path, {"vllm_api_key": API_KEY}, check=check)

    assert result.rc != 0
    assert result.stats[host.name]["changed"] == 0
    assert (
        "vllm needs an NVIDIA GPU with CUDA compute capability 7.5 or newer and its driver; "
        f"{host.name} has none: {pci_count} PCI devices, none with vendor 0x10de"
    ) in result.stdout
    assert "Serve this host with llama.cpp (llmbox_engine: llama_cpp)" in result.stdout
    assert "The vllm role changed nothing." in result.stdout
    assert API_KEY not in result.stdout
    _assert_untouched(host)


@pytest.mark.real_host
def test_bad_variables_stop_the_role_before_anything_changes(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")

    wrong_type = _converge(host, tmp_path, {"vllm_api_key": API_KEY, "vllm_port": "eighty"})
    assert wrong_type.rc != 0
    assert wrong_type.stats[host.name]["ok"] == 1  # facts only: the argument spec is first
    assert "argument 'vllm_port' is of type str and we were unable to convert to int" in (
        wrong_type.stdout
    )

    negative = _converge(host, tmp_path, {"vllm_api_key": API_KEY, "vllm_port": -1})
    assert negative.rc != 0
    assert "Invalid vllm settings: vllm_port is -1, valid: 1-65535." in negative.stdout

    too_much = _converge(
        host, tmp_path, {"vllm_api_key": API_KEY, "vllm_gpu_memory_utilization": 1.5}
    )
    assert "vllm_gpu_memory_utilization is 1.5, valid: above 0, at most 1" in too_much.stdout

    short_key = _converge(host, tmp_path, {"vllm_api_key": "short"})
    assert short_key.rc != 0
    assert "vllm_api_key has 5 characters; set one of at least 16" in short_key.stdout

    for result in (wrong_type, negative, too_much, short_key):
        assert API_KEY not in result.stdout
        assert "List the PCI devices" not in result.stdout  # stopped before detection
    _assert_untouched(host)


def _stand_in_nvidia_smi(compute_cap: str) -> str:
    return f"""#!/bin/sh
# Test stand-in for nvidia-smi (no GPU here): answers the roles' two queries only.
case "$*" in
    *compute_cap*) echo "{compute_cap}, NVIDIA GeForce Test GPU" ;;
    *) echo "550.127.05, NVIDIA GeForce Test GPU" ;;
esac
"""


@pytest.mark.real_host
def test_gpu_checks_refuse_old_gpus_oversized_tensor_parallel_and_a_missing_model(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """The GPU-side rules of the preflight, each stopping before any change.

    The test host has no GPU, so a small stand-in ``nvidia-smi`` script answering the
    role's driver and compute-capability queries is put on it ONLY to exercise these
    comparisons; it proves the rules, not any real GPU or driver.
    """
    host = boot_host("debian12")

    def use_compute_cap(cap: str) -> None:
        script = _stand_in_nvidia_smi(cap)
        host.ssh(f"cat > /usr/local/bin/nvidia-smi <<'EOF'\n{script}EOF\n"
                 "chmod 755 /usr/local/bin/nvidia-smi")  # fmt: skip

    use_compute_cap("6.1")  # Pascal, e.g. GTX 1080: below vLLM's 7.5
    old = _converge(host, tmp_path, {"vllm_api_key": API_KEY})
    assert old.rc != 0
    assert (
        "vllm needs a loaded NVIDIA driver and GPUs of compute capability 7.5 or newer; "
        f"on {host.name} nvidia-smi says: 6.1, NVIDIA GeForce Test GPU."
    ) in old.stdout

    use_compute_cap("8.9")  # Ada, e.g. RTX 4090
    oversized = _converge(host, tmp_path, {"vllm_api_key": API_KEY, "vllm_tensor_parallel_size": 2})
    assert oversized.rc != 0
    assert f"vllm_tensor_parallel_size is 2 but {host.name} has 1 NVIDIA GPU(s)." in (
        oversized.stdout
    )

    no_model = _converge(host, tmp_path, {"vllm_api_key": API_KEY})
    assert no_model.rc != 0
    assert (
        f"vllm has no model to serve on {host.name}: vllm_model_path is '' and "
        "model_store_model_path is '' (both empty)."
    ) in no_model.stdout

    missing = _converge(host, tmp_path, {"vllm_api_key": API_KEY, "vllm_model_path": "/srv/m.gguf"})
    assert missing.rc != 0
    assert "vllm_model_path is '/srv/m.gguf'" in missing.stdout
    assert "(not found on the host)" in missing.stdout
    for result in (old, oversized, no_model, missing):
        assert result.stats[host.name]["changed"] == 0
        assert API_KEY not in result.stdout
    _assert_untouched(host)


def _render(tmp_path: Path, overrides: dict[str, Any]) -> tuple[str, str]:
    """Renders the role's unit and env file with Ansible's template module (local)."""
    play = [
        {
            "name": "Render the vllm templates",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
            "tasks": [
                {
                    "name": f"Render {name}",
                    "ansible.builtin.template": {
                        "src": str(ROLE / "templates" / f"{name}.j2"),
                        "dest": str(tmp_path / name),
                        "mode": "0600",
                    },
                }
                for name in ("vllm.service", "vllm.env")
            ],
        }
    ]
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    (tmp_path / "vars.json").write_text(json.dumps(overrides))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
         "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{tmp_path / 'vars.json'}",
         str(playbook)],
        capture_output=True, text=True, check=False, cwd=REPO,
        env=os.environ | {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (tmp_path / "vllm.service").read_text(), (tmp_path / "vllm.env").read_text()


def _service_section(unit: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.replace("\\\n", " "))
    return parser["Service"]


def test_unit_runs_hardened_as_the_service_user_with_tensor_parallel_over_all_gpus(
    tmp_path: Path,
) -> None:
    unit, env = _render(
        tmp_path,
        {
            "vllm_api_key": API_KEY,
            "__vllm_tensor_parallel_size": 4,  # what preflight derives from 4 GPUs
            "__vllm_model_path": "/var/lib/llmbox/models/model.gguf",
            "vllm_max_model_len": 8192,
            "vllm_extra_args": ["--enable-prefix-caching"],
        },
    )
    service = _service_section(unit)

    assert service["User"] == "vllm" and service["Group"] == "vllm"
    assert service["EnvironmentFile"] == "/etc/vllm/vllm.env"
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "ReadWritePaths": "/var/cache/vllm", "Restart": "on-failure",
    }.items():  # fmt: skip
        assert service[key] == value, key
    argv = service["ExecStart"].split()
    assert argv[:3] == ["/opt/vllm/venv/bin/vllm", "serve", "/var/lib/llmbox/models/model.gguf"]
    flags = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert flags["--served-model-name"] == "smollm2-135m-instruct"
    assert flags["--port"] == "8000"
    assert flags["--tensor-parallel-size"] == "4"
    assert flags["--gpu-memory-utilization"] == "0.9"
    assert flags["--max-model-len"] == "8192"
    assert argv[-1] == "--enable-prefix-caching"
    assert "--tokenizer" not in argv
    # The key lives only in the root-only env file, never in the unit or on the command line.
    assert API_KEY not in unit
    assert f"VLLM_API_KEY={API_KEY}" in env.splitlines()


def test_unit_omits_optional_flags_at_their_defaults(tmp_path: Path) -> None:
    unit, _ = _render(
        tmp_path,
        {"vllm_api_key": API_KEY, "__vllm_tensor_parallel_size": 1,
         "__vllm_model_path": "/models/m", "vllm_port": 9001},
    )  # fmt: skip
    argv = _service_section(unit)["ExecStart"].split()
    assert "--max-model-len" not in argv
    assert argv[argv.index("--port") + 1] == "9001"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "1"


@pytest.mark.real_host
def test_rendered_unit_is_valid_for_systemd(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """``systemd-analyze verify`` on a real systemd host accepts the rendered unit.

    No vLLM can be installed here (no GPU), so the unit's ExecStart binary is a link to
    /bin/true and the user is created by hand, ONLY so systemd can check every
    directive (an unknown or misspelt hardening key would be reported).
    """
    unit, _ = _render(
        tmp_path,
        {"vllm_api_key": API_KEY, "__vllm_tensor_parallel_size": 2, "__vllm_model_path": "/m"},
    )
    host = boot_host("debian12")
    host.ssh(
        "useradd --system --no-create-home vllm && mkdir -p /opt/vllm/venv/bin /etc/vllm "
        "/var/cache/vllm && ln -s /bin/true /opt/vllm/venv/bin/vllm && touch /etc/vllm/vllm.env"
    )
    host.ssh(f"cat > /etc/systemd/system/vllm.service <<'EOF'\n{unit}EOF")

    verify = host.ssh("systemd-analyze verify /etc/systemd/system/vllm.service", check=False)

    assert verify.returncode == 0, verify.stderr
    assert "vllm.service" not in verify.stderr, verify.stderr


# A stand-in for the vllm entry point (no GPU here): answers /health on the role's port.
FAKE_VLLM = """#!/usr/bin/python3
import http.server

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

http.server.HTTPServer(("127.0.0.1", 8000), Health).serve_forever()
"""
RUN_PHASE = [
    {
        "name": "The vllm role's run phase",
        "hosts": "all",
        "become": True,
        "gather_facts": False,
        "tasks": [
            {
                "name": "Start vLLM and restart it for changes it has not picked up",
                "ansible.builtin.include_role": {"name": "vllm", "tasks_from": "run.yml"},
                "vars": {"__vllm_model_path": "/srv/model", "vllm_host": "127.0.0.1"},
            }
        ],
    }
]


@pytest.mark.real_host
def test_run_restarts_a_server_started_before_its_key_changed(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    """A run interrupted after it wrote a new key but before its restart handler leaves
    vLLM running with the old key; the next run finds the env file newer than the running
    server (the check llama_cpp uses too) and restarts it, once."""
    host = boot_host("debian12")
    host.ssh(
        "mkdir -p /opt/vllm/venv/bin /etc/vllm /srv/model && "
        f"cat > /opt/vllm/venv/bin/vllm <<'EOF'\n{FAKE_VLLM}EOF\n"
        "chmod 755 /opt/vllm/venv/bin/vllm && echo VLLM_API_KEY=old > /etc/vllm/vllm.env && "
        "printf '[Service]\\nEnvironmentFile=/etc/vllm/vllm.env\\n"
        "ExecStart=/opt/vllm/venv/bin/vllm\\n[Install]\\nWantedBy=multi-user.target\\n' "
        "> /etc/systemd/system/vllm.service"
    )
    playbook = tmp_path / "run.yml"
    playbook.write_text(yaml.safe_dump(RUN_PHASE, sort_keys=False))

    def run() -> tuple[PlaybookResult, str]:
        result = run_playbook(playbook, [host])
        assert result.rc == 0, result.stdout[-4000:]
        return result, host.ssh("systemctl show vllm -p MainPID --value").stdout.strip()

    started, first_pid = run()
    assert "RUNNING HANDLER [vllm : Restart vLLM]" not in started.stdout
    host.ssh("sleep 1.1 && echo VLLM_API_KEY=rotated > /etc/vllm/vllm.env")  # ctime after start

    rerun, second_pid = run()
    found = rerun.stdout.split("TASK [vllm : Find changes the running vllm has not picked up]")[1]
    assert found.split("\n", 2)[1].startswith("changed: ["), rerun.stdout[-4000:]
    assert "RUNNING HANDLER [vllm : Restart vLLM]" in rerun.stdout
    assert second_pid != first_pid

    quiet, third_pid = run()
    assert quiet.stats[host.name]["changed"] == 0
    assert third_pid == second_pid
