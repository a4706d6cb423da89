#!/usr/bin/python
"""Ansible module: install a model that is a folder of files, every file verified against
an llmbox model manifest (module_utils/llmbox_model_manifest.py defines the format).

Install is atomic: the files are fetched into ``.NAME.versions/VERSION.partial`` beside
the model, each hashed as it is written; only when every file matches the manifest is
the directory renamed to ``.NAME.versions/VERSION`` and the symlink ``NAME`` switched to
it with one rename. Until then the previous version stays in place and served, and it is
kept (one back) after the switch. Standard library and Ansible only.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import HTTPException
from pathlib import Path
from typing import IO, Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.llmbox_model_manifest import (
    CHUNK,
    RECORD_SUFFIX,
    ManifestError,
    ManifestFile,
    check_folder,
    check_record,
    digest,
    file_url,
    hf_base_url,
    load,
    mismatch,
    parse,
    record_path,
    to_data,
    write_record,
)
from ansible.module_utils.urls import open_url

DOCUMENTATION = r"""
module: llmbox_model_folder
short_description: Install a model folder, every file verified against a manifest, atomically
options:
  state:
    description: >-
      check_source reads the manifest and checks the source (never changes anything);
      present installs.
    type: str
    choices: [check_source, present]
    default: present
  manifest_path: {description: Manifest file where the module runs (check_source)., type: path}
  manifest: {description: The manifest's data, as check_source returns it., type: dict}
  source:
    description: Where the files come from.
    type: str
    choices: [none, url, folder, archive]
    default: none
  base_url: {description: "source=url: files are at BASE_URL/NAME.", type: str, default: ""}
  hf_repo: {description: "Hugging Face owner/name; sets source=url.", type: str, default: ""}
  hf_revision: {description: The repo's commit (40 hex digits)., type: str, default: ""}
  hf_endpoint: {description: Hugging Face's address., type: str, default: "https://huggingface.co"}
  src: {description: "source=folder|archive: folder or archive where it runs.", type: path}
  dest: {description: Directory that holds the models., type: path}
  name: {description: Name of the model (a symlink) in dest., type: str}
  owner: {description: Owner of the installed files., type: str, default: root}
  group: {description: Group of the installed files., type: str, default: root}
  min_free_bytes: {description: Free space to leave beyond the model., type: int, default: 0}
  verify: {description: Hash every file even if the record matches., type: bool, default: false}
  timeout: {description: Seconds to wait on the network., type: int, default: 60}
author: llmbox
"""

Opener = Callable[[], Any]


def _archive_members(src: str, files: list[ManifestFile]) -> dict[str, Opener]:
    """Manifest name -> opener of its archive member; members may sit under one top folder."""
    members: dict[str, Opener] = {}
    if zipfile.is_zipfile(src):
        archive = zipfile.ZipFile(src)
        for info in archive.infolist():
            if not info.is_dir():
                members[info.filename] = lambda i=info: archive.open(i)
    else:
        tar = tarfile.open(src, "r:*")  # noqa: SIM115 - kept open while members are read
        for member in tar.getmembers():
            if member.isfile():
                members[member.name.removeprefix("./")] = lambda m=member: tar.extractfile(m)
    found: dict[str, Opener] = {}
    for entry in files:
        hits = [n for n in members if n == entry.name or n.split("/", 1)[-1] == entry.name]
        if not hits:
            raise ManifestError(f"{entry.name}: not in archive {src}")
        found[entry.name] = members[sorted(hits, key=len)[0]]
    return found


def _copy_verified(entry: ManifestFile, stream: IO[bytes], path: Path) -> None:
    """Writes ``stream`` to ``path``, hashing as it goes; ManifestError names the file if
    it is longer, shorter or other than the manifest says."""
    sha, size = hashlib.sha256(), 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > entry.size:
                raise ManifestError(
                    f"{entry.name}: more than the {entry.size} bytes the manifest says"
                )
            sha.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if problem := mismatch(entry, size, sha.hexdigest()):
        raise ManifestError(
            problem + " (download cut short or tampered)" if size < entry.size else problem
        )


def _check_source(module: AnsibleModule, files: list[ManifestFile]) -> None:
    """Read-only: the whole source matches the manifest, checked where it lies, before
    anything is copied (URL sources: every file's size, asked with HEAD)."""
    p = module.params
    if p["source"] == "folder":
        check_folder(p["src"], files, full=True)
    elif p["source"] == "archive":
        for entry in files:
            with _archive_members(p["src"], [entry])[entry.name]() as stream:
                sha = hashlib.sha256()
                size = 0
                while chunk := stream.read(CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
            if problem := mismatch(entry, size, sha.hexdigest()):
                raise ManifestError(f"{problem} (in {p['src']})")
    elif p["source"] == "url":
        for entry in files:
            url = file_url(p["base_url"], entry.name)
            try:
                response = open_url(
                    url, method="HEAD", timeout=p["timeout"], follow_redirects="all"
                )
            except Exception as error:  # urllib, ssl and socket errors alike
                raise ManifestError(f"{entry.name}: {url} cannot be reached: {error}") from None
            length = response.headers.get("X-Linked-Size") or response.headers.get("Content-Length")
            if length is not None and int(length) != entry.size:
                raise ManifestError(
                    f"{entry.name}: {url} has {length} bytes, the manifest says {entry.size}"
                )


@contextmanager
def _open_source(module: AnsibleModule, entry: ManifestFile) -> Iterator[IO[bytes]]:
    p = module.params
    if p["source"] == "url":
        url = file_url(p["base_url"], entry.name)
        try:
            response = open_url(url, timeout=p["timeout"], follow_redirects="all")
        except Exception as error:
            raise ManifestError(f"{entry.name}: {url} cannot be downloaded: {error}") from None
        with response:
            yield response
    elif p["source"] == "folder":
        with (Path(p["src"]) / entry.name).open("rb") as handle:
            yield handle
    else:
        with _archive_members(p["src"], [entry])[entry.name]() as stream:
            yield stream


def _set_owner(root: Path, owner: str, group: str) -> None:
    uid, gid = pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    for dirpath, _, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        Path(dirpath).chmod(0o755)
        for filename in filenames:
            os.chown(Path(dirpath) / filename, uid, gid)
            (Path(dirpath) / filename).chmod(0o644)


def _current(link: Path, versions: Path) -> Path | None:
    """The version directory the model link points at (None: not installed yet)."""
    if not link.is_symlink() and not link.exists():
        return None
    if not link.is_symlink() or not str(link.readlink()).startswith(f"{versions.name}/"):
        raise ManifestError(f"{link} exists and is not a model_store folder link; move it away")
    return versions / link.readlink().name


def _reason_to_install(
    module: AnsibleModule, files: list[ManifestFile], current: Path | None, target: Path
) -> tuple[str, bool]:
    """(why the manifest's version must be installed, or "" when it is in place; whether
    the verification record must be written again). A stat per file when the record
    matches; every file hashed when it does not, or on demand."""
    if current != target or not target.is_dir():
        return "not installed", False
    stale = check_record(target)
    if stale is None and not module.params["verify"]:
        return "", False
    try:
        check_folder(target, files, full=True)
    except ManifestError as error:
        return f"the installed copy is damaged: {error}", False
    return "", stale is not None


def _fetch(module: AnsibleModule, files: list[ManifestFile], staging: Path) -> None:
    """Every file into ``staging``, each verified as it is written; ManifestError names
    the first that is not what the manifest says."""
    p = module.params
    needed = sum(f.size for f in files) + p["min_free_bytes"]
    free = shutil.disk_usage(staging.parent).free
    if free < needed:
        raise ManifestError(
            f"{p['dest']} has {free / 1048576:.1f} MiB free; the model and "
            f"model_store_min_free_mb need {needed / 1048576:.1f} MiB"
        )
    if p["source"] == "url":
        _check_source(module, files)  # every size, before any byte is downloaded
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run
    staging.mkdir()
    for entry in files:
        try:
            with _open_source(module, entry) as stream:
                _copy_verified(entry, stream, staging / entry.name)
        except (OSError, HTTPException, tarfile.TarError, zipfile.BadZipFile) as error:
            # a cut connection, a short archive: named, and nothing installed
            raise ManifestError(f"{entry.name}: fetching it failed: {error}") from None
    _set_owner(staging, p["owner"], p["group"])


def _switch(link: Path, versions: Path, version: str, keep: set[str]) -> None:
    """Points the link at ``version`` with one rename, then drops versions not in ``keep``."""
    switch = link.with_name(f".{link.name}.link-new")
    switch.unlink(missing_ok=True)
    switch.symlink_to(f"{versions.name}/{version}")
    switch.replace(link)  # the one atomic step: readers see the old folder or the new one
    for old in versions.iterdir():
        if old.name.removesuffix(RECORD_SUFFIX) not in keep:
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()


def _present(module: AnsibleModule, files: list[ManifestFile]) -> dict[str, Any]:
    p = module.params
    link = Path(p["dest"]) / p["name"]
    versions = link.with_name(f".{link.name}.versions")
    version = digest(files)
    target = versions / version
    current = _current(link, versions)
    reason, rewrite_record = _reason_to_install(module, files, current, target)
    result: dict[str, Any] = {
        "path": str(link),
        "version": version,
        "version_dir": str(target),
        "previous": str(current) if current not in (None, target) else "",
        "reason": reason,
        "record_stale": rewrite_record,
        "changed": bool(reason) or rewrite_record,
    }
    if module.check_mode or not result["changed"]:
        return result
    if not reason:
        write_record(target, files)
        return result
    versions.mkdir(mode=0o755, parents=True, exist_ok=True)
    staging = versions / f"{version}.partial"
    try:
        _fetch(module, files, staging)
        damaged = versions / f"{version}.damaged"
        if target.exists():  # a damaged copy of this version: out of the way in one rename
            shutil.rmtree(damaged, ignore_errors=True)
            target.rename(damaged)
        staging.rename(target)
        shutil.rmtree(damaged, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_record(target, files)
    _switch(link, versions, version, {version, current.name if current else version})
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["check_source", "present"], "default": "present"},
            "manifest_path": {"type": "path"},
            "manifest": {"type": "dict"},
            "source": {
                "type": "str",
                "choices": ["none", "url", "folder", "archive"],
                "default": "none",
            },
            "base_url": {"type": "str", "default": ""},
            "hf_repo": {"type": "str", "default": ""},
            "hf_revision": {"type": "str", "default": ""},
            "hf_endpoint": {"type": "str", "default": "https://huggingface.co"},
            "src": {"type": "path"},
            "dest": {"type": "path"},
            "name": {"type": "str"},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "min_free_bytes": {"type": "int", "default": 0},
            "verify": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 60},
        },
        required_one_of=[["manifest_path", "manifest"]],
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["hf_repo"]:
            p["base_url"] = hf_base_url(p["hf_endpoint"], p["hf_repo"], p["hf_revision"])
            p["source"] = "url" if p["source"] != "none" else "none"
        files = load(p["manifest_path"]) if p["manifest_path"] else parse(p["manifest"])
        if p["state"] == "check_source":
            _check_source(module, files)
            module.exit_json(
                changed=False,
                manifest=to_data(files),
                version=digest(files),
                base_url=p["base_url"],
                size_bytes=sum(f.size for f in files),
                files=len(files),
            )
        result = _present(module, files)
        module.exit_json(**result, record=str(record_path(result["version_dir"])))
    except ManifestError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
