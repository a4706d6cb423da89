"""site.yml's up-front preflights (issue 11 "every preflight runs before any change",
issue 13 defect 1) on booted test hosts, without converging anything.

``--tags untagged`` runs only what the play always runs: facts and the ``always``
pre_tasks (engine check, argument specs, every role's read-only preflight). A failing
preflight needs no tag filter: it stops the play before the first role.

"GPU-shaped" host: the test hosts have no GPU, so an NVIDIA device (vendor 0x10de,
device 0x2504 = RTX 3060, class 0x030000 VGA) is put in the guest's view of the PCI bus
by bind-mounting a directory over /sys/bus/pci/devices inside it. It proves what the
roles decide from the bus (a fresh workstation: GPU present, no driver, no nvcc), not
any real GPU. No stand-in nvidia-smi: the driver is not installed yet.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playbook_runner import (
    TEST_API_KEY,
    PlaybookResult,
    assert_untouched,
    converge_role,
    run_playbook,
)
from test_gateway import KEY_VARS, play

from llmbox.lab.testhosts import REPO_ROOT, SshKeypair, TestHost, TestHostPool, TestNetwork

pytestmark = [pytest.mark.real_host, pytest.mark.usefixtures("one_line_results")]

SMOLLM2_TRAINED_CONTEXT = 8192  # llama.context_length in the GGUF (its name says "8k")
VLLM_KEY = "vllm-test-key-0123456789"
ROLES = ("nvidia_driver", "cuda_toolkit", "model_store", "llama_cpp", "vllm", "firewall")

FAKE_NVIDIA_PCI = """set -e
mkdir -p /run/fake-pci
for dev in /sys/bus/pci/devices/*; do ln -sfn "$(readlink -f "$dev")" /run/fake-pci/; done
mkdir -p /run/fake-pci/0000:01:00.0
echo 0x10de > /run/fake-pci/0000:01:00.0/vendor
echo 0x2504 > /run/fake-pci/0000:01:00.0/device
echo 0x030000 > /run/fake-pci/0000:01:00.0/class
mountpoint -q /sys/bus/pci/devices || mount --bind /run/fake-pci /sys/bus/pci/devices
"""


@pytest.fixture(scope="module")
def hosts(test_network: TestNetwork, ssh_keypair: SshKeypair) -> Iterator[dict[str, TestHost]]:
    """A GPU-less and a GPU-shaped Debian 12 host, shared by this module's tests (the
    preflights only read, and each test checks that nothing was written)."""
    pool = TestHostPool(test_network, ssh_keypair)
    try:
        plain, gpu = pool.boot("debian12"), pool.boot("debian12")
        gpu.ssh(FAKE_NVIDIA_PCI)
        assert "0x10de" in gpu.ssh("cat /sys/bus/pci/devices/*/vendor").stdout
        for host in (plain, gpu):
            host.ssh("touch /run/llmbox-before-play && sleep 1.1")
        yield {"plain": plain, "gpu": gpu}
    finally:
        pool.stop_all()


def _tasks(result: PlaybookResult) -> list[str]:
    return re.findall(r"^TASK \[(.+?)\] \*+$", result.stdout, re.MULTILINE)


def _failure(result: PlaybookResult) -> tuple[str, str]:
    """The failed task's name and its message (results are one JSON line each)."""
    line = next(x for x in result.stdout.splitlines() if x.startswith(("fatal:", "failed:")))
    return _tasks(result)[-1], json.loads(line.split("=> ", 1)[1])["msg"]


def _pre_tasks(host: TestHost, extra: dict[str, Any]) -> PlaybookResult:
    return run_playbook("playbooks/site.yml", [host], extra, tags=["untagged"])


@pytest.fixture(scope="module")
def smollm2_vars(office_vars: dict[str, Any], smollm2_gguf: Path) -> dict[str, Any]:
    """office_vars with the model taken from a controller file: read there, up front."""
    return office_vars | {
        "model_store_source": "file",
        "model_store_local_path": str(smollm2_gguf),
        "model_store_sha256": hashlib.sha256(smollm2_gguf.read_bytes()).hexdigest(),
    }


