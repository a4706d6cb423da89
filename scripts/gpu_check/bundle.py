#!/usr/bin/env python3
"""Makes the offline bundle `scripts/gpu-check.sh run` needs on a GPU machine with no network.

The bundle is one tar file holding a ``gpu-check/`` folder:

- ``gpu-check.sh`` and ``gpu_check/*.py``: this script set itself;
- ``llama.cpp-src.tar.gz``: the pinned llama.cpp tree (the same archive the llama_cpp role
  builds from, ``llmbox.lab.playbooks.LLAMA_CPP_SOURCE``) trimmed to what a CUDA build of
  llama-server, llama-bench and llama-quantize reads, plus ``gguf-py`` (the model maker
  writes with the gguf package of the same llama.cpp);
- ``wheels/py3.X/``: per Python version, the wheel set `llmbox bench` needs on a host
  (made by the llm_benchmark role's ``wheelhouse.py``: llmbox, httpx, nvidia-ml-py,
  psutil, pyyaml, ...) plus numpy for gguf;
- ``build-flags.json``: the llama_cpp role's cmake arguments (see ``build_flags``);
- ``MANIFEST.json``: what is inside, with sizes and the source archive's sha256.

vLLM is not bundled: its CUDA wheel and the torch it pulls are several GB.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / "roles" / "llm_benchmark" / "files" / "wheelhouse.py"
ROLE_VARS = REPO / "roles" / "llama_cpp" / "vars" / "main.yml"
ROLE_DEFAULTS = REPO / "roles" / "llama_cpp" / "defaults" / "main.yml"
DEFAULT_PYTHONS = ("3.11", "3.12", "3.13")  # Debian 12, Ubuntu 24.04, Debian 13
# numpy >= 2.2.6 is what llama.cpp's gguf-py asks for (gguf-py/pyproject.toml).
EXTRA_WHEELS = ("numpy>=2.2.6",)

# Parts of llama.cpp's tree that a CUDA build of the three tools never reads: the
# top-level CMakeLists adds tests/examples/pocs only when asked (the role turns them
# off), ggml adds a backend's folder only when that backend is on, and llama-server's
# web UI is generated from tools/ui/dist only when present (it is not in this archive).
DROPPED = (
    "models", "docs", "media", "tests", "benches", "examples", "pocs", "ci", "skills",
    "conversion", "requirements", ".devops", ".github",
    "tools/server/tests", "tools/server/bench",
    *(f"ggml/src/ggml-{name}" for name in (
        "cann", "et", "hexagon", "hip", "metal", "musa", "openvino", "opencl", "sycl",
        "virtgpu", "vulkan", "webgpu", "zdnn", "zendnn",
    )),
)  # fmt: skip
KEPT_IN_UI = {"tools/ui/CMakeLists.txt"}


def load_wheelhouse() -> ModuleType:
    """The llm_benchmark role's wheel-set builder, imported from its file (one definition)."""
    spec = importlib.util.spec_from_file_location("wheelhouse", WHEELHOUSE)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {WHEELHOUSE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_archive() -> tuple[Path, str]:
    """The pinned llama.cpp source archive and its subfolder, as the role uses them."""
    sys.path.insert(0, str(REPO))
    from llmbox.lab.playbooks import LLAMA_CPP_SOURCE  # noqa: PLC0415  (repo on sys.path first)

    if not LLAMA_CPP_SOURCE.is_file():
        sys.exit(f"{LLAMA_CPP_SOURCE} is missing: run scripts/setup.d/05-llama-cpp-source.sh first")
    defaults = ROLE_DEFAULTS.read_text()
    subdir = re.search(r"^llama_cpp_source_subdir:\s*(\S+)", defaults, re.MULTILINE)
    if subdir is None:
        sys.exit(f"{ROLE_DEFAULTS} names no llama_cpp_source_subdir")
    return LLAMA_CPP_SOURCE, subdir.group(1).strip("'\"")


def kept(relative: str) -> bool:
    if relative.startswith("tools/ui/") and relative not in KEPT_IN_UI:
        return False
    return not any(relative == d or relative.startswith(d + "/") for d in DROPPED)


def trimmed_source(archive: Path, subdir: str, dest: Path) -> dict[str, int]:
    """Copies ``archive``'s ``subdir`` minus DROPPED into ``dest`` (a .tar.gz whose top
    folder is ``llama.cpp``); returns file counts and bytes before and after."""
    counts = {"files_in": 0, "bytes_in": 0, "files_out": 0, "bytes_out": 0}
    with tarfile.open(archive) as src, tarfile.open(dest, "w:gz", compresslevel=6) as out:
        for member in src:
            _, _, rest = member.name.partition("/")
            if not rest.startswith(subdir + "/"):
                continue
            relative = rest.removeprefix(subdir + "/")
            if member.isfile():
                counts["files_in"] += 1
                counts["bytes_in"] += member.size
            if not kept(relative) or relative.endswith(".gguf"):
                continue
            member.name = f"llama.cpp/{relative}"
            # a long name travels in a PAX header, which would win over the new name
            member.pax_headers = {k: v for k, v in member.pax_headers.items() if k != "path"}
            if member.isfile():
                counts["files_out"] += 1
                counts["bytes_out"] += member.size
                out.addfile(member, src.extractfile(member))
            elif member.isdir() or member.issym():
                out.addfile(member)
    return counts


# The role's CUDA flags are data (roles/llama_cpp/vars/main.yml) with two placeholders the
# role fills with Jinja's replace and run fills the same way: {cuda_home} (the toolkit nvcc
# belongs to) and {cuda_architectures} (compute capability without the dot).
ROLE_CUDA_FLAGS_KEY = "__llama_cpp_cuda_cmake_flags"
# What a native x86_64 build adds by default (the role's llama_cpp_amx: false).
ROLE_NO_AMX_FLAGS_KEY = "__llama_cpp_no_amx_cmake_flags"
# Used only when the role's vars hold no such list (an older checkout); same content.
FALLBACK_CUDA_FLAGS = [
    "-DGGML_CUDA=ON",
    "-DCMAKE_CUDA_COMPILER={cuda_home}/bin/nvcc",
    "-DCUDAToolkit_ROOT={cuda_home}",
    "-DCMAKE_CUDA_ARCHITECTURES={cuda_architectures}",
    "-DCMAKE_INSTALL_RPATH={cuda_home}/lib64;$ORIGIN",
    "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
]
# The role's other cmake arguments are a Jinja expression inside the task "Configure the
# build" of roles/llama_cpp/tasks/build.yml, not data, so they are mirrored here (the
# test checks each one still appears in that task); GGML_NATIVE=ON as the role's default
# llama_cpp_native: true (the check builds on the machine it measures).
COMMON_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_NATIVE=ON",
]


