"""What makes a host itself: files written into its overlay upper dir before it boots.

Identity (hostname, /etc/hosts, machine-id, SSH host key), the lab key in root's authorized_keys,
its services (HAProxy only on the load balancer, PostgreSQL only on the database host, masked
elsewhere so memory stays small). Rewritten before every boot, so it is idempotent; the host key and
machine-id are kept, so a host restarted with `lab start` is the same machine.
"""

from __future__ import annotations

import os
import uuid
from ipaddress import IPv4Network
from pathlib import Path

from rollwright.lab import services
from rollwright.lab.ssh import ensure_keypair
from rollwright.lab.state import HostState, LabState
from rollwright.lab.units import mask_units

HOST_KEY = Path("etc/ssh/ssh_host_ed25519_key")
HAPROXY_UNITS = ("haproxy.service",)
POSTGRES_UNITS = ("postgresql.service", "postgresql@.service")


class Overlay:
    """A host's upper dir, written so every path looks as it does in the base image (owner, mode).

    A directory in the upper dir hides the lower one's owner and mode, so a plain mkdir would turn
    /root world-readable or /etc/postgresql root-owned: each new directory copies the image's.
    """

    def __init__(self, rootfs: Path, upper: Path) -> None:
        self.rootfs = rootfs
        self.upper = upper

    def _like_image(self, rel: Path, default_mode: int) -> None:
        lower, target = self.rootfs / rel, self.upper / rel
        if lower.exists():
            st = lower.stat()
            os.chown(target, st.st_uid, st.st_gid)
            os.chmod(target, st.st_mode & 0o7777)
        else:
            os.chmod(target, default_mode)

    def mkdir(self, rel: Path) -> Path:
        """Make rel and its parents in the upper dir, each like its counterpart in the image."""
        self.upper.mkdir(parents=True, exist_ok=True, mode=0o755)
        for part in reversed([rel, *rel.parents][:-1]):
            if not (self.upper / part).is_dir():
                (self.upper / part).mkdir()
                self._like_image(part, 0o755)
        return self.upper / rel

    def write(self, rel: Path | str, text: str, mode: int = 0o644) -> None:
        """Write a file, with the image's owner and mode when the image has it (else root and mode)."""
        rel = Path(rel)
        self.mkdir(rel.parent)
        (self.upper / rel).write_text(text)
        self._like_image(rel, mode)


def prepare(overlay: Overlay, host: HostState, lab: LabState, authorized_key: str) -> str:
    """Write the host's files into its overlay; return its SSH host public key (for known_hosts)."""
    overlay.mkdir(HOST_KEY.parent)
    host_key = ensure_keypair(overlay.upper / HOST_KEY, f"root@{host.name}")
    if not (overlay.upper / "etc/machine-id").exists():
        overlay.write("etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    overlay.write("etc/hostname", host.name + "\n")
    overlay.write("etc/hosts", hosts_file(lab))
    overlay.mkdir(Path("root/.ssh"))
    overlay.write("root/.ssh/authorized_keys", authorized_key + "\n", 0o600)
    overlay.mkdir(Path("etc/systemd/system"))
    if host.group != "lb":
        mask_units(overlay.upper, HAPROXY_UNITS)
    if host.group != "db":
        mask_units(overlay.upper, POSTGRES_UNITS)
    if host.group == "lb":
        servers = [(h.name, h.ip) for h in lab.hosts.values() if h.group == "app"]
        overlay.write(services.HAPROXY_CONFIG, services.haproxy_config(lab.backend, lab.app_port, servers))
    if host.group == "db":
        conf = services.postgres_dir(overlay.rootfs)
        base_hba = (overlay.rootfs / conf / "pg_hba.conf").read_text()
        overlay.write(conf / "pg_hba.conf", services.postgres_hba(base_hba, IPv4Network(lab.subnet)))
        overlay.write(conf / "conf.d/rollwright.conf", services.postgres_listen_conf(host.ip))
    return host_key


def hosts_file(lab: LabState) -> str:
    """/etc/hosts naming every lab host, so hosts reach each other by name (e.g. db1 from app1)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{h.ip}\t{h.name}" for h in lab.hosts.values()]
    return "\n".join(lines) + "\n"