def test_vllm_host_with_an_empty_key_stops_before_the_driver_role(
    hosts: dict[str, TestHost], smollm2_vars: dict[str, Any]
) -> None:
    host = hosts["gpu"]
    result = run_playbook("playbooks/site.yml", [host], smollm2_vars | {"llmbox_engine": "vllm"})
    assert result.rc != 0
    task, message = _failure(result)
    assert task == "vllm : Check that an API key of at least 16 characters is set", task
    assert message.startswith("vllm_api_key has 0 characters; set one of at least 16")
    assert result.stats[host.name]["changed"] == 0
    # The driver's preflight saw the GPU (the driver role would install on this host) ...
    assert "No NVIDIA GPU on" not in result.stdout
    # ... and no task of any role's own run came before the failure.
    assert not [t for t in _tasks(result) if t.startswith(("Install the", "Serve the"))]
    # ... in the checks play, where the driver's own preflight ran first
    assert "PLAY [Check every server's variables before any host changes]" in result.stdout
    assert any(t.startswith("nvidia_driver : ") for t in _tasks(result))
    assert_untouched(host)


def test_gpu_shaped_host_passes_the_pre_tasks_with_cuda_toolkit_in_the_play(
    hosts: dict[str, TestHost], smollm2_vars: dict[str, Any]
) -> None:
    """A fresh workstation: NVIDIA GPU on the bus, no driver, no nvcc. The llama_cpp
    preflight picks the CUDA backend and accepts the nvcc cuda_toolkit will install."""
    host = hosts["gpu"]
    assert host.ssh("test -e /usr/local/cuda/bin/nvcc", check=False).returncode != 0
    result = _pre_tasks(host, smollm2_vars)
    assert result.rc == 0, result.stdout[-6000:]
    assert result.stats[host.name]["changed"] == 0
    ran = _tasks(result)
    for role in ("nvidia_driver", "cuda_toolkit", "model_store", "llama_cpp", "firewall"):
        assert any(t.startswith(f"{role} : ") for t in ran), role
    assert (
        "llama_cpp : Assert nvcc is installed, or installed by cuda_toolkit before the build" in ran
    )
    assert "nvidia-smi reports no GPU memory on" in result.stdout  # memory checked after the driver
    assert_untouched(host)


def test_gpu_shaped_host_reaches_the_driver_role(
    hosts: dict[str, TestHost], smollm2_vars: dict[str, Any]
) -> None:
    """Past the pre_tasks, the play goes on into the driver role's install phase (run in
    --check: this host has no NVIDIA repository to install from, and must stay as it is)."""
    host = hosts["gpu"]
    result = run_playbook("playbooks/site.yml", [host], smollm2_vars, check=True)
    ran = _tasks(result)
    install = [t for t in ran if t.startswith("nvidia_driver : Install the headers of the running")]
    assert install, result.stdout[-6000:]
    assert_untouched(host)


def test_cuda_backend_without_a_toolkit_in_the_play_says_why(
    hosts: dict[str, TestHost], smollm2_vars: dict[str, Any], tmp_path: Path
) -> None:
    """The llama_cpp role alone on the same host: nothing will install nvcc, so it stops."""
    host = hosts["gpu"]
    result = converge_role("llama_cpp", [host], tmp_path, smollm2_vars)
    assert result.rc != 0
    task, message = _failure(result)
    assert task.endswith("Assert nvcc is installed, or installed by cuda_toolkit before the build")
    assert "/usr/local/cuda/bin/nvcc (llama_cpp_cuda_home)" in message
    assert "this play will not install: cuda_toolkit is not in the play" in message
    assert "or set llama_cpp_backend=cpu" in message
    assert_untouched(host)


def test_context_beyond_the_trained_one_is_refused_with_the_limit(
    hosts: dict[str, TestHost], smollm2_vars: dict[str, Any]
) -> None:
    """Read up front from the controller's copy: 2 slots x 16384 > 8192 trained."""
    host = hosts["plain"]
    result = _pre_tasks(host, smollm2_vars | {"llama_cpp_ctx_size": 32768})
    assert result.rc != 0
    task, message = _failure(result)
    assert task == "llama_cpp : Assert the context is within what the model was trained for"
    assert message.startswith("llama_cpp_ctx_size=32768 over 2 slot(s) lets one request use 16384")
    assert f"more than the {SMOLLM2_TRAINED_CONTEXT} tokens" in message
    assert "(llama.context_length in its GGUF metadata); valid: 128 to 16384" in message
    assert_untouched(host)
    # The largest valid value passes.
    assert _pre_tasks(host, smollm2_vars | {"llama_cpp_ctx_size": 16384}).rc == 0


