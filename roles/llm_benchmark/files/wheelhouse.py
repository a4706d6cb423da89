#!/usr/bin/env python3
"""Controller side of llm_benchmark: the wheels a served host needs to run `llmbox bench`.

Builds a wheel of the llmbox checkout (SOURCE) and downloads the wheels of what
`llmbox bench` imports, for the host's Python version and CPU architecture, into
DEST/<key>/ - key = hash of the checkout's package files + Python version + arch - so the
host installs them with `pip --no-index` and needs no internet. The list of packages is
read from the built wheel's own metadata (core requirements + the ``bench`` extra), minus
the ones only the controller uses (HOST_UNNEEDED). Does nothing when DEST/<key> is
complete. Prints one JSON line: {"changed": bool, "dir": ..., "key": ...}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Matplotlib draws the report's charts and Fabric drives `bench --ssh`: both run on the
# controller only, and `llmbox bench` on the host imports neither.
HOST_UNNEEDED = {"matplotlib", "fabric"}
STAMP = ".complete"
REQUIREMENTS = "requirements.txt"


def source_key(source: Path, python: str, arch: str) -> str:
    """Changes whenever a file the wheel is built from changes."""
    digest = hashlib.sha256(f"{python} {arch}".encode())
    files = [source / "pyproject.toml", *sorted((source / "llmbox").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(source)).encode())
            digest.update(path.read_bytes())
    return f"py{python}-{arch}-{digest.hexdigest()[:16]}"


def host_requirements(wheel: Path) -> list[str]:
    """Core requirements and the ``bench`` extra's, from the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    wanted = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        requirement, _, marker = line.removeprefix("Requires-Dist:").strip().partition(";")
        if marker and not re.search(r"extra\s*==\s*['\"]bench['\"]", marker):
            continue
        name = re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0]
        if name.lower() not in HOST_UNNEEDED:
            wanted.append(requirement.strip())
    return wanted


def pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"pip {args[0]} failed:\n{(done.stdout + done.stderr)[-3000:]}")


def build(source: Path, python: str, arch: str, into: Path) -> None:
    into.mkdir(parents=True)
    pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(into), str(source))
    wheel = next(into.glob("llmbox-*.whl"))
    requirements = host_requirements(wheel)
    platforms = [f"manylinux{tag}_{arch}" for tag in ("2014", "_2_17", "_2_28")]
    pip("download", "--quiet", "--only-binary=:all:", "--python-version", python,
        "--implementation", "cp", *(a for p in platforms for a in ("--platform", p)),
        "--dest", str(into), *requirements)  # fmt: skip
    # The host installs exactly these files with `pip --no-deps`: llmbox's own metadata
    # names the controller-only packages too, which are deliberately not here.
    files = sorted(path.name for path in into.glob("*.whl"))
    (into / REQUIREMENTS).write_text("".join(f"./{name}\n" for name in files))
    (into / STAMP).touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, required=True, help="the llmbox checkout")
    parser.add_argument("--dest", type=Path, required=True, help="controller cache directory")
    parser.add_argument("--python", required=True, help="the host's Python, e.g. 3.11")
    parser.add_argument("--arch", required=True, help="the host's machine, e.g. x86_64")
    args = parser.parse_args()
    if not re.fullmatch(r"3\.\d+", args.python):
        sys.exit(f"--python {args.python!r} is not a Python 3 version like 3.11")
    if not (args.source / "pyproject.toml").is_file():
        sys.exit(f"--source {str(args.source)!r} is not the llmbox checkout (no pyproject.toml)")
    key = source_key(args.source.resolve(), args.python, args.arch)
    target = args.dest / key
    if (target / STAMP).exists():
        print(json.dumps({"changed": False, "dir": str(target), "key": key}))
        return
    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dest, prefix=".build-") as tmp:
        partial = Path(tmp) / key
        build(args.source.resolve(), args.python, args.arch, partial)
        shutil.rmtree(target, ignore_errors=True)  # an incomplete one from an interrupted run
        partial.replace(target)
    print(json.dumps({"changed": True, "dir": str(target), "key": key}))


if __name__ == "__main__":
    main()
