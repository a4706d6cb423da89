"""The model manifest: the one definition of the format, shared by ``llmbox model
manifest`` (which writes it) and the model_store role (which checks a model folder
against it on the controller, on the host, and at every service start).

The role reaches this file through the symlink
``roles/model_store/module_utils/llmbox_model_manifest.py`` and copies it to hosts, so it
must stay standard library only, Python 3.11+, and import nothing from llmbox.

Format (JSON, which is also YAML)::

    {"llmbox_model_manifest": 1,
     "files": [{"name": "config.json", "size": 688, "sha256": "<64 hex>"}, ...]}

``name`` is a relative POSIX path inside the model folder (no ``..``, no leading ``/``,
no hidden parts), ``size`` the byte count, ``sha256`` 64 lowercase hex digits. Files are
sorted by name. The manifest's own digest (sha256 of its canonical JSON) names the
installed version directory, so two manifests that pin the same files give the same
version.

Run as a script (``python3 llmbox_model_manifest.py check LINK``) it is the start-time
check of an installed folder: every file's size, mtime, ctime and inode against the
record written when the role last hashed it in full (a stat per file: milliseconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 1
FORMAT_KEY = "llmbox_model_manifest"
CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HF_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_HF_REVISION = re.compile(r"^[0-9a-f]{40}$")
RECORD_SUFFIX = ".verified"


class ManifestError(ValueError):
    """A manifest, or a file checked against it, is not what it should be."""


@dataclass(frozen=True)
class ManifestFile:
    """One file of a model folder: relative path, size in bytes, sha256 hex digest."""

    name: str
    size: int
    sha256: str


def check_name(name: object) -> str:
    """``name`` if it is a safe relative path inside a folder, else ManifestError."""
    if not isinstance(name, str) or not name:
        raise ManifestError(f"file name {name!r} is not a non-empty string")
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ManifestError(
            f"file name {name!r} is not a relative path inside the folder "
            "(valid: parts without '..', '.', leading dots or empty parts, e.g. 'config.json')"
        )
    return name


def parse(data: object) -> list[ManifestFile]:
    """The files of a manifest (already loaded from JSON/YAML), every entry validated."""
    if not isinstance(data, dict) or data.get(FORMAT_KEY) != FORMAT_VERSION:
        raise ManifestError(
            f"not an llmbox model manifest: expected a mapping with {FORMAT_KEY}: {FORMAT_VERSION}"
        )
    entries = data.get("files")
    if not isinstance(entries, list) or not entries:
        raise ManifestError("manifest 'files' must be a non-empty list")
    files: list[ManifestFile] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ManifestError(f"manifest entry {entry!r} is not a mapping of name, size, sha256")
        name = check_name(entry.get("name"))
        size, digest = entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{name}: size {size!r} is not a byte count (valid: integer >= 0)")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ManifestError(f"{name}: sha256 {digest!r} is not 64 lowercase hex digits")
        files.append(ManifestFile(name, size, digest))
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        twice = sorted(n for n in names if names.count(n) > 1)[0]
        raise ManifestError(f"manifest lists a file twice: {twice}")
    return sorted(files, key=lambda f: f.name)


def load(path: str | Path) -> list[ManifestFile]:
    """Reads and validates a manifest file (JSON; YAML written by this module is JSON)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ManifestError(f"cannot read manifest {path}: {error}") from None
    return parse(data)


def to_data(files: Iterable[ManifestFile]) -> dict[str, object]:
    ordered = sorted(files, key=lambda f: f.name)
    return {
        FORMAT_KEY: FORMAT_VERSION,
        "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in ordered],
    }


def dumps(files: Iterable[ManifestFile]) -> str:
    return json.dumps(to_data(files), indent=2) + "\n"