def build_flags() -> dict[str, object]:
    """The llama_cpp role's cmake arguments: CUDA ones read from the role's vars, the
    common ones mirrored from its build task (see COMMON_FLAGS)."""
    import yaml  # noqa: PLC0415  (the controller's venv has it; the GPU side never runs this)

    data = yaml.safe_load(ROLE_VARS.read_text()) if ROLE_VARS.is_file() else None
    cuda = data.get(ROLE_CUDA_FLAGS_KEY) if isinstance(data, dict) else None
    no_amx = data.get(ROLE_NO_AMX_FLAGS_KEY, []) if isinstance(data, dict) else []
    if isinstance(cuda, list) and all(isinstance(flag, str) for flag in cuda):
        source = f"{ROLE_VARS.relative_to(REPO)} {ROLE_CUDA_FLAGS_KEY}"
    else:
        cuda, source = FALLBACK_CUDA_FLAGS, "bundle.py FALLBACK_CUDA_FLAGS"
    return {
        "cuda_source": source,
        "common_source": "bundle.py COMMON_FLAGS, mirrored from roles/llama_cpp/tasks/build.yml",
        "common": COMMON_FLAGS,
        "cuda": cuda,
        # added on x86_64 only, as the role does by default (llama_cpp_amx: false)
        "x86_64": no_amx,
    }


