#!/usr/bin/env python3
"""Take one backend of an llmbox gateway out of rotation, or put it back, through
HAProxy's runtime API (the stats socket of roles/gateway), and wait until it took effect.

    llmbox-gateway-runtime.py drain SERVER [--timeout S]   # no new requests, wait for 0 in flight
    llmbox-gateway-runtime.py ready SERVER [--timeout S]   # back in rotation, wait until UP

Runs on the gateway (site.yml's rolling update delegates it there) with the standard
library only: socat is not installed on gateways. Prints one JSON object for Ansible:
{"changed": bool, "status": HAProxy's status of the server, "skipped": why (when nothing
was done)}. A gateway that is not converged yet (no socket) or that does not balance over
SERVER (local shape, another group) is no error: there is nothing to drain.
Reference: HAProxy's management guide, "Unix Socket commands" (set server, show stat).
"""

from __future__ import annotations

import argparse
import csv
import json
import socket
import sys
import time
from pathlib import Path

SOCKET = Path("/run/haproxy/admin.sock")
BACKEND = "llmbox_engines"


def runtime(command: str, path: Path) -> str:
    """One command per connection (the API's non-interactive mode): send, read to EOF."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def server_stat(server: str, path: Path) -> dict[str, str] | None:
    """The server's row of `show stat` (status, scur = requests in flight, qcur = queued)."""
    lines = runtime("show stat", path).lstrip("# ").splitlines()
    for row in csv.DictReader(lines):
        if row.get("pxname") == BACKEND and row.get("svname") == server:
            return row
    return None


def set_state(server: str, state: str, path: Path) -> None:
    answer = runtime(f"set server {BACKEND}/{server} state {state}", path).strip()
    if answer:  # the API answers nothing on success
        sys.exit(f"HAProxy refused 'set server {BACKEND}/{server} state {state}': {answer}")


def wait(server: str, path: Path, timeout: float, done: str) -> dict[str, str]:
    """Polls `show stat` until done(row) or timeout; exits naming what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        row = server_stat(server, path)
        if row is None:
            sys.exit(f"{BACKEND}/{server} disappeared from the gateway while waiting")
        if done == "idle" and int(row["scur"] or 0) == 0 and int(row["qcur"] or 0) == 0:
            return row
        if done == "up" and row["status"] == "UP":
            return row
        if time.monotonic() > deadline:
            sys.exit(
                f"{BACKEND}/{server} not {done} after {timeout:.0f} s: status {row['status']}, "
                f"{row['scur']} requests in flight, {row['qcur']} queued"
            )
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["drain", "ready"])
    parser.add_argument("server", help="the backend's name in HAProxy (its inventory name)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
    parser.add_argument("--socket", type=Path, default=SOCKET)
    args = parser.parse_args()
    result: dict[str, object] = {"changed": False}
    if not args.socket.exists():
        result["skipped"] = f"no runtime API at {args.socket} (gateway not converged yet)"
    elif (row := server_stat(args.server, args.socket)) is None:
        result["skipped"] = f"{args.server} is not a backend of {BACKEND} on this gateway"
    elif args.action == "drain":
        # The command is idempotent, so it is always sent: a server drained by a failed run
        # whose engine is now down shows DOWN, not DRAIN.
        set_state(args.server, "drain", args.socket)
        result["changed"] = not row["status"].startswith(("DRAIN", "MAINT"))
        result["status"] = wait(args.server, args.socket, args.timeout, "idle")["status"]
    else:
        set_state(args.server, "ready", args.socket)
        result["changed"] = row["status"] != "UP"
        # UP only after the health check passed `rise` times: the engine answers /health.
        result["status"] = wait(args.server, args.socket, args.timeout, "up")["status"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