def digest(files: Iterable[ManifestFile]) -> str:
    """sha256 of the manifest's canonical JSON: the installed version's name."""
    canonical = json.dumps(to_data(files), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def hash_file(path: str | Path, progress: Callable[[int], None] | None = None) -> tuple[int, str]:
    """(size, sha256) of a file read in 1 MiB chunks; ``progress`` gets each chunk's size."""
    sha, size = hashlib.sha256(), 0
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return size, sha.hexdigest()


def folder_files(folder: str | Path) -> list[str]:
    """Relative names of the regular files under ``folder`` (hidden ones left out)."""
    root = Path(folder)
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if not filename.startswith("."):
                names.append((Path(dirpath) / filename).relative_to(root).as_posix())
    return names


def mismatch(entry: ManifestFile, size: int, sha256: str | None) -> str | None:
    """Why a file with this size (and sha256, when read) is not ``entry``, or None."""
    if size != entry.size:
        return f"{entry.name}: size {size} bytes, the manifest says {entry.size}"
    if sha256 is not None and sha256 != entry.sha256:
        return f"{entry.name}: sha256 {sha256}, the manifest says {entry.sha256}"
    return None


def check_folder(folder: str | Path, files: list[ManifestFile], full: bool = True) -> None:
    """Raises ManifestError naming the first file of ``folder`` that is missing or differs
    from the manifest: sizes of every file first (cheap), then, if ``full``, the hashes."""
    root = Path(folder)
    for entry in files:
        path = root / entry.name
        if not path.is_file():
            raise ManifestError(f"{entry.name}: missing from {root}")
        if problem := mismatch(entry, path.stat().st_size, None):
            raise ManifestError(problem)
    if full:
        for entry in files:
            size, sha = hash_file(root / entry.name)
            if problem := mismatch(entry, size, sha):
                raise ManifestError(problem)


def hf_base_url(endpoint: str, repo: str, revision: str) -> str:
    """Where a Hugging Face repository's files lie at a pinned commit:
    ``<endpoint>/<repo>/resolve/<revision>``; the repo is owner/name, the revision a
    full 40-hex commit (a branch or tag would move under the pin)."""
    if not _HF_REPO.match(repo):
        raise ManifestError(f"Hugging Face repo {repo!r} is not owner/name")
    if not _HF_REVISION.match(revision):
        raise ManifestError(
            f"Hugging Face revision {revision!r} is not a pinned commit "
            "(valid: 40 lowercase hex digits)"
        )
    return f"{endpoint.rstrip('/')}/{repo}/resolve/{revision}"


def file_url(base_url: str, name: str) -> str:
    """URL of one manifest file under a base URL (each path part percent-encoded)."""
    return f"{base_url.rstrip('/')}/{urllib.parse.quote(check_name(name))}"


def stamp(path: str | Path) -> list[int]:
    """size, mtime_ns, ctime_ns, inode: what an in-place write, a swap or a truncation changes."""
    info = Path(path).stat()
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def record_path(version_dir: str | Path) -> Path:
    version = Path(version_dir)
    return version.with_name(version.name + RECORD_SUFFIX)


def write_record(version_dir: str | Path, files: list[ManifestFile]) -> None:
    """Records each verified file's stamp next to the version directory (atomically)."""
    record = {
        "manifest_sha256": digest(files),
        "files": {f.name: stamp(Path(version_dir) / f.name) for f in files},
    }
    target = record_path(version_dir)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")
    partial.chmod(0o644)
    partial.replace(target)


def check_record(version_dir: str | Path) -> str | None:
    """Why the installed version no longer matches its record (naming the file), or None."""
    try:
        record = json.loads(record_path(version_dir).read_text(encoding="utf-8"))
        stamps = record["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no verification record {record_path(version_dir)}"
    for name, expected in sorted(stamps.items()):
        try:
            now = stamp(Path(version_dir) / name)
        except OSError:
            return f"{name}: missing"
        if now != expected:
            return f"{name}: size/mtime/ctime/inode {now}, verified as {expected}"
    return None


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "check":
        print("usage: llmbox_model_manifest.py check MODEL_LINK", file=sys.stderr)
        return 2
    version_dir = os.path.realpath(argv[1])
    problem = check_record(version_dir)
    if problem is not None:
        print(
            f"{argv[1]} is not the folder verified at install ({problem}), refusing to start; "
            "run site.yml to verify or restore it",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
