"""One lab host as a process: boot it with systemd-nspawn, tell whether it runs, stop it, weigh it.

We only ever signal the pid we started, checked against its recorded start time so a reused pid is
never hit; nothing is looked up or killed by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rollwright.errors import RollwrightError
from rollwright.lab.network import NETNS_DIR
from rollwright.lab.state import HostState
from rollwright.lab.system import which

# Started through a short-lived python so nspawn is not our child: it outlives the CLI, init reaps it,
# and its pid is printed back to us. setsid + stdin from /dev/null detach it from our terminal.
_LAUNCHER = """\
import subprocess, sys
log = open(sys.argv[1], "ab")
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
print(child.pid)
"""
STOP_TIMEOUT_S = 30.0
KILL_TIMEOUT_S = 10.0


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat fields from field 3 (state) on; the command name may contain spaces."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """The pid's start time in clock ticks since boot, or None when it is gone (or a zombie)."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22


def is_running(host: HostState) -> bool:
    """True while the nspawn process we started for this host still runs."""
    return host.pid is not None and start_time(host.pid) == host.starttime


def boot(host: HostState, machine: str, rootfs: Path, upper: Path, console_log: Path) -> None:
    """Start the host in the background and record its pid; returns at once (see ssh.wait_booted)."""
    argv = [
        which("systemd-nspawn"),
        "--register=no",  # no machined and no system bus on this machine
        "--keep-unit",
        f"--directory={rootfs}",
        f"--overlay={rootfs}:{upper}:/",
        "--boot",
        f"--network-namespace-path={NETNS_DIR / machine}",
        f"--machine={machine}",
        f"--hostname={host.name}",
        "--console=read-only",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
    ]
    console_log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(console_log), *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RollwrightError(f"could not start systemd-nspawn for {host.name}: {proc.stderr.strip()}")
    host.pid = int(proc.stdout)
    host.starttime = start_time(host.pid)


def _wait_stopped(host: HostState, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(host):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def stop(host: HostState) -> None:
    """Shut the host down: SIGTERM asks nspawn for an orderly poweroff; SIGKILL after a bounded wait.

    SIGKILL goes to the container's init first: that ends every process in the container's pid
    namespace, which killing nspawn alone would leave running.
    """
    if is_running(host):
        assert host.pid is not None
        os.kill(host.pid, signal.SIGTERM)
        if not _wait_stopped(host, STOP_TIMEOUT_S):
            for pid in [*children(host.pid), host.pid]:
                os.kill(pid, signal.SIGKILL)
            if not _wait_stopped(host, KILL_TIMEOUT_S):
                raise RollwrightError(f"{host.name} (pid {host.pid}) did not stop, even after SIGKILL")
    host.pid = host.starttime = None


def _parents() -> dict[int, int]:
    """pid -> parent pid for every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                found[int(entry)] = int(fields[1])
    return found


def children(pid: int) -> list[int]:
    """Direct children of pid (for nspawn: the container's init)."""
    return [child for child, parent in _parents().items() if parent == pid]


def descendants(pid: int) -> list[int]:
    """Every process below pid: for a host, all the processes of the container."""
    parents = _parents()
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


@dataclass(frozen=True)
class Memory:
    """What a host costs in memory, in KiB.

    pss: proportional set size of nspawn and every container process (shared pages such as the
    libraries of the one base image are split between their users, so summing hosts is honest);
    rss: the same without splitting (counts shared pages once per process, so it overstates);
    tmpfs: what the container keeps in its tmpfs mounts (/run with the journal, /tmp, /dev/shm).
    """

    pss: int = 0
    rss: int = 0
    tmpfs: int = 0

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.pss + other.pss, self.rss + other.rss, self.tmpfs + other.tmpfs)


def _kib_field(path: str, name: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass  # the process ended while we were reading
    return 0


def _tmpfs_kib(init_pid: int) -> int:
    """Used space of the tmpfs mounts seen by the container's init (each file system counted once)."""
    seen, total = set(), 0
    try:
        lines = Path(f"/proc/{init_pid}/mountinfo").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in lines:
        before, after = line.split(" - ", 1)
        fields = before.split()
        if after.split()[0] != "tmpfs" or fields[2] in seen:
            continue
        seen.add(fields[2])
        mount_point = fields[4].encode().decode("unicode_escape")
        try:
            st = os.statvfs(f"/proc/{init_pid}/root{mount_point}")
        except OSError:
            continue
        total += (st.f_blocks - st.f_bfree) * st.f_frsize // 1024
    return total


def pss_kib(pids: list[int]) -> int:
    """Proportional set size of these processes together, in KiB (0 for any that has ended)."""
    return sum(_kib_field(f"/proc/{pid}/smaps_rollup", "Pss") for pid in pids)


def memory(host: HostState) -> Memory:
    """Memory of a running host (zero when it is stopped)."""
    if not is_running(host):
        return Memory()
    assert host.pid is not None
    pids = [host.pid, *descendants(host.pid)]
    return Memory(
        pss=pss_kib(pids),
        rss=sum(_kib_field(f"/proc/{pid}/status", "VmRSS") for pid in pids),
        tmpfs=sum(_tmpfs_kib(init) for init in children(host.pid)),
    )
