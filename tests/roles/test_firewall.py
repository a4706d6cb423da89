"""firewall: the inference port only from the client networks, SSH kept, bad CIDRs and
self-lockouts refused before the rules change, other tables (Docker's, libvirt's) kept."""

from __future__ import annotations

import socket

import pytest
from playbook_runner import OfficeConverge, run_playbook

from llmbox.lab.testhosts import TestHost

pytestmark = pytest.mark.real_host


def _d12(converged: OfficeConverge) -> TestHost:
    return next(h for h in converged.hosts if h.distro == "debian12")


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def test_inference_port_is_dropped_outside_client_networks_and_ssh_kept(
    converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    host = _d12(converged_office)
    assert _port_open(host.address, 8080)  # the controller is on a client network
    elsewhere = office_vars | {"firewall_client_networks": ["192.0.2.0/24", "2001:db8::/32"]}
    try:
        result = run_playbook("playbooks/site.yml", [host], elsewhere, tags=["firewall"])
        assert result.rc == 0, result.stdout[-4000:]
        assert result.stats[host.name]["changed"] >= 1
        assert not _port_open(host.address, 8080)
        assert host.ssh("true").returncode == 0  # admin network still gets SSH
        # The server itself is untouched and still answers locally.
        health = host.ssh("python3 -c \"import urllib.request as u; "
                          "print(u.urlopen('http://127.0.0.1:8080/health').status)\"")  # fmt: skip
        assert health.stdout.strip() == "200"
        rules = host.ssh("nft list set inet llmbox_filter clients_v6").stdout
        assert "2001:db8::/32" in rules
    finally:
        restored = run_playbook("playbooks/site.yml", [host], office_vars, tags=["firewall"])
    assert restored.rc == 0, restored.stdout[-4000:]
    assert _port_open(host.address, 8080)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"firewall_client_networks": ["10.213.0.0/33"]}, "10.213.0.0/33"),
        ({"firewall_admin_networks": ["10.213.0.5/24"]}, "10.213.0.5/24"),  # host bits set
        ({"firewall_client_networks": ["office-lan"]}, "office-lan"),
        ({"firewall_admin_networks": ["192.0.2.0/24"]}, "outside firewall_admin_networks"),
        ({"firewall_inference_port": 22}, "firewall_inference_port=22"),
    ],
    ids=["prefix-too-long", "host-bits", "not-an-address", "would-lock-out", "port-clash"],
)
def test_bad_firewall_settings_are_refused_before_the_rules_change(
    converged_office: OfficeConverge,
    office_vars: dict[str, object],
    bad: dict[str, object],
    named: str,
) -> None:
    host = _d12(converged_office)
    before = host.ssh("nft list ruleset; md5sum /etc/llmbox/firewall.nft").stdout
    result = run_playbook("playbooks/site.yml", [host], office_vars | bad, tags=["firewall"])
    assert result.rc != 0
    assert named in result.stdout
    assert result.stats[host.name]["changed"] == 0
    assert host.ssh("nft list ruleset; md5sum /etc/llmbox/firewall.nft").stdout == before


# Another tool's table (Docker, libvirt and firewalld keep theirs the same way).
FOREIGN = "table inet foreign {\n chain c {\n  type filter hook input priority 10;\n }\n}\n"


def test_other_tables_survive_converge_reload_and_stop(
    converged_office: OfficeConverge, office_vars: dict[str, object]
) -> None:
    host = _d12(converged_office)
    added = host.ssh(
        f"printf '{FOREIGN}' > /run/foreign.nft && nft -f /run/foreign.nft", check=False
    )
    assert added.returncode == 0, added.stderr
    try:
        # A rule change reloads llmbox's table; the foreign one must stay.
        changed = run_playbook(
            "playbooks/site.yml", [host], office_vars | {"firewall_allow_icmp": False},
            tags=["firewall"],
        )  # fmt: skip
        assert changed.rc == 0, changed.stdout[-4000:]
        assert changed.stats[host.name]["changed"] >= 1
        assert "icmp" not in host.ssh("nft list chain inet llmbox_filter input").stdout
        assert host.ssh("nft list table inet foreign").returncode == 0
        # Reload, stop and start of the unit touch llmbox's table only.
        host.ssh("systemctl reload llmbox-firewall")
        host.ssh("systemctl stop llmbox-firewall")
        tables = host.ssh("nft list tables").stdout
        assert "inet foreign" in tables and "llmbox_filter" not in tables
        host.ssh("systemctl start llmbox-firewall")
        tables = host.ssh("nft list tables").stdout
        assert "inet foreign" in tables and "inet llmbox_filter" in tables
        # The distribution's nftables.service (whose stop flushes everything) stays off.
        assert host.ssh("systemctl is-enabled nftables", check=False).stdout.strip() != "enabled"
        assert "flush ruleset" not in host.ssh("cat /etc/llmbox/firewall.nft").stdout
    finally:
        restored = run_playbook("playbooks/site.yml", [host], office_vars, tags=["firewall"])
        survived = host.ssh("nft list table inet foreign", check=False).returncode == 0
        host.ssh("nft delete table inet foreign", check=False)
    assert restored.rc == 0, restored.stdout[-4000:]
    assert survived
    assert "icmp" in host.ssh("nft list chain inet llmbox_filter input").stdout
    assert _port_open(host.address, 8080)
