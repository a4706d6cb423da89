"""scripts/gpu-check.sh without a GPU: the offline bundle is made for real (llama.cpp source
trimmed for the CUDA build, wheels, the script), `run` refuses with one message where
nvidia-smi lists no GPU, and the steps after the CUDA build (random-weight model,
llama-quantize, llama-server with the key from the environment, llmbox bench with
llama-bench's ceiling, summary) run from the unpacked bundle against CPU builds.

What only a GPU machine can show (the CUDA build, NVML watts, the roofline share) is
left to running the script there; see the README's "GPU check" section.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from llmbox.lab.testhosts import CACHE, REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "gpu-check.sh"
# The distribution's own python3 where there is one: no numpy, httpx or llmbox installed,
# like the GPU machine's, so the bundle's wheels must bring everything the steps import.
BARE_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").is_file() else sys.executable
PYTHON = subprocess.run(
    [BARE_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
    capture_output=True, text=True, check=True,
).stdout.strip()  # fmt: skip
# Made by scripts/setup.d/10-llama-cpp.sh (the controller's CPU build).
CPU_TOOLS = {
    "llama-server": CACHE / "llama.cpp" / "bin" / "llama-server",
    "llama-bench": CACHE / "llama.cpp" / "bin" / "llama-bench",
    "llama-quantize": CACHE / "llama.cpp" / "bin" / "llama-quantize",
}
TINY_PARAMETERS = 1_443_072  # make_model.py's "tiny" shape, counted by hand in its test below


def _run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False,
        env=os.environ | {"GPU_CHECK_PYTHON": BARE_PYTHON} | (env or {}),
    )  # fmt: skip
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle for this Python only (the default covers 3.11-3.13), made for real."""
    out = tmp_path_factory.mktemp("bundle") / "gpu-check.tar"
    report = json.loads(_run(SCRIPT, "bundle", out, "--python", PYTHON).strip().splitlines()[-1])
    assert report["bytes"] == out.stat().st_size
    return out


@pytest.fixture(scope="module")
def unpacked(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("gpu-machine")
    with tarfile.open(bundle) as tar:
        tar.extractall(where, filter="tar")
    return where / "gpu-check"


@functools.cache
def _summary_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gpu_check_summary", REPO_ROOT / "scripts" / "gpu_check" / "summary.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_bundle_is_small_and_holds_what_the_offline_gpu_machine_needs(bundle: Path) -> None:
    with tarfile.open(bundle) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("gpu-check/MANIFEST.json").read())  # type: ignore[union-attr]
        flags = json.loads(tar.extractfile("gpu-check/build-flags.json").read())  # type: ignore[union-attr]
        source = tar.extractfile("gpu-check/llama.cpp-src.tar.gz")
        assert source is not None
        with tarfile.open(fileobj=source) as src:
            source_names = src.getnames()
    assert bundle.stat().st_size < 40 * 2**20  # one Python's wheels (numpy is 17 MB of it)
    for part in ("gpu-check.sh", "gpu_check/make_model.py", "gpu_check/summary.py"):
        assert f"gpu-check/{part}" in names
    wheels = {n.rsplit("/", 1)[-1].split("-")[0].lower() for n in names if n.endswith(".whl")}
    assert {"llmbox", "numpy", "nvidia_ml_py", "httpx", "psutil", "pyyaml", "pydantic"} <= wheels
    assert not wheels & {"matplotlib", "fabric", "vllm", "torch"}
    assert manifest["pythons"] == [PYTHON]
    assert "not bundled" in manifest["vllm"]
    # The trim keeps the CUDA backend, the three tools and gguf-py, all under llama.cpp/
    # (long names included), and drops the model files, docs and other GPU backends.
    assert all(n == "llama.cpp" or n.startswith("llama.cpp/") for n in source_names)
    for kept in (
        "ggml/src/ggml-cuda/CMakeLists.txt",
        "ggml/src/ggml-cuda/template-instances/fattn-mma-f16-instance-ncols1_1-ncols2_16.cu",
        "tools/server/server.cpp",
        "tools/llama-bench/llama-bench.cpp",
        "tools/quantize/quantize.cpp",
        "tools/ui/CMakeLists.txt",
        "gguf-py/gguf/gguf_writer.py",
    ):
        assert f"llama.cpp/{kept}" in source_names
    for dropped in ("models/", "docs/", "ggml/src/ggml-vulkan/", "tests/"):
        assert not any(n.startswith(f"llama.cpp/{dropped}") for n in source_names)
    assert manifest["source"]["bytes_out"] < manifest["source"]["bytes_in"] / 4
    # The role's cmake arguments: the CUDA ones are the role's own list (data in its vars)
    # with its placeholders; the mirrored common ones each still appear in its build task.
    role_vars = yaml.safe_load((REPO_ROOT / "roles/llama_cpp/vars/main.yml").read_text())
    role_cuda = (role_vars or {}).get("__llama_cpp_cuda_cmake_flags")
    if role_cuda is not None:
        assert flags["cuda"] == role_cuda
    # what a native x86_64 build adds by default (llama_cpp_amx: false), the role's own list
    assert flags["x86_64"] == role_vars["__llama_cpp_no_amx_cmake_flags"]
    assert "-DCMAKE_CUDA_ARCHITECTURES={cuda_architectures}" in flags["cuda"]
    assert "-DCMAKE_CUDA_COMPILER={cuda_home}/bin/nvcc" in flags["cuda"]
    assert any("RPATH={cuda_home}/lib64" in flag for flag in flags["cuda"])
    build_task = (REPO_ROOT / "roles" / "llama_cpp" / "tasks" / "build.yml").read_text()
    for arg in flags["common"]:
        assert arg.split("=")[0] + "=" in build_task, arg


