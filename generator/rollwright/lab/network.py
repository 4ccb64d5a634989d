"""Bridge, network namespaces and veth pairs: a private subnet shared by the control node and the hosts.

The control node (root namespace) owns the bridge and the subnet's first address; each host gets a
namespace with one veth end named eth0. Hosts get no default route, so their traffic can only reach
the control node and each other. Every name is derived from the lab name, so `down` can find and
remove leftovers of a killed run even without a state file.
"""

from __future__ import annotations

import ipaddress
import json
import os
import zlib
from collections.abc import Iterable
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from rollwright.errors import BadInput, RollwrightError
from rollwright.lab.system import run

NETNS_DIR = Path("/run/netns")
# Default subnets are 10.213.X.0/24 with X picked from the lab name, skipping any network in use.
DEFAULT_SUPERNET = IPv4Network("10.213.0.0/16")
FIRST_HOST_OFFSET = 10


def bridge_name(lab: str) -> str:
    """The lab's bridge in the root namespace."""
    return f"rw{lab}"


def host_link_name(lab: str, host: str) -> str:
    """One name for a host's namespace, its root-side veth and its nspawn machine (at most 15 chars)."""
    return f"rw{lab}-{host}"


def gateway(subnet: IPv4Network) -> IPv4Interface:
    """The control node's address on the bridge: the subnet's first address."""
    return IPv4Interface(f"{subnet.network_address + 1}/{subnet.prefixlen}")


def host_address(subnet: IPv4Network, index: int) -> IPv4Interface:
    """The index-th host's address (from .10 up)."""
    return IPv4Interface(f"{subnet.network_address + FIRST_HOST_OFFSET + index}/{subnet.prefixlen}")


def mac_address(address: IPv4Interface) -> str:
    """A fixed, locally administered MAC per address: a restarted host keeps its MAC, so the ARP
    caches of the control node and of the other hosts stay right (a new MAC would leave them stale
    for about 30 s)."""
    return "02:72:" + ":".join(f"{octet:02x}" for octet in address.ip.packed)


def _ip(*args: str, check: bool = True) -> str:
    return run(["ip", *args], check=check).stdout


def links() -> set[str]:
    """Names of the network links in the root namespace."""
    return {link["ifname"] for link in json.loads(_ip("-j", "link", "show") or "[]")}


def namespaces() -> set[str]:
    """Names of the named network namespaces (`ip netns` keeps them as files in /run/netns)."""
    return set(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else set()


def check_namespaces() -> None:
    """Fail early and clearly when this machine cannot make network namespaces."""
    probe = f"rwprobe{os.getpid()}"
    proc = run(["ip", "netns", "add", probe], check=False)
    if proc.returncode != 0:
        raise BadInput(f"cannot create network namespaces here (`ip netns add` failed): {proc.stderr.strip()}")
    _ip("netns", "delete", probe)


def networks_in_use() -> list[IPv4Network]:
    """IPv4 networks the root namespace already routes, which a new lab subnet must not overlap."""
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all") or "[]")
    found = []
    for route in routes:
        dst = route.get("dst", "")
        if dst and dst != "default" and route.get("type", "unicast") in ("unicast", "local"):
            found.append(ipaddress.ip_network(dst, strict=False))
    return found


def pick_subnet(lab: str, avoid: Iterable[IPv4Network]) -> IPv4Network:
    """A free /24 for the lab, stable for a given name while that /24 stays free."""
    avoid = list(avoid)
    candidates = list(DEFAULT_SUPERNET.subnets(new_prefix=24))
    start = zlib.crc32(lab.encode()) % len(candidates)
    for subnet in candidates[start:] + candidates[:start]:
        if not any(subnet.overlaps(net) for net in avoid):
            return subnet
    raise RollwrightError(f"no free /24 left in {DEFAULT_SUPERNET}: pass --subnet")


def ensure_bridge(bridge: str, address: IPv4Interface) -> None:
    """Create the bridge with the control node's address, or leave it as it is."""
    if bridge not in links():
        _ip("link", "add", "name", bridge, "type", "bridge")
    current = json.loads(_ip("-j", "-4", "addr", "show", "dev", bridge) or "[]")
    have = {f"{a['local']}/{a['prefixlen']}" for link in current for a in link.get("addr_info", [])}
    if str(address) not in have:
        _ip("addr", "add", str(address), "dev", bridge)
    _ip("link", "set", bridge, "up")


def remove_link(name: str) -> None:
    """Delete a link (bridge or veth) if it exists."""
    if name in links():
        _ip("link", "delete", name)


def attach_host(bridge: str, name: str, address: IPv4Interface) -> None:
    """A fresh namespace for one host, wired to the bridge, with its address on eth0 inside."""
    detach_host(name)
    _ip("netns", "add", name)
    mac = mac_address(address)
    _ip("link", "add", name, "type", "veth", "peer", "name", "eth0", "address", mac, "netns", name)
    _ip("link", "set", name, "master", bridge, "up")
    _ip("-n", name, "addr", "add", str(address), "dev", "eth0")
    _ip("-n", name, "link", "set", "eth0", "up")
    _ip("-n", name, "link", "set", "lo", "up")


def detach_host(name: str) -> None:
    """Remove a host's veth and namespace. The veth goes first: the kernel frees a deleted
    namespace (and the veth end inside it) lazily, so relying on that would leave the link for a while."""
    remove_link(name)
    if name in namespaces():
        _ip("netns", "delete", name)
