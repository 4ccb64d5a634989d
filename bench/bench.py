"""rollwright's benchmark: generation, lab boot and rolling deploys under load, in one table.

Run as root: `make bench` (about 25 minutes; `--hosts 3` for one lab size, `--cold` adds a cold image
build). Prints figures and asserts nothing: machines are shared and noisy, so compare within one run.

For each lab size (3, 6 and 12 app hosts by default, each on a fresh lab named <prefix><hosts>) and for
serial 1 and 50%, it deploys v1 (setup, not shown) and measures the physical floor, then, each under a
bounded load through HAProxy: a rolling deploy of v2, a no-op re-run of v2, `rollwright rollback`,
`rollwright verify` and the plain-Ansible baseline (bench/baseline/site.yml, serial 1) deploying a
version of its own. The next serial's setup deploy brings the lab back under rollwright.

Physical floor: nothing but a restart and the wait until healthy, measured on the hosts. Per batch of
the rollout (split_batches over the app hosts in inventory order), one ssh per host, started together,
runs a probe with the host's python3 that restarts the unit and polls /health until it answers 200 with
the release's version, and prints its own elapsed seconds (the host's clock: ssh setup stays out). A
batch's floor is its slowest host; the deploy's floor is the sum over batches; the median of --floor-runs
rounds is shown. rollback.yml batches as site.yml does, so a rollback's floor is the deploy's. Everything
above the floor is what rollwright and Ansible add (preflight, lock, staging, draining, verify, records);
the sample spec has no database, so no backup or migration runs.

Control-node CPU: user + system seconds of the measured command's whole process tree (rollwright,
ansible-playbook, its forks, their ssh clients), from getrusage(RUSAGE_CHILDREN) before and after the
command is waited for. The load generator and the memory sampler are threads of this process, so they
are not counted; an ssh ControlPersist master daemonises and is never waited for by the tree, so its
CPU (and memory) escapes both figures, for rollwright and the baseline alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rollwright.lab import image, machine, sample
from rollwright.lab.fleet import Lab
from rollwright.lab.load import Load
from rollwright.lab.state import load as load_state
from rollwright.lab.system import remove_tree, require_root
from rollwright.render.batches import split_batches

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROLLWRIGHT = str(BIN / "rollwright")
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")
BASELINE = Path(__file__).resolve().parent / "baseline"
HELLO_SPEC = REPO / "examples/hello/rollwright.yml"
LOAD_RATE = 100.0  # requests/s through HAProxy during every measured run on a lab
SAMPLE_EVERY_S = 0.2  # how often the runner's memory is read
SETTLE_S = 5.0  # after the floor's restarts: HAProxy (check every 1 s, rise 2) sees every host up again
SCALING = (3, 12, "50%")  # t(12 hosts) / t(3 hosts) of the rolling deploy at serial 50%
COLUMNS = ("measurement", "app hosts", "serial", "wall s", "CPU s", "floor s", "wall/floor", "vs baseline",
           "no-op/deploy", "requests", "failed", "memory MiB", "exit")
# Runs on an app host with its own python3: restart the unit, wait until /health answers 200 with the
# version current points at, print the seconds that took by the host's clock.
FLOOR_PROBE = """\
import subprocess, time, urllib.request
version = open("/srv/hello/current/VERSION", encoding="utf-8").read().strip()
began = time.monotonic()
subprocess.run(["systemctl", "restart", "hello"], check=True)
while time.monotonic() - began < 60:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8080/health", timeout=2) as answer:
            if answer.status == 200 and answer.headers.get("X-App-Version") == version:
                print(time.monotonic() - began)
                break
    except OSError:
        pass
    time.sleep(0.02)
else:
    raise SystemExit("hello did not answer healthy with version " + version + " within 60 s")
