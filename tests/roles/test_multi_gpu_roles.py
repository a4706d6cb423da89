"""Several GPUs in one box, role side (issue 9): llama.cpp's split across GPUs and vLLM's
tensor parallelism, checked against the GPUs the host reports before anything changes.

One booted Debian 12 test host, made "GPU-shaped" with 1 or 2 made-up NVIDIA GPUs on its
PCI bus (gpu_shape.py: no driver, no nvidia-smi, as on a fresh workstation). The runs are
site.yml's pre_tasks only (``--tags untagged``: argument specs and every role's read-only
preflight, judging what the play will install) or the preflights plus one template
rendered into /run; each test checks that nothing under /etc, /opt, /usr or /var/lib was
written.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gpu_shape import GPU_SHAPED, make_gpu_shaped
from playbook_runner import PlaybookResult, assert_untouched, run_playbook

from llmbox.lab.testhosts import REPO_ROOT, TestHost, TestHostPool

pytestmark = [pytest.mark.real_host, pytest.mark.usefixtures("one_line_results")]

VLLM_KEY = "vllm-test-key-0123456789"
RENDERED = "/run/llmbox-render/llama-server.service"


@pytest.fixture(scope="module")
def host(_session_pool: TestHostPool) -> TestHost:
    booted = _session_pool.boot("debian12", "multi-gpu")
    booted.ssh("touch /run/llmbox-before-play && sleep 1.1")
    return booted


@pytest.fixture(scope="module")
def site_vars(office_vars: dict[str, Any], smollm2_gguf: Path) -> dict[str, Any]:
    """office_vars with the model read from the controller copy (up front) and the fake
    PCI tree (GPU_SHAPED)."""
    return (
        office_vars
        | GPU_SHAPED
        | {
            "model_store_source": "file",
            "model_store_local_path": str(smollm2_gguf),
            "model_store_sha256": hashlib.sha256(smollm2_gguf.read_bytes()).hexdigest(),
        }
    )


@pytest.fixture
def gpus(host: TestHost, request: pytest.FixtureRequest) -> Iterator[int]:
    count = int(request.param)
    make_gpu_shaped(host, count)
    yield count
    assert_untouched(host)


def _pre_tasks(host: TestHost, extra: dict[str, Any]) -> PlaybookResult:
    return run_playbook("playbooks/site.yml", [host], extra, tags=["untagged"])


def _failure(result: PlaybookResult) -> tuple[str, str]:
    """The failed task's name and its one message (results are one JSON line each)."""
    tasks = re.findall(r"^TASK \[(.+?)\] \*+$", result.stdout, re.MULTILINE)
    lines = [x for x in result.stdout.splitlines() if x.startswith(("fatal:", "failed:"))]
    assert len(lines) == 1, result.stdout[-4000:]
    return tasks[-1], str(json.loads(lines[0].split("=> ", 1)[1])["msg"])


TOO_MANY = {
    "llama_cpp": ({"llama_cpp_gpu_count": 2},
                  "llama_cpp_gpu_count is 2 but {host} has 1 NVIDIA GPU(s); "
                  "valid: 0 (every GPU) to 1"),
    "vllm": ({"vllm_tensor_parallel_size": 2},
             "vllm_tensor_parallel_size is 2 but {host} has 1 NVIDIA GPU(s). "
             "Valid: 0 (every GPU) to 1."),
}  # fmt: skip


@pytest.mark.parametrize(("gpus", "engine"), [(1, e) for e in TOO_MANY], indirect=["gpus"])
def test_asking_for_two_gpus_on_a_one_gpu_host_stops_with_the_count_named(
    host: TestHost, site_vars: dict[str, Any], gpus: int, engine: str
) -> None:
    """Up front, before the driver is installed: the count comes from the PCI bus."""
    asked, message = TOO_MANY[engine]
    extra = site_vars | asked | {"llmbox_engine": engine, "vllm_api_key": VLLM_KEY}
    result = _pre_tasks(host, extra)
    assert result.rc != 0
    task, got = _failure(result)
    assert task.startswith(f"{engine} : "), task
    assert got.strip() == message.format(host=host.name)
    assert result.stats[host.name]["changed"] == 0


