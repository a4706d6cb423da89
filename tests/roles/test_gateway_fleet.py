"""playbooks/gateway.yml in front of a fleet, on three booted Debian 12 test hosts: two
serving hosts (site.yml, llama.cpp) behind a third, the gateway (HAProxy, leastconn).

One module-scoped fleet serves every test here: booting and converging three guests is the
expensive part (~5 min on a 2-core machine).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playbook_runner import TEST_API_KEY
from test_gateway import CHAT, KEY_VARS, KEYS, PORT, play, request

from llmbox.lab.playbooks import PlaybookResult
from llmbox.lab.testhosts import TestHost, TestHostPool

pytestmark = pytest.mark.real_host


@dataclass(frozen=True)
class Fleet:
    servers: tuple[TestHost, TestHost]
    gateway: TestHost
    ca_file: Path
    converge: PlaybookResult

    @property
    def url(self) -> str:
        return f"https://{self.gateway.address}:{PORT}"


@pytest.fixture(scope="module")
def fleet(
    test_network: Any,
    ssh_keypair: Any,
    apt_proxy: str,
    office_vars: dict[str, object],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    pool = TestHostPool(test_network, ssh_keypair)
    try:
        servers = (pool.boot("debian12", "gw-srv1-d12"), pool.boot("debian12", "gw-srv2-d12"))
        gateway = pool.boot("debian12", "gw-front-d12")
        ca_dir = tmp_path_factory.mktemp("fleet-ca") / "ca"
        groups = {"llm_servers": list(servers), "llm_gateways": [gateway]}
        site = play("playbooks/site.yml", {"llm_servers": list(servers)}, dict(office_vars))
        if site.rc != 0:
            pytest.fail(f"site.yml failed:\n{site.stdout[-6000:]}", pytrace=False)
        # Admin = the controller alone, so the engines' rules show the gateway's own entry.
        gateway_vars = {
            **office_vars, **KEY_VARS, "gateway_ca_dir": str(ca_dir),
            "firewall_admin_networks": [f"{test_network.bridge_address}/32"],
        }  # fmt: skip
        converge = play("playbooks/gateway.yml", groups, gateway_vars)
        if converge.rc != 0:
            pytest.fail(f"gateway.yml failed:\n{converge.stdout[-6000:]}", pytrace=False)
        yield Fleet(servers, gateway, ca_dir / "ca.crt", converge)
    finally:
        pool.stop_all()


def bench(
    url: str,
    ca_file: Path,
    out: Path,
    concurrency: int,
    requests: int,
    *,
    key: str = KEYS["team-a"],
) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "llmbox", "bench", url, "--model", "smollm2",
         "--api-key-env", "GW_BENCH_KEY", "--ca-file", str(ca_file),
         "--concurrency", str(concurrency), "--requests", str(requests),
         "--output-tokens", "64", "--prompt-tokens", "64", "--warmup", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=900, check=False,
        env=os.environ | {"GW_BENCH_KEY": key},
    )  # fmt: skip
    results = [json.loads(p.read_text())["metrics"] for p in out.rglob("*.json")]
    assert len(results) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results[0] | {"_rc": proc.returncode}


def _connects(source: TestHost, address: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(('{address}', {port}), 3)"
    return source.ssh(f'python3 -c "{probe}"', check=False).returncode == 0


def test_engines_accept_only_the_gateway_and_admins(fleet: Fleet) -> None:
    first, second = fleet.servers
    rules = first.ssh("cat /etc/llmbox/firewall.nft").stdout
    assert f"{fleet.gateway.address}/32" in rules, rules
    assert _connects(fleet.gateway, first.address, 8080)
    assert not _connects(second, first.address, 8080), "a non-gateway host reached the engine"
    assert f"tcp dport {PORT}" in fleet.gateway.ssh("cat /etc/llmbox/firewall.nft").stdout


def test_bench_through_the_gateway_uses_both_backends(fleet: Fleet, tmp_path: Path) -> None:
    """Recorded, not asserted as a ratio: the three test hosts share the same two CPU
    cores, so two backends cannot add throughput here the way two boxes would."""
    direct = f"http://{fleet.servers[0].address}:8080"
    one = bench(direct, fleet.ca_file, tmp_path / "one", 4, 16, key=TEST_API_KEY)
    both = bench(fleet.url, fleet.ca_file, tmp_path / "both", 4, 16)
    print(f"measured c=4: one host {one['output_tok_s']:.1f} tok/s direct; "
          f"through the gateway over two hosts {both['output_tok_s']:.1f} tok/s")  # fmt: skip
    assert both["completed"] == 16 and both["failed"] == 0, both
    journal = fleet.gateway.ssh("journalctl -u haproxy --no-pager -o cat").stdout
    for server in fleet.servers:
        assert f"llmbox_engines/{server.name} " in journal, f"no request went to {server.name}"


def test_kill_9_of_one_backend_under_load(fleet: Fleet, tmp_path: Path) -> None:
    victim = fleet.servers[0]
    out = tmp_path / "kill"
    run = subprocess.Popen(
        [sys.executable, "-m", "llmbox", "bench", fleet.url, "--model", "smollm2",
         "--api-key-env", "GW_BENCH_KEY", "--ca-file", str(fleet.ca_file),
         "--concurrency", "4", "--requests", "40", "--output-tokens", "64",
         "--prompt-tokens", "64", "--warmup", "1", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ | {"GW_BENCH_KEY": KEYS["team-a"]},
    )  # fmt: skip
    time.sleep(8)
    pid = victim.ssh("systemctl show -p MainPID --value llama-server").stdout.strip()
    victim.ssh(f"kill -9 {pid}")
    # every request sent after the check marked it down (fall 2 x 1 s) must succeed
    time.sleep(3)
    context = ssl.create_default_context(cafile=str(fleet.ca_file))
    after = [
        request(f"{fleet.url}/v1/chat/completions", KEYS["team-b"], context, CHAT)[0]
        for _ in range(6)
    ]
    output, _ = run.communicate(timeout=900)
    (result,) = [json.loads(p.read_text())["metrics"] for p in out.rglob("*.json")]
    print(f"measured: kill -9 of {victim.name} during a c=4 run of 40 requests: "
          f"{result['failed']} failed, {result['completed']} completed")  # fmt: skip
    assert after == [200] * 6, after
    assert result["completed"] + result["failed"] == 40, output[-2000:]
    assert result["failed"] <= 4, output[-2000:]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        journal = fleet.gateway.ssh("journalctl -u haproxy --no-pager -o cat").stdout
        down = journal.rfind(f"Server llmbox_engines/{victim.name} is DOWN")
        up = journal.rfind(f"Server llmbox_engines/{victim.name} is UP")
        if down >= 0 and up > down:
            break
        time.sleep(1)
    else:
        pytest.fail(f"{victim.name} did not rejoin within 60 s:\n{journal[-3000:]}")