"""


@dataclass
class Row:
    measurement: str
    hosts: str = "-"
    serial: str = "-"
    wall: float | None = None
    cpu: float | None = None
    floor: float | None = None
    requests: int | None = None
    failed: int | None = None
    memory_mib: float | None = None
    exit: int | None = None
    baseline: Row | None = None  # a rolling deploy's plain-Ansible run, from the same lab and serial
    deploy: Row | None = None  # a no-op re-run's rolling deploy

    def cells(self) -> list[str]:
        versus = "-"
        if self.baseline:
            versus = (f"{ratio(self.wall, self.baseline.wall)} wall, "
                      f"{ratio(self.cpu, self.baseline.cpu)} CPU")
        noop = ratio(self.wall, self.deploy.wall) if self.deploy else "-"
        return [self.measurement, self.hosts, self.serial, _fmt(self.wall, ".2f" if (self.wall or 0) < 1 else ".1f"),
                _fmt(self.cpu, ".1f"), _fmt(self.floor, ".1f"), ratio(self.wall, self.floor), versus, noop,
                _fmt(self.requests, "d"), _fmt(self.failed, "d"), _fmt(self.memory_mib, ".0f"), _fmt(self.exit, "d")]


def _fmt(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def ratio(part: float | None, whole: float | None) -> str:
    """part / whole as "1.23x", or "-" when either is missing (or whole is 0)."""
    return f"{part / whole:.2f}x" if part is not None and whole else "-"


def deploy_floor(seconds: Mapping[str, float], batches: Sequence[Sequence[str]]) -> float:
    """The sum over batches of the batch's slowest host (seconds: host -> restart + time to healthy)."""
    return sum(max(seconds[host] for host in batch) for batch in batches if batch)


def scaling_line(rows: Sequence[Row]) -> str | None:
    """t(12)/t(3) of the rolling deploy at serial 50%, when both lab sizes ran."""
    small, large, serial = SCALING
    walls = {row.hosts: row.wall for row in rows if row.measurement == "rolling deploy" and row.serial == serial}
    if walls.get(str(small)) is None or walls.get(str(large)) is None:
        return None
    return (f"t({large})/t({small}) at serial {serial}: {ratio(walls[str(large)], walls[str(small)])} "
            f"({walls[str(large)]:.1f} s / {walls[str(small)]:.1f} s)")


