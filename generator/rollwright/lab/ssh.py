"""SSH from the control node to the lab hosts, with host key checking ON.

Host keys are made on the control node before a host first boots, so known_hosts is right from the
first connection and nothing ever needs StrictHostKeyChecking=no.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rollwright.errors import RollwrightError
from rollwright.lab.system import run, which


def public_key_path(key: Path) -> Path:
    return key.with_name(key.name + ".pub")


def ensure_keypair(key: Path, comment: str) -> str:
    """An ed25519 key pair at key (made once), and its public key line."""
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        public_key_path(key).unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)])
    return public_key_path(key).read_text().strip()


def write_known_hosts(path: Path, hosts: Iterable[tuple[str, str, str]]) -> None:
    """known_hosts lines for (name, ip, public key line): both the name and the address are checked."""
    lines = []
    for name, ip, public in hosts:
        keytype, blob = public.split()[:2]
        lines.append(f"{name},{ip} {keytype} {blob}\n")
    path.write_text("".join(lines))


def ssh_options(key: Path, known_hosts: Path) -> list[str]:
    """The options every lab connection uses (also written into the inventory for Ansible)."""
    return [
        "-i", str(key),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=5",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip


def ssh_command(key: Path, known_hosts: Path, ip: str) -> list[str]:
    """argv prefix that runs a command on the host as root: append the command."""
    return [which("ssh"), *ssh_options(key, known_hosts), f"root@{ip}"]


def port_open(ip: str, port: int = 22, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_booted(command: list[str], ip: str, alive: Callable[[], bool], timeout: float, what: str) -> str:
    """Wait until sshd answers and systemd has finished booting; return systemd's state.

    `systemctl is-system-running --wait` blocks until start-up is over, so services such as
    PostgreSQL are up when this returns. alive() stops the wait early when the host died.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RollwrightError(f"{what} stopped while booting")
        if port_open(ip):
            proc = run(
                [*command, "systemctl", "is-system-running", "--wait"],
                check=False,
                timeout=max(5.0, deadline - time.monotonic()),
            )
            if proc.returncode != 255:  # 255: ssh itself failed (sshd still starting): try again
                return proc.stdout.strip()
        time.sleep(0.2)
    raise RollwrightError(f"{what} did not answer on ssh within {timeout:.0f} s")
