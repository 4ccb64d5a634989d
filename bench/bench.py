"""rollwright's benchmark: generation, lab boot and rolling deploys under load, in one table.

Run as root: `make bench` (about 45 minutes; `--hosts 3` for one lab size, `--cold` adds a cold image
build). Prints figures and asserts nothing: machines are shared and noisy, so compare within one run.

For each lab size (3, 6 and 12 app hosts by default, each on a fresh lab) and for serial 1 and 50%, it
deploys v1 (setup, not shown), then measures, each under a bounded load through HAProxy: a rolling
deploy of v2, a no-op re-run of v2 and `rollwright rollback`. Next to each wall time stands its floor:
the sum over the rollout's batches of the slowest host's restart + time-to-healthy, read from the
run's own ansible-runner events. Everything above the floor is what rollwright and Ansible add
(preflight, lock, staging, draining, verify, records); the sample spec has no database, so no backup
or migration runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rollwright.lab import image, machine, sample
from rollwright.lab.fleet import Lab
from rollwright.lab.load import Load
from rollwright.lab.state import load as load_state
from rollwright.lab.system import remove_tree, require_root

REPO = Path(__file__).resolve().parents[1]
ROLLWRIGHT = str(Path(sys.executable).parent / "rollwright")
HELLO_SPEC = REPO / "examples/hello/rollwright.yml"
LOAD_RATE = 100.0  # requests/s through HAProxy during every measured deploy and rollback
SAMPLE_EVERY_S = 0.2  # how often the runner's memory is read
RESTART_TASK = "roles/service/tasks/restart.yml:"  # the task paths of the floor's two steps
HEALTH_TASK = "roles/healthcheck/tasks/main.yml:"
COLUMNS = ("measurement", "app hosts", "serial", "wall s", "floor s", "wall/floor", "requests", "failed",
           "memory MiB", "exit")


@dataclass
class Row:
    measurement: str
    hosts: str = "-"
    serial: str = "-"
    wall: float | None = None
    floor: float | None = None
    requests: int | None = None
    failed: int | None = None
    memory_mib: float | None = None
    exit: int | None = None

    def cells(self) -> list[str]:
        ratio = f"{self.wall / self.floor:.1f}x" if self.wall and self.floor else "-"
        return [self.measurement, self.hosts, self.serial, _fmt(self.wall, ".2f" if (self.wall or 0) < 1 else ".1f"),
                _fmt(self.floor, ".1f"), ratio, _fmt(self.requests, "d"), _fmt(self.failed, "d"),
                _fmt(self.memory_mib, ".0f"), _fmt(self.exit, "d")]


def _fmt(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def restart_floor(events: Iterable[dict[str, Any]]) -> float | None:
    """Seconds a rollout cannot go below: per batch (one run of a serial play), the slowest host's
    restart plus its wait until healthy; summed over batches. None when nothing was restarted."""
    per_batch: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for event in events:
        data = event.get("event_data") or {}
        path = str(data.get("task_path") or "")
        if event.get("event") == "runner_on_ok" and (RESTART_TASK in path or HEALTH_TASK in path):
            per_batch[data["play_uuid"]][data["host"]] += float(data.get("duration") or 0.0)
    return sum(max(hosts.values()) for hosts in per_batch.values()) if per_batch else None


def run_events(artifact_dir: Path) -> list[dict[str, Any]]:
    """The events ansible-runner kept for one run (job_events/<counter>-<uuid>.json)."""
    return [json.loads(path.read_text(encoding="utf-8")) for path in (artifact_dir / "job_events").glob("*.json")]


class PeakMemory:
    """The highest PSS of a process and all its descendants, sampled every SAMPLE_EVERY_S seconds:
    for a deploy, rollwright plus ansible-playbook, its forks and their ssh clients."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kib = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, machine.pss_kib([self.pid, *machine.descendants(self.pid)]))
            self._stop.wait(SAMPLE_EVERY_S)


