#!/usr/bin/python3
"""Record, and later check, the state a complete site.yml converge left on this host.

site.yml writes the stamp at the end of a complete, untagged run and checks it at the
start of the next: when the play's inputs (fingerprint: role files, the host's variables
and facts it depends on) are the same and nothing the play manages has drifted, the host
is already converged and the play ends for it in a few seconds instead of re-running
every task. Any difference, or any doubt (no stamp, unreadable stamp), means a full run.

  llmbox-converge-stamp write < spec.json    # spec: fingerprint + what to watch
  llmbox-converge-stamp check FINGERPRINT    # exit 0: unchanged; 1: prints why not
  llmbox-converge-stamp forget               # drop the stamp before anything changes

What is watched (the spec's keys):
  hash      files or directories (recursively), by sha256; a missing path is recorded
            as missing, so one that appears later is drift too
  stat      big files (models) by size, mtime, ctime and inode, as the start-time
            model check does, instead of reading gigabytes
  units     systemd units that must be enabled and active
  packages  Debian packages that must be installed
  users     accounts that must exist
  nft       nftables tables (family name), by the sha256 of their stateless listing
and always the PCI devices (vendor, device, class), so a GPU added or removed is drift.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

STAMP = Path("/var/lib/llmbox/converge-stamp.json")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stat_line(path: Path) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"


def _files(root: str) -> list[Path]:
    """The files under root (itself if it is not a directory), in a stable order."""
    top = Path(root)
    if not top.is_dir():
        return [top]
    return sorted(Path(dirpath) / name for dirpath, _dirs, names in os.walk(top) for name in names)


def _hashes(roots: list[str]) -> dict[str, str]:
    return {
        str(path): _file_sha256(path) if path.is_file() else _stat_line(path)
        for root in roots
        for path in _files(root)
    }


def _stats(roots: list[str]) -> dict[str, str]:
    return {str(path): _stat_line(path) for root in roots for path in _files(root)}


def _pci() -> dict[str, str]:
    """Vendor, device and class of every PCI device: a GPU added or removed is drift."""
    return {
        device.name: " ".join(
            (device / key).read_text().strip()
            for key in ("vendor", "device", "class")
            if (device / key).exists()
        )
        for device in sorted(Path("/sys/bus/pci/devices").glob("*"))
    }


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _nft(tables: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for table in tables:
        listing = _run(["nft", "-s", "list", "table", *table.split()])
        ok = listing.returncode == 0
        found[table] = hashlib.sha256(listing.stdout.encode()).hexdigest() if ok else "missing"
    return found


def _drift(spec: dict[str, Any], recorded: dict[str, Any]) -> str | None:
    """The first difference between this host and the stamp, or None."""
    for kind, now in (
        ("hash", _hashes(spec.get("hash", []))),
        ("stat", _stats(spec.get("stat", []))),
        ("nft", _nft(spec.get("nft", []))),
        ("pci", _pci()),
    ):
        before = recorded.get(kind, {})
        for path in sorted(set(now) | set(before)):
            if now.get(path) != before.get(path):
                return f"{path} changed since the last complete converge"
    for unit in spec.get("units", []):
        for state in ("is-enabled", "is-active"):
            if _run(["systemctl", state, "--quiet", unit]).returncode != 0:
                return f"{unit} fails systemctl {state}"
    for package in spec.get("packages", []):
        status = _run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package]).stdout
        if not status.startswith("ii"):
            return f"package {package} is not installed"
    for user in spec.get("users", []):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"user {user} is missing"
    return None


def write(spec: dict[str, Any]) -> bool:
    """Writes the stamp; False when the one there already says the same."""
    stamp = {
        "fingerprint": spec["fingerprint"],
        "spec": spec,
        "hash": _hashes(spec.get("hash", [])),
        "stat": _stats(spec.get("stat", [])),
        "nft": _nft(spec.get("nft", [])),
        "pci": _pci(),
    }
    try:
        if json.loads(STAMP.read_text()) == stamp:
            return False
    except (OSError, ValueError):
        pass
    STAMP.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=STAMP.parent, delete=False) as tmp:
        json.dump(stamp, tmp, indent=1, sort_keys=True)
        tmp.flush()
        os.fsync(tmp.fileno())
    Path(tmp.name).chmod(0o600)
    Path(tmp.name).replace(STAMP)
    return True


def check(fingerprint: str) -> str | None:
    try:
        recorded = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return "no stamp of a complete converge"
    if recorded.get("fingerprint") != fingerprint:
        return "the play's inputs changed"
    return _drift(recorded["spec"], recorded)


def main(argv: list[str]) -> int:
    if argv[1:2] == ["write"]:
        print("written" if write(json.load(sys.stdin)) else "unchanged")
        return 0
    if argv[1:2] == ["check"] and len(argv) == 3:
        reason = check(argv[2])
        print(reason or "unchanged since the last complete converge")
        return 0 if reason is None else 1
    if argv[1:2] == ["forget"]:
        existed = STAMP.exists()
        STAMP.unlink(missing_ok=True)
        print("forgotten" if existed else "no stamp")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