def children_cpu() -> float:
    """User + system seconds of every child process waited for so far (and of what they waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def measured(command: list[str], cwd: Path, *, load_to: str | None = None,
             env: Mapping[str, str] | None = None) -> Row:
    """Run one command (under load when load_to is the load balancer's address): wall time, the process
    tree's CPU, exit code, its peak memory and the load's outcome."""
    load = Load(load_to, 80, rate=LOAD_RATE) if load_to else None
    with load or contextlib.nullcontext():
        cpu_before, started = children_cpu(), time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=None if env is None else {**os.environ, **env})
        with PeakMemory(proc.pid) as memory:
            output, _ = proc.communicate(timeout=1800)
        wall, cpu = time.perf_counter() - started, children_cpu() - cpu_before
    if proc.returncode != 0:
        print(f"$ {' '.join(command)} exited {proc.returncode}:\n{output[-3000:]}", file=sys.stderr)
    row = Row(Path(command[0]).name, wall=wall, cpu=cpu, memory_mib=memory.peak_kib / 1024, exit=proc.returncode)
    if load:
        row.requests, row.failed = load.result.sent, load.result.failed
    return row


def progress(row: Row) -> Row:
    """Print a measured row to stderr as it comes, so a run stopped early still shows its figures."""
    print(" | ".join(f"{column}: {cell}" for column, cell in zip(COLUMNS, row.cells(), strict=True)), file=sys.stderr)
    return row


def rollwright(*args: str) -> list[str]:
    return [ROLLWRIGHT, *args]


def restart_seconds(lab: Lab, batch: Sequence[str]) -> dict[str, float]:
    """Restart + time to healthy of each host of one batch, all at once, each by its own clock."""
    def probe(host: str) -> float:
        proc = subprocess.run([*lab.ssh_args(host), "python3", "-"], input=FLOOR_PROBE, capture_output=True,
                              text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"the floor probe on {host} failed: {proc.stderr.strip()}")
        return float(proc.stdout)

    with ThreadPoolExecutor(max_workers=len(batch)) as pool:
        return dict(zip(batch, pool.map(probe, batch), strict=True))


def measure_floor(lab: Lab, app_hosts: Sequence[str], serial: int | str, rounds: int) -> float:
    """The median over rounds of the deploy floor at this serial (the lab quiet, no deploy running)."""
    batches = split_batches(app_hosts, [serial])
    floors = []
    for _ in range(rounds):
        seconds: dict[str, float] = {}
        for batch in batches:
            seconds.update(restart_seconds(lab, batch))
        floors.append(deploy_floor(seconds, batches))
    time.sleep(SETTLE_S)
    return statistics.median(floors)


def baseline_row(version: str, folder: Path, inventory: Path, balancer: str) -> Row:
    """The plain-Ansible rolling playbook deploying its own version (3.x.0), under the same load."""
    artifact, _ = sample.build(version, folder / "dist")
    variables = folder / f"baseline-{version}.json"
    variables.write_text(json.dumps({"baseline_version": version, "baseline_artifact": str(artifact.resolve())}))
    return measured([ANSIBLE_PLAYBOOK, "-i", str(inventory), "-e", f"@{variables}", str(BASELINE / "site.yml")],
                    folder, load_to=balancer, env={"ANSIBLE_CONFIG": str(BASELINE / "ansible.cfg")})


def generation_rows(runs: int) -> list[Row]:
    """In-process generation of the hello example (median), then a whole `rollwright generate` process."""
    from rollwright.render.project import prepare, render, write_project
    from rollwright.spec.loader import load_spec

    sample.build("1.0.0", HELLO_SPEC.parent / "dist")  # the artifact the spec pins; the project carries a copy
    times, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            out = Path(tmp) / str(run)
            began, cpu = time.perf_counter(), time.process_time()
            write_project(render(prepare(load_spec(HELLO_SPEC), "staging")), out)
            times.append(time.perf_counter() - began)
            cpus.append(time.process_time() - cpu)
        process = measured(rollwright("generate", "-f", str(HELLO_SPEC), "-t", "staging", "-o", f"{tmp}/process"),
                           REPO)
    inside = Row(f"generate hello, in-process (median of {runs})", wall=statistics.median(times),
                 cpu=statistics.median(cpus))
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


def serial_rows(lab: Lab, hosts: int, serial: int | str, number: int, folder: Path, floor_runs: int) -> list[Row]:
    """On a booted lab, at one serial: the setup deploy of v1, the floors, then the measured runs."""
    specs = {}
    for version in (f"1.{number}.0", f"2.{number}.0"):
        artifact, sha = sample.build(version, folder / "dist")
        specs[version] = str(sample.write_spec(folder, lab.inventory_path, artifact, sha, version, batches=[serial]))
    old, new = specs.values()
    if measured(rollwright("deploy", "-f", old, "-t", "lab"), folder).exit != 0:
        raise SystemExit(f"the setup deploy on {hosts} app hosts failed; see above")
    app_hosts = [name for name, host in lab.hosts.items() if host.group == "app"]  # inventory order
    floors = {each: measure_floor(lab, app_hosts, each, floor_runs) for each in dict.fromkeys([serial, 1])}
    balancer = lab.hosts["lb1"].address
    runs = (("rolling deploy", rollwright("deploy", "-f", new, "-t", "lab"), floors[serial]),
            ("no-op re-run", rollwright("deploy", "-f", new, "-t", "lab"), None),
            ("rollback", rollwright("rollback", "-f", new, "-t", "lab"), floors[serial]),
            ("verify", rollwright("verify", "-f", old, "-t", "lab"), None))
    rows = []
    for name, command, floor in runs:
        row = measured(command, folder, load_to=balancer)
        row.measurement, row.hosts, row.serial, row.floor = name, str(hosts), str(serial), floor
        rows.append(progress(row))
    baseline = baseline_row(f"3.{number}.0", folder, lab.inventory_path, balancer)
    baseline.measurement, baseline.hosts, baseline.serial, baseline.floor = ("baseline deploy (plain Ansible)",
                                                                            str(hosts), "1", floors[1])
    deploy, noop = rows[0], rows[1]
    deploy.baseline, noop.deploy = baseline, deploy
    return [*rows, progress(baseline)]


def fleet_rows(hosts: int, serials: list[int | str], workdir: Path, prefix: str, floor_runs: int) -> list[Row]:
    """Boot a fresh lab of `hosts` app hosts, then per serial: its measured runs (serial_rows)."""
    name = f"{prefix}{hosts}"
    lab = Lab(name, hosts, inventory=workdir / name / "hosts.yml", log=lambda message: print(message, file=sys.stderr))
    lab.down()  # a clean start, so the boot figure is a full boot
    rows = []
    try:
        booted = lab.up()
        state = load_state(lab.files)
        assert state is not None
        fleet = sum((machine.memory(host) for host in state.hosts.values()), machine.Memory())
        rows.append(Row(f"lab boot ({hosts + 2} hosts; memory: the fleet's)", str(hosts), wall=booted.boot_seconds,
                        memory_mib=(fleet.pss + fleet.tmpfs) / 1024))
        for number, serial in enumerate(serials):
            rows += serial_rows(lab, hosts, serial, number, workdir / f"{hosts}-{number}", floor_runs)
    finally:
        lab.down()
    return rows


def machine_line() -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    distro = platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
    return (f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, {memory_gib:.0f} GiB, {distro}, "
            f"kernel {platform.release()}, Python {platform.python_version()}")


def table_of(rows: Sequence[Row]) -> Table:
    table = Table(title=f"rollwright benchmark: {machine_line()}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "measurement" else "right")
    for row in rows:
        table.add_row(*row.cells())
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, action="append", help="app hosts of a lab (default: 3, 6 and 12)")
    parser.add_argument("--cold", action="store_true", help="also time a cold build of the lab image")
    parser.add_argument("--runs", type=int, default=20, help="in-process generation runs (default 20)")
    parser.add_argument("--floor-runs", type=int, default=3, help="rounds of the floor's median (default 3)")
    parser.add_argument("--lab-prefix", default="rwb", help="labs are named <prefix><hosts> (default rwb)")
    args = parser.parse_args()
    require_root()
    rows = generation_rows(args.runs)
    if args.cold:
        rows.append(cold_build_row())
    image.ensure_image(lambda message: print(message, file=sys.stderr))  # the boots below time boots only
    with tempfile.TemporaryDirectory(prefix="rwbench-") as workdir:
        for hosts in args.hosts or [3, 6, 12]:
            rows += fleet_rows(hosts, [1, "50%"], Path(workdir), args.lab_prefix, args.floor_runs)
    console = Console(width=200)
    console.print(table_of(rows))
    scaling = scaling_line(rows)
    if scaling:
        console.print(scaling)
    console.print(f"Runs on a lab ran under {LOAD_RATE:.0f} requests/s through HAProxy. floor: restart + time to "
                  f"healthy measured on the hosts, the slowest host of each batch summed over batches (median of "
                  f"{args.floor_runs}). CPU: user + system of the command's process tree on the control node. "
                  "vs baseline: the deploy's wall and CPU over the plain-Ansible playbook's (bench/baseline, "
                  "serial 1). "
                  "memory: peak PSS of the command's process tree, except for a lab boot, where it is the booted "
                  "fleet's PSS + tmpfs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