def test_context_is_read_on_the_host_when_the_controller_has_no_copy(
    hosts: dict[str, TestHost], office_vars: dict[str, Any], smollm2_gguf: Path, tmp_path: Path
) -> None:
    """The llama_cpp role alone (no model_store in the play) reads the model on the host,
    before it builds or starts anything: one slot of 8320 tokens > 8192 trained."""
    host = hosts["plain"]
    model = "/srv/llmbox-test/SmolLM2.gguf"
    host.ssh(f"mkdir -p {model.rsplit('/', 1)[0]}")
    subprocess.run(
        ["scp", "-q", "-F", str(host.ssh_key.parent / "ssh_config"), "-i", str(host.ssh_key),
         str(smollm2_gguf), f"{host.ssh_user}@{host.address}:{model}"],
        check=True, timeout=120,
    )  # fmt: skip
    try:
        refused = converge_role(
            "llama_cpp", [host], tmp_path,
            office_vars | {"llama_cpp_model_path": model, "llama_cpp_ctx_size": 8320,
                           "llama_cpp_parallel": 1},
        )  # fmt: skip
        assert refused.rc != 0
        ran = _tasks(refused)
        assert "model_store : Read the model's trained context and shape on the host" in ran
        assert (
            "model_store : Read the model's trained context and shape on the controller" not in ran
        )
        task, message = _failure(refused)
        assert task.endswith("Assert the context is within what the model was trained for")
        assert message.startswith(
            "llama_cpp_ctx_size=8320 over 1 slot(s) lets one request use 8320"
        )
        assert message.endswith("valid: 128 to 8192")
        assert refused.stats[host.name]["changed"] == 0
    finally:
        host.ssh("rm -rf /srv/llmbox-test")


def _gguf_header(metadata: dict[str, Any]) -> bytes:
    """A GGUF v3 file with these key/values and no tensors (strings and uint32 only)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata))
    for key, value in metadata.items():
        out += struct.pack("<Q", len(key)) + key.encode()
        if isinstance(value, str):
            out += struct.pack("<IQ", 8, len(value)) + value.encode()
        else:
            out += struct.pack("<II", 4, value)
    return out


def test_context_beyond_memory_is_refused_with_the_limit(
    hosts: dict[str, TestHost], office_vars: dict[str, Any], tmp_path: Path
) -> None:
    """A header-only GGUF shaped like a 70B-class model with a 1M-token context: the KV
    cache of 262144 tokens (2 x 80 x 64 x 128 x 2 B = 2.5 MiB per token, 640 GiB) is
    more than this machine's RAM, though within the trained context."""
    host = hosts["plain"]
    model = tmp_path / "big-shape.gguf"
    model.write_bytes(
        _gguf_header({
            "general.architecture": "llama", "general.name": "big-shape",
            "llama.context_length": 1 << 20, "llama.block_count": 80,
            "llama.embedding_length": 8192, "llama.attention.head_count": 64,
            "llama.attention.head_count_kv": 64,
        })
    )  # fmt: skip
    big = office_vars | {
        "model_store_source": "file",
        "model_store_local_path": str(model),
        "model_store_filename": "big-shape.gguf",
        "model_store_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "llama_cpp_ctx_size": 262144,
        "llama_cpp_parallel": 1,
    }
    result = _pre_tasks(host, big)
    assert result.rc != 0
    task, message = _failure(result)
    assert task == "llama_cpp : Assert the model and its KV cache fit in memory"
    # the memory the role sees: Ansible's memtotal_mb, /proc/meminfo's kB rounded down to
    # MiB (the exact kB can round to another second decimal: 23.59 against 23.58 GiB)
    ram_kib = int(host.ssh("awk '/MemTotal/ {print $2}' /proc/meminfo").stdout)
    ram_gib = ram_kib // 1024 / 1024
    assert message.startswith("llama_cpp_ctx_size=262144 needs 640.")
    assert "GiB KV cache: 2 x 80 layers x 64 KV heads x 128 dims x 2 B x 262144 tokens" in message
    assert f"has {ram_gib:.2f} GiB" in message or f"has {round(ram_gib, 2)} GiB" in message
    limit = int(re.search(r"valid: 128 to (\d+)$", message).group(1))  # type: ignore[union-attr]
    # the largest context that fits: RAM less 0.75 GiB overhead, in KV cache tokens
    per_token = 2 * 80 * 64 * 128 * 2
    assert abs(limit * per_token - (ram_gib - 0.75) * 2**30) <= per_token + 2**20
    assert_untouched(host)


