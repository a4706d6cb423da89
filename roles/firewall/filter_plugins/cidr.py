"""CIDR filters for the firewall role, from Python's ipaddress (no extra collection)."""

from __future__ import annotations

import ipaddress
from typing import Any


def invalid_cidrs(values: list[Any]) -> list[str]:
    """The entries that are not an IPv4/IPv6 network in CIDR form (host bits zero)."""
    bad = []
    for value in values:
        try:
            ipaddress.ip_network(str(value), strict=True)
        except ValueError:
            bad.append(str(value))
    return bad


def cidrs_of_family(values: list[str], version: int) -> list[str]:
    """The entries of one IP version (4 or 6), normalised and collapsed: nft refuses an
    interval set whose elements overlap (a gateway's /32 inside an admin /24)."""
    networks = (ipaddress.ip_network(str(v), strict=True) for v in values)
    return [
        str(n) for n in ipaddress.collapse_addresses(n for n in networks if n.version == version)
    ]


def address_in_cidrs(address: str, values: list[str]) -> bool:
    """Whether ``address`` lies in any of the networks."""
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(str(v), strict=True) for v in values)


def host_networks(hosts: list[Any]) -> list[str]:
    """One-address networks (/32, /128) of inventory hosts (their hostvars): ansible_host,
    else the inventory name. A name that is not an IP address is kept as it is, so the
    preflight's CIDR check names it."""
    networks = []
    for host in hosts:
        address = str(host.get("ansible_host") or host.get("inventory_hostname"))
        try:
            networks.append(str(ipaddress.ip_network(address)))
        except ValueError:
            networks.append(address)
    return networks


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "firewall_invalid_cidrs": invalid_cidrs,
            "firewall_cidrs_of_family": cidrs_of_family,
            "firewall_address_in_cidrs": address_in_cidrs,
            "firewall_host_networks": host_networks,
        }
