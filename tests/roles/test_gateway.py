"""playbooks/gateway.yml (role gateway, HAProxy) on booted test hosts.

Local shape (Debian 12 and 13): a host serves llama.cpp on loopback and is its own
gateway, both from one site.yml run: HTTPS with the private CA, per-owner keys, the owner
(never the key) in the log, a per-owner request-rate limit.
The fleet shape (two serving hosts behind a third) is in test_gateway_fleet.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playbook_runner import TEST_API_KEY, assert_untouched, unit_exposure

from llmbox.lab.playbooks import PlaybookResult, parse_recap, write_inventory
from llmbox.lab.testhosts import REPO_ROOT, TestHost, TestHostPool

pytestmark = pytest.mark.real_host

PORT = 8443
PKI = REPO_ROOT / "roles" / "gateway" / "files" / "gateway_pki.py"
# Test-only client keys of two owners, given to Ansible through the environment.
KEYS = {"team-a": "gw-team-a-key-7c1e94b2d0", "team-b": "gw-team-b-key-3a85f6e17c"}
KEY_VARS = {
    "gateway_api_keys": [
        {"owner": owner, "key": f"{{{{ lookup('ansible.builtin.env', 'GW_KEY_{i}') }}}}"}
        for i, owner in enumerate(KEYS)
    ]
}
KEY_ENV = {f"GW_KEY_{i}": key for i, key in enumerate(KEYS.values())}
# A test-only owner of the local shape with a low rate limit; the others have none. The
# period is long so that the few requests of the test never straddle two of HAProxy's
# periods (its rate is a sliding estimate over this period and the one before).
LIMITED_OWNER, LIMITED_KEY, LIMIT, LIMIT_PERIOD_S = "team-rl", "gw-team-rl-key-91d4c0a6e3", 3, 3600
KEY_ENV["GW_KEY_RL"] = LIMITED_KEY
RATE_LIMIT_VARS = {
    "gateway_api_keys": [
        *KEY_VARS["gateway_api_keys"],
        {"owner": LIMITED_OWNER, "key": "{{ lookup('ansible.builtin.env', 'GW_KEY_RL') }}"},
    ],
    "gateway_rate_limit_period_s": LIMIT_PERIOD_S,
    "gateway_rate_limit_owners": {LIMITED_OWNER: LIMIT},
}
EXPOSURE_GOAL = 3.0


def play(
    playbook: str,
    groups: dict[str, list[TestHost]],
    extra_vars: dict[str, Any],
    *,
    check: bool = False,
    tags: list[str] | None = None,
) -> PlaybookResult:
    """ansible-playbook with the hosts in several groups (write_inventory knows one)."""
    hosts = list({h.name: h for members in groups.values() for h in members}.values())
    with tempfile.TemporaryDirectory(prefix="llmbox-gw-") as tmp:
        inventory = Path(tmp) / "inventory.json"
        write_inventory(inventory, hosts, group="llm_hosts")
        data = json.loads(inventory.read_text())
        all_hosts = data["all"]["children"].pop("llm_hosts")["hosts"]
        data["all"]["hosts"] = all_hosts
        data["all"]["children"] = {
            group: {"hosts": {h.name: {} for h in members}} for group, members in groups.items()
        }
        inventory.write_text(json.dumps(data))
        (Path(tmp) / "extra.json").write_text(json.dumps(extra_vars))
        argv = ["ansible-playbook", "-i", str(inventory), str(REPO_ROOT / playbook)]
        argv += ["-e", f"@{Path(tmp) / 'extra.json'}"] + (["--check"] if check else [])
        argv += ["--tags", ",".join(tags)] if tags else []
        env = os.environ | KEY_ENV | {
            "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }  # fmt: skip
        proc = subprocess.run(
            argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3000, check=False
        )
    return PlaybookResult(proc.returncode, proc.stdout + proc.stderr, parse_recap(proc.stdout))


def request(
    url: str, key: str | None, context: ssl.SSLContext | None, body: dict[str, Any] | None = None
) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


CHAT = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}


@dataclass(frozen=True)
class ServedGateway:
    host: TestHost
    ca_file: Path
    fresh_checks: tuple[PlaybookResult, PlaybookResult]  # gateway.yml, site.yml
    fresh_written: str  # what the fresh checks changed on the host ("" = nothing)
    first: PlaybookResult
    second: PlaybookResult
    check: PlaybookResult
    site_vars: dict[str, Any]

    @property
    def url(self) -> str:
        return f"https://{self.host.address}:{PORT}"

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


# Debian 12 ships HAProxy 2.6, Debian 13 3.0.
@pytest.fixture(scope="module", params=["debian12", "debian13"])
def served_gateway(
    request: pytest.FixtureRequest,
    test_network: Any,  # its apt-cacher-ng is the guests' package source
    ssh_keypair: Any,
    office_vars: dict[str, object],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedGateway]:
    """A host in llm_servers and llm_gateways: llama.cpp on 127.0.0.1:8080, the gateway
    on :8443. gateway.yml --check and site.yml --check on the fresh host (nothing
    installed yet), then one site.yml run converges the engine and the gateway;
    gateway.yml again, and in check mode."""
    pool = TestHostPool(test_network, ssh_keypair)
    try:
        distro = str(request.param)
        host = pool.boot(distro, f"gw-local-d{distro[-2:]}")
        ca_dir = tmp_path_factory.mktemp("gateway-ca") / "ca"
        site_vars = {**office_vars, "llama_cpp_host": "127.0.0.1"}
        gateway_vars = {**site_vars, **RATE_LIMIT_VARS, "gateway_ca_dir": str(ca_dir)}
        groups = {"llm_servers": [host], "llm_gateways": [host]}
        # Both playbooks whole (site.yml imports gateway.yml after the servers' roles):
        # ~10 s and ~30 s on the host this fixture boots anyway.
        host.ssh("touch /run/llmbox-before-play")
        fresh_checks = (
            play("playbooks/gateway.yml", groups, gateway_vars, check=True),
            play("playbooks/site.yml", groups, gateway_vars, check=True),
        )
        try:
            assert_untouched(host)
            fresh_written = ""
        except AssertionError as error:
            fresh_written = str(error)
        first = play("playbooks/site.yml", groups, gateway_vars)
        if first.rc != 0:
            pytest.fail(f"site.yml failed:\n{first.stdout[-6000:]}", pytrace=False)
        second = play("playbooks/gateway.yml", groups, gateway_vars)
        check = play("playbooks/gateway.yml", groups, gateway_vars, check=True)
        yield ServedGateway(
            host, ca_dir / "ca.crt", fresh_checks, fresh_written, first, second, check,
            gateway_vars,
        )  # fmt: skip
    finally:
        pool.stop_all()


def test_second_converge_and_check_mode_change_nothing(served_gateway: ServedGateway) -> None:
    assert served_gateway.first.changed() > 0
    for run in (served_gateway.second, served_gateway.check):
        assert run.rc == 0, run.stdout[-4000:]
        assert run.changed() == 0, run.stdout[-4000:]


def test_one_site_run_converges_the_engine_and_the_gateway(served_gateway: ServedGateway) -> None:
    plays = re.findall(r"^PLAY \[(.+?)\] \*+$", served_gateway.first.stdout, re.MULTILINE)
    order = [
        "Check the gateways' variables before any host changes",
        "Converge the LLM servers",
        "Put a TLS gateway in front of the LLM servers",
    ]
    assert [p for p in plays if p in order] == order, plays
    assert "gateway : Install the distribution packages haproxy" in served_gateway.first.stdout


def test_check_mode_on_the_fresh_host(served_gateway: ServedGateway) -> None:
    """gateway.yml --check and site.yml --check before the first converge: no package
    lists, no haproxy group, no units, no llama user yet; both end rc 0, report the
    installs, and leave the host as it was."""
    gateway_check, site_check = served_gateway.fresh_checks
    for run in served_gateway.fresh_checks:
        assert run.rc == 0, run.stdout[-4000:]
        assert run.changed() > 0
    # apt refreshes no package lists in check mode: the roles report the installs instead
    wanted = [(gateway_check, "gateway", "haproxy"), (gateway_check, "firewall", "nftables")]
    wanted += [(site_check, "llama_cpp", "libgomp1"), (site_check, "firewall", "nftables")]
    wanted += [(site_check, "gateway", "haproxy")]
    for run, role, package in wanted:
        report = (
            rf"TASK \[{role} : Report the packages that would be installed .*\] \*+\n"
            rf"changed: \[[^\]]+\] => \n\s+msg: would install {package} from"
        )
        assert re.search(report, run.stdout), (role, package, run.stdout[-4000:])
    assert served_gateway.fresh_written == ""


def test_chat_over_https_verified_with_the_generated_ca(served_gateway: ServedGateway) -> None:
    status, body = request(
        f"{served_gateway.url}/v1/chat/completions", KEYS["team-a"], served_gateway.context(), CHAT
    )
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"]
    curl = subprocess.run(
        ["curl", "-sS", "--cacert", str(served_gateway.ca_file), "-o", "/dev/null",
         "-w", "%{http_code}", "-H", f"Authorization: Bearer {KEYS['team-b']}",
         f"{served_gateway.url}/v1/models"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert curl.stdout == "200", curl.stderr


def test_without_a_key_or_with_a_wrong_one_401(served_gateway: ServedGateway) -> None:
    url = f"{served_gateway.url}/v1/chat/completions"
    for key in (None, "gw-wrong-key-000000000000", TEST_API_KEY):
        status, body = request(url, key, served_gateway.context(), CHAT)
        assert status == 401, (key, body)


def test_log_names_the_owner_and_never_a_key(served_gateway: ServedGateway) -> None:
    host = served_gateway.host
    status, _ = request(f"{served_gateway.url}/v1/models", KEYS["team-b"], served_gateway.context())
    assert status == 200
    journal = host.ssh("journalctl -u haproxy --no-pager -o cat").stdout
    assert re.search(r"llmbox_engines/local .* 200 .*owner=team-b \"GET /v1/models", journal), (
        journal[-2000:]
    )
    for secret in (*KEYS.values(), TEST_API_KEY):
        assert secret not in journal
        assert secret not in served_gateway.first.stdout


def test_rate_limit_per_owner(served_gateway: ServedGateway) -> None:
    """The limited owner gets LIMIT answers, then 429 with Retry-After; another owner is
    not limited; the log names the owner of the refused request, never its key."""
    url, context = f"{served_gateway.url}/v1/models", served_gateway.context()
    statuses = [request(url, LIMITED_KEY, context)[0] for _ in range(LIMIT)]
    assert statuses == [200] * LIMIT
    refused = urllib.request.Request(url, headers={"Authorization": f"Bearer {LIMITED_KEY}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(refused, timeout=30, context=context)
    assert caught.value.code == 429
    assert caught.value.headers["Retry-After"] == str(2 * LIMIT_PERIOD_S)
    assert json.loads(caught.value.read())["error"]["type"] == "rate_limit_error"
    assert [request(url, KEYS["team-a"], context)[0] for _ in range(LIMIT + 2)] == [200] * (
        LIMIT + 2
    )
    journal = served_gateway.host.ssh("journalctl -u haproxy --no-pager -o cat").stdout
    assert re.search(rf" 429 .*owner={LIMITED_OWNER} \"GET /v1/models", journal), journal[-2000:]
    assert LIMITED_KEY not in journal
    config = served_gateway.host.ssh("cat /etc/haproxy/haproxy.cfg").stdout
    assert LIMITED_KEY not in config


def test_another_ca_does_not_verify(served_gateway: ServedGateway, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(PKI), str(tmp_path / "other"), "x", "x"], check=True,
        capture_output=True,
    )  # fmt: skip
    other = ssl.create_default_context(cafile=str(tmp_path / "other" / "ca.crt"))
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        request(f"{served_gateway.url}/v1/models", KEYS["team-a"], other)


def _handshake(address: str, version: ssl.TLSVersion) -> str:
    """Tries one TLS version (old ones allowed on this side); returns the version or the error."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    try:
        with (
            socket.create_connection((address, PORT), timeout=10) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return str(tls.version())
    except (ssl.SSLError, ConnectionResetError) as error:
        return f"refused: {error}"


def test_tls_1_1_refused_and_1_2_accepted(served_gateway: ServedGateway) -> None:
    address = served_gateway.host.address
    assert _handshake(address, ssl.TLSVersion.TLSv1_1).startswith("refused")
    # the same client settings with 1.2 succeed, so the refusal is the server's
    assert _handshake(address, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


def test_plain_http_gets_no_answer_and_the_engine_is_not_exposed(
    served_gateway: ServedGateway,
) -> None:
    address = served_gateway.host.address
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://{address}:{PORT}/v1/models", timeout=5)
    with pytest.raises((urllib.error.URLError, ConnectionError, TimeoutError)):
        urllib.request.urlopen(f"http://{address}:8080/health", timeout=3)


def test_bench_through_the_gateway(served_gateway: ServedGateway, tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "llmbox", "bench", served_gateway.url, "--model", "smollm2",
         "--api-key-env", "GW_BENCH_KEY", "--ca-file", str(served_gateway.ca_file),
         "--concurrency", "2", "--requests", "4", "--output-tokens", "16",
         "--prompt-tokens", "32", "--warmup", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
        env=os.environ | {"GW_BENCH_KEY": KEYS["team-a"]},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (result,) = [json.loads(p.read_text())["metrics"] for p in out.rglob("*.json")]
    assert result["completed"] == 4 and result["failed"] == 0
    assert result["output_tok_s"] > 0


def test_unit_is_unprivileged_and_exposure_recorded(served_gateway: ServedGateway) -> None:
    host = served_gateway.host
    user = host.ssh("ps -o user= -C haproxy | sort -u").stdout.split()
    assert user == ["haproxy"], user
    exposure = unit_exposure(host, "haproxy.service")
    print(f"measured: systemd-analyze security haproxy.service ({host.distro}): {exposure}")
    assert exposure <= EXPOSURE_GOAL


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"gateway_mode": "fleet", "gateway_backend_group": "llm_nothing"},
         "gateway_backend_group=llm_nothing has no hosts"),
        ({"gateway_tls_certificate": "/etc/ssl/certs/ca-certificates.crt"},
         "gateway_tls_certificate=/etc/ssl/certs/ca-certificates.crt is set without "
         "gateway_tls_private_key"),
        ({"gateway_api_keys_file": "/nonexistent/llmbox-keys.yml"},
         "not found on the controller: /nonexistent/llmbox-keys.yml"),
        ({"gateway_rate_limit_owners": {"team-x": 5}},
         "gateway_rate_limit_owners names owners without a key: ['team-x']"),
        ({"gateway_rate_limit_period_s": 0},
         "gateway_rate_limit_period_s=0 is out of range; valid: 1-86400 seconds"),
    ],
)  # fmt: skip
def test_bad_variables_stop_before_any_change(
    served_gateway: ServedGateway, bad: dict[str, Any], message: str
) -> None:
    host = served_gateway.host
    before = host.ssh("stat -c %Y /etc/haproxy/haproxy.cfg").stdout
    result = play(
        "playbooks/gateway.yml",
        {"llm_servers": [host], "llm_gateways": [host]},
        {**served_gateway.site_vars, **bad},
    )
    assert result.rc != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert result.changed() == 0
    assert host.ssh("stat -c %Y /etc/haproxy/haproxy.cfg").stdout == before
