"""site.yml on a Debian 12 + Debian 13 pair at once (CPU profile, real llama.cpp build,
SmolLM2), then verified on each host with testinfra."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request

import pytest
from playbook_runner import TEST_API_KEY, OfficeConverge

from llmbox.lab.testhosts import CACHE, TestHost

pytestmark = pytest.mark.real_host

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL = "/var/lib/llmbox/models/SmolLM2-135M-Instruct.Q4_1.gguf"


def _host(converged: OfficeConverge, distro: str) -> TestHost:
    return next(h for h in converged.hosts if h.distro == distro)


def chat(address: str, key: str | None, timeout_s: float = 60) -> tuple[int, str]:
    """POSTs a chat completion from the controller over the test bridge (a client network)."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = json.dumps({"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8})
    request = urllib.request.Request(
        f"http://{address}:8080/v1/chat/completions", data=body.encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_first_converge_changes_both_hosts(converged_office: OfficeConverge) -> None:
    stats = converged_office.first.stats
    assert set(stats) == {h.name for h in converged_office.hosts} == {"office-d12", "office-d13"}
    for name, s in stats.items():
        assert s["failed"] == 0 and s["unreachable"] == 0, name
        assert s["changed"] > 0, name


def test_second_converge_changes_nothing(converged_office: OfficeConverge) -> None:
    second = converged_office.second
    assert second.rc == 0, second.stdout[-4000:]
    assert {n: s["changed"] for n, s in second.stats.items()} == {
        "office-d12": 0,
        "office-d13": 0,
    }, second.stdout[-4000:]


def test_check_mode_runs_clean(converged_office: OfficeConverge) -> None:
    check = converged_office.check
    assert check.rc == 0, check.stdout[-4000:]
    assert check.changed() == 0, check.stdout[-4000:]


def test_one_build_per_distinct_target(converged_office: OfficeConverge) -> None:
    """Debian 12 and 13 are different targets: one cached build each, built once."""
    targets = sorted(p.parent.name for p in (CACHE / "llama_cpp_builds").glob("*/COMPLETE"))
    assert any("-debian12-x86_64-cpu" in t for t in targets), targets
    assert any("-debian13-x86_64-cpu" in t for t in targets), targets
    assert "Compile llama-server" not in converged_office.second.stdout


# The instructions of llama.cpp's AMX kernels (ggml-cpu/amx/mmq.cpp): tile set-up, loads
# and the int8/bf16 dot products. A build with them (llama_cpp_amx: true, or before the
# default was off) shows tilezero in its disassembly.
AMX_INSTRUCTION = re.compile(
    r"\s(ldtilecfg|tilerelease|tilezero|tileloadd\w*|tdpb[su]{2}d|tdpbf16ps)\s"
)


def test_native_builds_leave_out_the_amx_kernels(converged_office: OfficeConverge) -> None:
    """llama_cpp_amx is off by default: on a VM that lists AMX, llama-server died with
    SIGILL in those kernels on its first request."""
    builds = sorted((CACHE / "llama_cpp_builds").glob("*-native-*-noamx/llama-server"))
    assert {b.parent.name.split("-")[2] for b in builds} >= {"debian12", "debian13"}, builds
    for binary in builds:
        disassembly = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", str(binary)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "<main>:" in disassembly, binary  # objdump read the binary
        found = AMX_INSTRUCTION.search(disassembly)
        assert found is None, f"{binary}: {found.group(1) if found else ''}"


@pytest.mark.parametrize("distro", ["debian12", "debian13"])
def test_service_runs_hardened_as_the_unprivileged_user(
    converged_office: OfficeConverge, distro: str
) -> None:
    host = _host(converged_office, distro).testinfra()
    service = host.service("llama-server")
    assert service.is_running and service.is_enabled
    user = host.user("llama")
    assert user.exists and user.uid < 1000 and user.shell == "/usr/sbin/nologin"
    pid = host.check_output("systemctl show -p MainPID --value llama-server")
    assert host.check_output(f"ps -o user= -p {pid}") == "llama"
    props = host.check_output(
        "systemctl show -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp "
        "-p PrivateDevices -p Restart llama-server"
    ).splitlines()
    assert sorted(props) == sorted(
        [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "Restart=on-failure",
        ]
    )
    env = host.file("/etc/llama-server/llama-server.env")
    assert env.mode == 0o600 and env.user == "root"
    assert TEST_API_KEY not in host.check_output(f"cat /proc/{pid}/cmdline | tr '\\0' ' '")
    assert host.socket("tcp://0.0.0.0:8080").is_listening


@pytest.mark.parametrize("distro", ["debian12", "debian13"])
def test_api_needs_the_key_and_answers_with_it(
    converged_office: OfficeConverge, distro: str
) -> None:
    address = _host(converged_office, distro).address
    status, _ = chat(address, None)
    assert status == 401
    status, _ = chat(address, "wrong-key-wrong-key")
    assert status == 401
    status, body = chat(address, TEST_API_KEY)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"].strip()
    assert answer["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("distro", ["debian12", "debian13"])
def test_model_file_matches_its_sha256(converged_office: OfficeConverge, distro: str) -> None:
    host = _host(converged_office, distro).testinfra()
    model = host.file(MODEL)
    assert model.sha256sum == SMOLLM2_SHA256
    assert model.size == 98_362_432 and model.mode == 0o644
    assert not host.file(f"/var/lib/llmbox/models/.{MODEL.rsplit('/', 1)[1]}.partial").exists


@pytest.mark.parametrize("distro", ["debian12", "debian13"])
def test_firewall_rules_are_loaded(converged_office: OfficeConverge, distro: str) -> None:
    host = _host(converged_office, distro).testinfra()
    assert host.service("llmbox-firewall").is_enabled
    assert host.service("llmbox-firewall").is_running
    rules = host.check_output("nft list table inet llmbox_filter")
    assert "policy drop" in rules
    assert "tcp dport 8080 ip saddr @clients_v4 accept" in rules
    assert "tcp dport 22 ip saddr @admin_v4 accept" in rules
    subnet = converged_office.hosts[0].address.rsplit(".", 1)[0] + ".0/24"
    assert subnet in host.check_output("nft list set inet llmbox_filter clients_v4")