def _refusal(unpacked: Path, tmp_path: Path, gpu_line: str, env: dict[str, str]) -> str:
    """run's stderr with a stand-in nvidia-smi that prints ``gpu_line``, so the outcome is
    the same on any machine; asserts that it refused (exit 2, one line, nothing written)."""
    stand_in = tmp_path / "bin"
    stand_in.mkdir()
    (stand_in / "nvidia-smi").write_text(f"#!/bin/sh\necho '{gpu_line}'\n")
    (stand_in / "nvidia-smi").chmod(0o755)
    out = tmp_path / "out"
    done = subprocess.run(
        [str(unpacked / "gpu-check.sh"), "run", "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
        env=os.environ
        | {"PATH": f"{stand_in}:{os.environ['PATH']}", "GPU_CHECK_PYTHON": BARE_PYTHON}
        | env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1
    assert message.endswith("Nothing was changed.")
    assert not out.exists()
    return message


def test_run_refuses_with_one_message_where_no_gpu_is_listed(
    unpacked: Path, tmp_path: Path
) -> None:
    message = _refusal(unpacked, tmp_path, "", {})
    assert "no NVIDIA GPU: nvidia-smi lists none" in message


def test_run_refuses_a_cuda_toolkit_without_cublas(unpacked: Path, tmp_path: Path) -> None:
    # nvcc and the runtime headers but no cuBLAS, as a toolkit made of a few pip wheels
    # is (this development machine's /usr/local/cuda-13.0 is one).
    toolkit = tmp_path / "cuda"
    (toolkit / "bin").mkdir(parents=True)
    (toolkit / "include").mkdir()
    (toolkit / "include" / "cuda_runtime.h").write_text("")
    (toolkit / "bin" / "nvcc").write_text("#!/bin/sh\nexit 0\n")
    (toolkit / "bin" / "nvcc").chmod(0o755)
    message = _refusal(
        unpacked, tmp_path, "NVIDIA H200, 9.0, 580.95.05, 143771 MiB", {"CUDA_HOME": str(toolkit)}
    )
    assert f"the CUDA toolkit at {toolkit} has no cuBLAS" in message
    assert "no NVIDIA GPU" not in message


@pytest.mark.parametrize(
    ("nvml_name", "gb_s"),
    [
        ("NVIDIA H200", 4800),  # catalog, exact
        ("NVIDIA H100 80GB HBM3", 3350),  # catalog "H100 80GB" + a memory word
        ("NVIDIA H100 PCIe", 2000),  # EXTRA_BANDWIDTH, not the SXM figure
        ("NVIDIA A100-SXM4-80GB", 2039),
        ("NVIDIA GeForce RTX 4090", 1008),
        ("NVIDIA A10", 600),
        ("NVIDIA GeForce RTX 4070 Ti SUPER", None),  # not an "RTX 4070 Ti"
        ("NVIDIA A100-PCIE-80GB-MIG", None),  # not an "A10"
    ],
)
def test_roofline_bandwidth_matches_the_card_and_no_near_name(
    nvml_name: str, gb_s: float | None
) -> None:
    found = _summary_module().bandwidth_for(nvml_name)
    assert (found.gb_s if found else None) == gb_s
    assert found is None or found.source


def test_tiny_shape_parameter_count_by_hand() -> None:
    # vocab 1024 x 256 embedding; per layer q, o 256x256, k, v 128x256, 3 FFN 512x256,
    # two norms of 256; 2 layers; final norm 256.
    per_layer = 2 * 256 * 256 + 2 * 128 * 256 + 3 * 512 * 256 + 2 * 256
    assert 1024 * 256 + 2 * per_layer + 256 == TINY_PARAMETERS


@pytest.mark.real_server
@pytest.mark.timeout(240)
def test_measure_steps_run_from_the_bundle_with_cpu_builds(unpacked: Path, tmp_path: Path) -> None:
    missing = [str(path) for path in CPU_TOOLS.values() if not path.is_file()]
    assert not missing, f"run scripts/setup.d/10-llama-cpp.sh: {missing}"
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, path in CPU_TOOLS.items():
        (tools / name).symlink_to(path)
    out = tmp_path / "out"
    key = "gpu-check-test-key-7d1f"
    _run(
        unpacked / "gpu-check.sh", "measure", "--bin", tools, "--out", out, "--size", "tiny",
        "--concurrency", "1,2", "--requests", "4", "--tokens", "32", "--jobs", "2",
        env={"LLAMA_API_KEY": key}, timeout=220,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["parameters"] == TINY_PARAMETERS
    # llama-quantize made a Q4_K_M file from the F16 one (F16: 2.9 MB)
    assert "Q4_K_M" in (out / "quantize.log").read_text()
    assert summary["model"]["file_bytes"] < 2_000_000
    assert summary["engine"]["name"] == "llama.cpp"
    assert summary["llama_bench"]["tg_tok_s"] > 0
    standard = summary["llama_bench_standard"]
    assert standard["backends"] == "CPU"  # on the GPU machine: CUDA
    assert standard["pp512_tok_s"] > 0 and standard["tg128_tok_s"] > 0
    assert [level["concurrency"] for level in summary["levels"]] == [1, 2]
    for level in summary["levels"]:
        assert (level["completed"], level["failed"]) == (4, 0)
        assert level["tg_share_of_llama_bench"] == pytest.approx(
            level["server_tg_tok_s_mean"] / summary["llama_bench"]["tg_tok_s"]
        )
        assert level["tg_share_of_roofline"] is None  # no GPU, no roofline
    assert summary["gpu"] is None
    assert summary["roofline"]["note"].startswith("not computed: no GPU")
    assert "skipped" in summary["vllm"]
    assert len(list((out / "bench").glob("*.json"))) == 2
    markdown = (out / "summary.md").read_text()
    assert "| conc |" in markdown and "llama-bench pp512 " in markdown
    _check_roofline_maths(unpacked, out, summary)
    # The key only travelled in the environment: no file the run wrote holds it.
    for written in out.rglob("*"):
        if written.is_file() and "work" not in written.relative_to(out).parts:
            assert key not in written.read_text(errors="replace"), written


def _check_roofline_maths(unpacked: Path, out: Path, measured: dict[str, Any]) -> None:
    """The same results as if NVML had named an H200 (catalog: 4800 GB/s): the roofline is
    bandwidth / weight bytes per token and each level's share is per-stream tg / that."""
    sys.path.insert(0, str(unpacked / "work" / "src" / "llama.cpp" / "gguf-py"))
    try:
        summary_module = _summary_module()
        as_h200 = out / "as-h200"
        as_h200.mkdir()
        for path in (out / "bench").glob("*.json"):
            data = json.loads(path.read_text())
            data["metadata"]["gpu"] = {"name": "NVIDIA H200", "count": 1, "driver": None,
                                       "cuda": None, "memory_total_mib": None}  # fmt: skip
            (as_h200 / path.name).write_text(json.dumps(data))
        model = next((unpacked / "work").glob("model-tiny-q4_k_m.gguf"))
        summary = summary_module.summarise(as_h200, model, {})
    finally:
        sys.path.pop(0)
    weight_bytes = summary["model"]["weight_bytes_per_token"]
    assert weight_bytes == measured["model"]["weight_bytes_per_token"]
    # tied embeddings: every tensor is read; the file adds only metadata and the vocabulary
    assert 0.5 * summary["model"]["file_bytes"] < weight_bytes < summary["model"]["file_bytes"]
    roofline = summary["roofline"]["tg_tok_s"]
    assert roofline == pytest.approx(4800e9 / weight_bytes)
    assert "4800 GB/s" in summary["roofline"]["note"]
    assert summary["roofline"]["note"].startswith("estimated:")
    for level in summary["levels"]:
        assert level["tg_share_of_roofline"] == pytest.approx(
            level["server_tg_tok_s_mean"] / roofline
        )