def measured(command: list[str], cwd: Path, *, load_to: str | None = None) -> Row:
    """Run one rollwright command (under load when load_to is the load balancer's address): wall time,
    exit code, the runner's peak memory, the load's outcome and the floor from the runs it made."""
    artifacts = cwd / ".rollwright" / "lab" / "runs" / "artifacts"
    before = set(artifacts.iterdir()) if artifacts.is_dir() else set()
    load = Load(load_to, 80, rate=LOAD_RATE) if load_to else None
    with load or contextlib.nullcontext():
        started = time.perf_counter()
        proc = subprocess.Popen([ROLLWRIGHT, *command], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        with PeakMemory(proc.pid) as memory:
            output, _ = proc.communicate(timeout=1800)
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        print(f"$ rollwright {' '.join(command)} exited {proc.returncode}:\n{output[-3000:]}", file=sys.stderr)
    runs = sorted(set(artifacts.iterdir()) - before) if artifacts.is_dir() else []
    events = [event for run in runs for event in run_events(run)]
    row = Row(" ".join(command[:1]), wall=wall, floor=restart_floor(events), memory_mib=memory.peak_kib / 1024,
              exit=proc.returncode)
    if load:
        row.requests, row.failed = load.result.sent, load.result.failed
    return row


def generation_rows(runs: int) -> list[Row]:
    """In-process generation of the hello example (median), then a whole `rollwright generate` process."""
    from rollwright.render.project import prepare, render, write_project
    from rollwright.spec.loader import load_spec

    sample.build("1.0.0", HELLO_SPEC.parent / "dist")  # the artifact the spec pins; the project carries a copy
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            out = Path(tmp) / str(run)
            began = time.perf_counter()
            write_project(render(prepare(load_spec(HELLO_SPEC), "staging")), out)
            times.append(time.perf_counter() - began)
        process = measured(["generate", "-f", str(HELLO_SPEC), "-t", "staging", "-o", f"{tmp}/process"], REPO)
    inside = Row(f"generate hello, in-process (median of {runs})", wall=statistics.median(times))
    process.measurement = "generate hello, whole process"
    return [inside, process]


def cold_build_row() -> Row:
    """The base image built into an empty scratch cache, so the real cache is left alone."""
    cache = Path(tempfile.mkdtemp(prefix="rollwright-bench-", dir="/var/tmp"))
    try:
        started = time.perf_counter()
        image.ensure_image(lambda message: print(message, file=sys.stderr), cache_dir=cache)
        return Row(f"cold image build ({len(image.PACKAGES)} packages)", wall=time.perf_counter() - started)
    finally:
        remove_tree(cache)


def fleet_rows(hosts: int, serials: list[int | str], workdir: Path) -> list[Row]:
    """Boot a fresh lab of `hosts` app hosts, then per serial: deploy, no-op re-run and rollback of v2."""
    lab = Lab(f"rwb{hosts}", hosts, inventory=workdir / f"rwb{hosts}" / "hosts.yml",
              log=lambda message: print(message, file=sys.stderr))
    lab.down()  # a clean start, so the boot figure is a full boot
    rows = []
    try:
        booted = lab.up()
        state = load_state(lab.files)
        assert state is not None
        fleet = sum((machine.memory(host) for host in state.hosts.values()), machine.Memory())
        rows.append(Row(f"lab boot ({hosts + 2} hosts; memory: the fleet's)", str(hosts), wall=booted.boot_seconds,
                        memory_mib=(fleet.pss + fleet.tmpfs) / 1024))
        balancer = lab.hosts["lb1"].address
        for number, serial in enumerate(serials):
            folder = workdir / f"{hosts}-{number}"
            specs = {}
            for version in (f"1.{number}.0", f"2.{number}.0"):
                artifact, sha = sample.build(version, folder / "dist")
                specs[version] = str(sample.write_spec(folder, lab.inventory_path, artifact, sha, version,
                                                       batches=[serial]))
            old, new = specs.values()
            setup = measured(["deploy", "-f", old, "-t", "lab"], folder)
            if setup.exit != 0:
                raise SystemExit(f"the setup deploy on {hosts} app hosts failed; see above")
            for name, command in (("rolling deploy", ["deploy", "-f", new, "-t", "lab"]),
                                  ("no-op re-run", ["deploy", "-f", new, "-t", "lab"]),
                                  ("rollback", ["rollback", "-f", new, "-t", "lab"])):
                row = measured(command, folder, load_to=balancer)
                row.measurement, row.hosts, row.serial = name, str(hosts), str(serial)
                rows.append(row)
    finally:
        lab.down()
    return rows


def machine_line() -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    distro = platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
    return (f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, {memory_gib:.0f} GiB, {distro}, "
            f"kernel {platform.release()}, Python {platform.python_version()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, action="append", help="app hosts of a lab (default: 3, 6 and 12)")
    parser.add_argument("--cold", action="store_true", help="also time a cold build of the lab image")
    parser.add_argument("--runs", type=int, default=20, help="in-process generation runs (default 20)")
    args = parser.parse_args()
    require_root()
    rows = generation_rows(args.runs)
    if args.cold:
        rows.append(cold_build_row())
    image.ensure_image(lambda message: print(message, file=sys.stderr))  # the boots below time boots only
    with tempfile.TemporaryDirectory(prefix="rwbench-") as workdir:
        for hosts in args.hosts or [3, 6, 12]:
            rows += fleet_rows(hosts, [1, "50%"], Path(workdir))
    table = Table(title=f"rollwright benchmark: {machine_line()}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "measurement" else "right")
    for row in rows:
        table.add_row(*row.cells())
    console = Console(width=160)
    console.print(table)
    console.print(f"Deploys and rollbacks ran under {LOAD_RATE:.0f} requests/s through HAProxy. floor: the sum over "
                  "batches of the slowest host's restart + time-to-healthy, from the run's events. memory: the "
                  "runner's peak PSS (rollwright, ansible-playbook, its forks and ssh clients), except for a lab "
                  "boot, where it is the booted fleet's PSS + tmpfs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