def test_vllm_max_model_len_beyond_the_trained_one_is_refused(
    hosts: dict[str, TestHost], smollm2_vars: dict[str, Any]
) -> None:
    """Up front on the GPU-shaped host (its driver is still to come)."""
    host = hosts["gpu"]
    vllm = smollm2_vars | {
        "llmbox_engine": "vllm", "vllm_api_key": VLLM_KEY, "vllm_max_model_len": 16384,
    }  # fmt: skip
    result = _pre_tasks(host, vllm)
    assert result.rc != 0
    task, message = _failure(result)
    assert task == "vllm : Check that the context length is within what the model was trained for"
    assert message.startswith(
        f"vllm_max_model_len is 16384, more than the {SMOLLM2_TRAINED_CONTEXT} tokens"
    )
    assert "valid: 0 (the model's own) to 8192" in message
    assert VLLM_KEY not in result.stdout
    assert_untouched(host)


def _role_variables() -> set[str]:
    names: set[str] = set()
    for role in ROLES:
        spec = yaml.safe_load(
            (REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text()
        )
        names |= set(spec["argument_specs"]["main"]["options"])
    return names


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"llama_cpp_build_nice": 20}, "llama_cpp_build_nice"),
        ({"llama_cpp_health_timeout_s": 0}, "llama_cpp_health_timeout_s"),
        ({"llama_cpp_model_sha256": "ABC"}, "llama_cpp_model_sha256"),
        ({"model_store_min_free_mb": -1}, "model_store_min_free_mb"),
        ({"firewall_admin_networks": []}, "firewall_admin_networks"),
        ({"firewall_client_networks": ["10.0.0.1/8"]}, "firewall_client_networks"),
        ({"llmbox_engine": "vllm", "vllm_port": 0, "vllm_api_key": VLLM_KEY}, "vllm_port"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_message_names_the_one_bad_variable(
    hosts: dict[str, TestHost], smollm2_vars: dict[str, Any], bad: dict[str, Any], named: str
) -> None:
    host = hosts["gpu"] if "vllm_port" in bad else hosts["plain"]
    result = _pre_tasks(host, smollm2_vars | bad)
    assert result.rc != 0
    _, message = _failure(result)
    mentioned = {v for v in _role_variables() if re.search(rf"\b{v}\b", message)}
    assert mentioned == {named}, message
    assert "valid" in message.lower(), message
    assert TEST_API_KEY not in result.stdout


def test_bad_gateway_variable_stops_site_before_any_host_changes(
    hosts: dict[str, TestHost], smollm2_vars: dict[str, Any]
) -> None:
    """Fleet shape: the plain host serves, the other is only a gateway. The gateway's
    play comes last in site.yml, but its checks come first, for every gateway, and one bad
    gateway variable ends the run before the servers play touches the server."""
    server, gateway = hosts["plain"], hosts["gpu"]
    bad = {**KEY_VARS, "gateway_tls_certificate": "/etc/ssl/certs/ca-certificates.crt"}
    result = play(
        "playbooks/site.yml", {"llm_servers": [server], "llm_gateways": [gateway]},
        smollm2_vars | bad,
    )  # fmt: skip
    assert result.rc != 0
    task, message = _failure(result)
    assert task == "gateway : Assert the TLS certificate and its key are given together", task
    assert message.startswith(
        "gateway_tls_certificate=/etc/ssl/certs/ca-certificates.crt is set without "
        "gateway_tls_private_key"
    )
    plays = re.findall(r"^PLAY \[(.+?)\] \*+$", result.stdout, re.MULTILINE)
    assert plays == ["Check the gateways' variables before any host changes"], plays
    for host in (server, gateway):
        assert result.stats.get(host.name, {}).get("changed", 0) == 0
        assert_untouched(host)