def wheels(pythons: list[str], arch: str, dest: Path, cache: Path) -> dict[str, list[str]]:
    """Per Python version: the llm_benchmark role's wheel set plus EXTRA_WHEELS."""
    wheelhouse = load_wheelhouse()
    listing: dict[str, list[str]] = {}
    for python in pythons:
        done = subprocess.run(
            [
                sys.executable,
                str(WHEELHOUSE),
                "--source",
                str(REPO),
                "--dest",
                str(cache),
                "--python",
                python,
                "--arch",
                arch,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"wheelhouse.py for Python {python} failed:\n{done.stderr[-2000:]}")
        wheel_set = Path(json.loads(done.stdout.strip().splitlines()[-1])["dir"])
        target = dest / f"py{python}"
        target.mkdir(parents=True)
        for wheel in wheel_set.glob("*.whl"):
            (target / wheel.name).write_bytes(wheel.read_bytes())
        platforms = [f"manylinux{tag}_{arch}" for tag in ("2014", "_2_17", "_2_28")]
        wheelhouse.pip(
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--no-deps",
            "--python-version",
            python,
            "--implementation",
            "cp",
            *(a for p in platforms for a in ("--platform", p)),
            "--dest",
            str(target),
            *EXTRA_WHEELS,
        )
        listing[python] = sorted(w.name for w in target.glob("*.whl"))
    return listing


def add_text(tar: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the bundle to write, e.g. gpu-check.tar")
    parser.add_argument(
        "--python",
        default=",".join(DEFAULT_PYTHONS),
        help="comma-separated Python versions of the GPU machine to cover",
    )
    parser.add_argument("--arch", default="x86_64", choices=["x86_64", "aarch64"])
    parser.add_argument(
        "--wheel-cache", type=Path, default=REPO / ".cache" / "llm_benchmark_wheels"
    )
    parser.add_argument(
        "--source-only",
        action="store_true",
        help="write only the trimmed source (OUT.tar.gz) and print the "
        "build flags (the CPU self-test builds llama-quantize from them)",
    )
    args = parser.parse_args()
    if args.source_only:
        archive, subdir = source_archive()
        trimmed_source(archive, subdir, args.out)
        print(json.dumps({"archive": archive.name, **build_flags()}))
        return
    pythons = [p.strip() for p in args.python.split(",") if p.strip()]
    bad = [p for p in pythons if not re.fullmatch(r"3\.(1[1-9])", p)]
    if bad or not pythons:
        sys.exit(
            f"--python {args.python!r}: give versions 3.11 or later (llmbox needs 3.11), "
            "e.g. 3.11,3.12"
        )
    if not args.out.name.endswith(".tar"):
        sys.exit(f"{args.out}: the bundle is a plain tar file; name it *.tar")
    archive, subdir = source_archive()
    from llmbox.bench.hostinfo import sha256_of  # noqa: PLC0415  (repo on sys.path: source_archive)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-check-bundle-") as tmp:
        work = Path(tmp)
        source = work / "llama.cpp-src.tar.gz"
        counts = trimmed_source(archive, subdir, source)
        wheel_lists = wheels(pythons, args.arch, work / "wheels", args.wheel_cache)
        manifest = {
            "made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "llama_cpp_archive": archive.name,
            "llama_cpp_archive_sha256": sha256_of(archive),
            "source": counts,
            "arch": args.arch,
            "pythons": pythons,
            "wheels": wheel_lists,
            "vllm": "not bundled: its CUDA wheel and torch are several GB",
        }
        partial = args.out.with_name(args.out.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(REPO / "scripts" / "gpu-check.sh", "gpu-check/gpu-check.sh")
            for script in sorted((REPO / "scripts" / "gpu_check").glob("*.py")):
                tar.add(script, f"gpu-check/gpu_check/{script.name}")
            tar.add(source, "gpu-check/llama.cpp-src.tar.gz")
            tar.add(work / "wheels", "gpu-check/wheels")
            add_text(tar, "gpu-check/build-flags.json", json.dumps(build_flags(), indent=2))
            add_text(tar, "gpu-check/MANIFEST.json", json.dumps(manifest, indent=2))
        partial.replace(args.out)
    size = args.out.stat().st_size
    print(
        json.dumps(
            {
                "bundle": str(args.out),
                "bytes": size,
                "mib": round(size / 2**20, 1),
                "source_mib": round(source_size(args.out) / 2**20, 1),
                "seconds": round(time.monotonic() - started, 1),
                "pythons": pythons,
            }
        )
    )


def source_size(bundle: Path) -> int:
    with tarfile.open(bundle) as tar:
        return tar.getmember("gpu-check/llama.cpp-src.tar.gz").size


if __name__ == "__main__":
    main()
