"""The control node's side: commands run as argv lists, root and tool checks, apt installs.

Every command is a list (never a shell string) so host names and paths are never re-parsed by a shell,
and every failure becomes a RollwrightError that names the command and its stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from rollwright.errors import BadInput, RollwrightError

# Tools the lab calls, and the Debian package that ships each one.
REQUIRED_TOOLS: dict[str, str] = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])

_ERROR_TAIL_LINES = 30

Log = Callable[[str], None]


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_text: str | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output; with check, a non-zero exit raises a readable error."""
    try:
        proc = subprocess.run(
            [which(argv[0]), *argv[1:]],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except FileNotFoundError as exc:
        raise RollwrightError(f"command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RollwrightError(f"command timed out after {timeout} s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        detail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-_ERROR_TAIL_LINES:])
        raise RollwrightError(f"command failed (exit {proc.returncode}): {' '.join(argv)}\n{detail}")
    return proc


def which(tool: str) -> str:
    """The full path of a tool, also looking in the sbin directories a non-login PATH may lack."""
    return shutil.which(tool, path=_SEARCH_PATH) or tool


def require_root() -> None:
    """Namespaces, bridges and nspawn all need root; say so before touching anything."""
    if os.geteuid() != 0:
        raise BadInput("lab needs root (network namespaces, bridges and systemd-nspawn): run it with sudo")


def missing_packages() -> list[str]:
    """Debian packages whose tools are not installed, in a stable order without duplicates."""
    missing = [pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool, path=_SEARCH_PATH) is None]
    return sorted(set(missing))


def ensure_packages(log: Log) -> None:
    """Install the lab's own system packages with apt-get when any is missing."""
    missing = missing_packages()
    if not missing:
        return
    log(f"installing {', '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", *missing], env=env)
    still = missing_packages()
    if still:
        raise RollwrightError(f"apt-get ran but these packages are still missing: {', '.join(still)}")


def mounts_below(path: Path) -> list[Path]:
    """Mount points at or under path in our mount namespace, deepest first (the order to unmount them)."""
    root = path.resolve()
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and friends written as octal escapes.
        point = Path(line.split()[4].encode().decode("unicode_escape"))
        if point == root or root in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """Delete a directory we made, first unmounting anything left mounted inside it.

    A killed debootstrap can leave /proc, /sys or a bind mount of /dev inside its target: deleting
    through such a mount would destroy the control node's own files, so we refuse rather than guess.
    """
    if not path.exists():
        return
    for point in mounts_below(path):
        run(["umount", "--lazy", str(point)], check=False)
    left = mounts_below(path)
    if left:
        raise RollwrightError(f"refusing to delete {path}: still mounted inside it: {', '.join(map(str, left))}")
    shutil.rmtree(path)
