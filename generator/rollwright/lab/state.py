"""What a lab is made of, on disk: the JSON state file that `down`, `status`, `stop` and `start` read.

It is written before any resource is created and after every pid we start, so a lab killed half-way
can always be cleaned: every other name (bridge, namespaces, veths) is derived from the lab name.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from rollwright.errors import BadInput, RollwrightError

STATE_ROOT = Path("/var/lib/rollwright/lab")
# Short, because interface names (15 chars at most) are built from it: "rw<lab>-app12".
_LAB_NAME = re.compile(r"[a-z][a-z0-9]{0,6}")

Group = Literal["app", "lb", "db"]


class HostState(BaseModel):
    """One host: its place in the fleet and the nspawn process we started for it."""

    name: str
    group: Group
    address: str  # with prefix, e.g. "10.213.4.12/24"
    pid: int | None = None
    # The pid's start time (field 22 of /proc/PID/stat): a reused pid never matches it.
    starttime: int | None = None

    @property
    def ip(self) -> str:
        return str(IPv4Interface(self.address).ip)


class LabState(BaseModel):
    """The whole lab as `up` planned it."""

    name: str
    subnet: str
    rootfs: str
    app_port: int
    backend: str
    inventory: str
    hosts: dict[str, HostState]
    # True once an `up` finished (all booted, database role made); a killed `up` leaves it False.
    ready: bool = False


def validate_name(name: str) -> str:
    """Lab names end up in interface names, so they are short and plain."""
    if not _LAB_NAME.fullmatch(name):
        raise BadInput(f"bad lab name {name!r}: 1-7 characters, lowercase letters and digits, a letter first")
    return name


@dataclass(frozen=True)
class LabFiles:
    """Where a lab keeps its files: key, known_hosts, secrets, each host's overlay and console log."""

    name: str
    root: Path = STATE_ROOT

    @property
    def dir(self) -> Path:
        return self.root / self.name

    @property
    def state(self) -> Path:
        return self.dir / "state.json"

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def db_password(self) -> Path:
        return self.dir / "db_password"

    def host_dir(self, host: str) -> Path:
        return self.dir / "hosts" / host

    def upper(self, host: str) -> Path:
        """The host's overlay upper dir: everything it writes, on top of the shared base image."""
        return self.host_dir(host) / "upper"

    def console_log(self, host: str) -> Path:
        return self.host_dir(host) / "console.log"


def load(files: LabFiles) -> LabState | None:
    """The lab's state, or None when it has none."""
    try:
        return LabState.model_validate_json(files.state.read_text())
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        raise RollwrightError(
            f"unreadable lab state {files.state} ({exc.error_count()} errors): "
            f"run `rollwright lab down --name {files.name}`"
        ) from exc


def save(files: LabFiles, state: LabState) -> None:
    """Write atomically (temp file + rename) so a kill never leaves half a state file."""
    files.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = files.state.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2) + "\n")
    os.replace(tmp, files.state)


def all_states(root: Path = STATE_ROOT) -> list[LabState]:
    """Every lab with a readable state file: their subnets and images are in use."""
    found = []
    for path in sorted(root.glob("*/state.json")):
        try:
            state = load(LabFiles(path.parent.name, root))
        except RollwrightError:
            continue  # a broken lab's subnet and image are not worth refusing another lab for
        if state is not None:
            found.append(state)
    return found


@contextmanager
def locked(root: Path = STATE_ROOT) -> Iterator[None]:
    """One lab change at a time on this machine (subnets and images are shared between labs)."""
    root.mkdir(parents=True, exist_ok=True, mode=0o755)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