@pytest.mark.parametrize(
    ("gpus", "bad", "message"),
    [
        (2, {"llama_cpp_tensor_split": [3, 1, 1]},
         "llama_cpp_tensor_split is [3, 1, 1]: 3 share(s) for the 2 GPU(s) llama.cpp uses on "
         "{host} (llama_cpp_gpu_count 0, every GPU the host has, backend cuda); valid: one "
         "number of 0 or more per GPU used, not all 0, or [] to split by free memory"),
        (2, {"llama_cpp_gpu_count": 1, "llama_cpp_tensor_split": [1, 1]},
         "llama_cpp_tensor_split is [1, 1]: 2 share(s) for the 1 GPU(s) llama.cpp uses on "
         "{host} (llama_cpp_gpu_count 1, backend cuda); valid: one number of 0 or more per "
         "GPU used, not all 0, or [] to split by free memory"),
        (2, {"llama_cpp_tensor_split": [0, 0]},
         "llama_cpp_tensor_split is [0, 0]: a share is negative or all are 0; valid: one "
         "number of 0 or more per GPU used, not all 0, or [] to split by free memory"),
        (2, {"llama_cpp_main_gpu": 2},
         "llama_cpp_main_gpu is 2 but llama.cpp uses 2 GPU(s) on {host}; valid: 0 to 1"),
        (2, {"llama_cpp_gpu_count": 1, "llama_cpp_backend": "cpu"},
         "llama_cpp_gpu_count is 1 but the llama.cpp backend is cpu (llama_cpp_backend=cpu); "
         "valid: 0 (every GPU)"),
        (2, {"llama_cpp_split_mode": "diagonal"},
         "value of llama_cpp_split_mode must be one of: layer, row, none, got: diagonal"),
    ],
    indirect=["gpus"],
    ids=["split-longer-than-gpus", "split-longer-than-gpu-count", "all-zero", "main-gpu",
         "gpus-on-cpu", "split-mode"],
)  # fmt: skip
def test_bad_gpu_settings_stop_with_one_message_naming_the_value(
    host: TestHost, site_vars: dict[str, Any], gpus: int, bad: dict[str, Any], message: str
) -> None:
    result = _pre_tasks(host, site_vars | bad)
    assert result.rc != 0
    _, got = _failure(result)
    assert message.format(host=host.name) in got, got
    assert result.stats[host.name]["changed"] == 0


def _render_after_preflights(host: TestHost, tmp_path: Path, extra: dict[str, Any]) -> str:
    """The preflights site.yml runs up front (they set the backend and the GPU count),
    then the llama_cpp unit template rendered with what they decided, into /run."""
    play = [
        {
            "name": "Preflights, then render the llama-server unit",
            "hosts": "all",
            "become": True,
            "gather_facts": True,
            "tasks": [
                {
                    "name": "Run the read-only preflights as site.yml does up front",
                    "ansible.builtin.include_role": {
                        "name": "{{ item }}", "tasks_from": "preflight.yml", "public": True},
                    "vars": {"__llmbox_preflight_ahead": True},
                    "loop": ["nvidia_driver", "cuda_toolkit", "model_store", "llama_cpp"],
                },
                {"name": "Make the render directory", "ansible.builtin.file": {
                    "path": str(Path(RENDERED).parent), "state": "directory", "mode": "0700"}},
                {
                    "name": "Render the unit",
                    "ansible.builtin.template": {
                        "src": str(REPO_ROOT / "roles/llama_cpp/templates/llama-server.service.j2"),
                        "dest": RENDERED, "mode": "0600"},
                },
            ],
        }
    ]  # fmt: skip
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    result = run_playbook(playbook, [host], extra)
    assert result.rc == 0, result.stdout[-6000:]
    return host.ssh(f"cat {RENDERED}").stdout


def _exec_start(unit: str) -> list[str]:
    joined = unit.split("\nExecStart=", 1)[1].split("\nRestart=", 1)[0].replace("\\\n", " ")
    return shlex.split(joined)


@pytest.mark.parametrize("gpus", [2], indirect=True)
def test_two_gpu_host_unit_carries_the_split_flags(
    host: TestHost, site_vars: dict[str, Any], gpus: int, tmp_path: Path
) -> None:
    # Defaults: every GPU, layer split by free memory (no --device, no --tensor-split).
    argv = _exec_start(_render_after_preflights(host, tmp_path, site_vars))
    flags = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert argv[0] == "/opt/llama.cpp/bin/llama-server"
    assert flags["--split-mode"] == "layer" and flags["--main-gpu"] == "0"
    assert "--device" not in argv and "--tensor-split" not in argv

    chosen = {"llama_cpp_split_mode": "row", "llama_cpp_tensor_split": [3, 1],
              "llama_cpp_main_gpu": 1, "llama_cpp_gpu_count": 2}  # fmt: skip
    unit = _render_after_preflights(host, tmp_path, site_vars | chosen)
    argv = _exec_start(unit)
    flags = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert flags["--split-mode"] == "row"
    assert flags["--tensor-split"] == "3,1"
    assert flags["--main-gpu"] == "1"
    assert flags["--device"] == "CUDA0,CUDA1"
    assert "(smollm2-135m-instruct, cuda, 2 GPU(s), split row)" in unit
