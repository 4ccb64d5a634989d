"""Benchmark of `rollwright deploy` on the lab: rolling deploy, no-op re-run and rollback, under load.

Run as root: `.venv/bin/python bench/bench_deploy.py` (about 10 minutes; `--hosts 3` for one size).
For 3 and 6 app hosts and for serial 1 and serial 50%, it deploys v1 (setup, not measured), then
measures, each while a bounded load (LOAD_RATE requests/s through HAProxy) runs: a rolling deploy of
a new version, a no-op re-run of that version, and `rollwright rollback`. Prints figures, asserts
nothing: machines are shared and noisy, compare within one run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rollwright.lab import sample
from rollwright.lab.fleet import Lab
from rollwright.lab.load import Load, LoadResult
from rollwright.lab.system import require_root

LOAD_RATE = 100.0
ROLLWRIGHT = str(Path(sys.executable).parent / "rollwright")


@dataclass
class Measure:
    seconds: float
    rc: int
    load: LoadResult


def timed(lab: Lab, folder: Path, *args: str) -> Measure:
    """One rollwright command under load; its wall time, exit code and the load's outcome."""
    with Load(lab.hosts["lb1"].address, 80, rate=LOAD_RATE) as load:
        started = time.perf_counter()
        proc = subprocess.run([ROLLWRIGHT, *args, "-t", "lab"], cwd=folder, capture_output=True, text=True,
                              timeout=1800, check=False)
        seconds = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:], file=sys.stderr)
    return Measure(seconds, proc.returncode, load.result)


def bench_fleet(hosts: int, serials: list[int | str], rows: list[list[str]]) -> None:
    lab = Lab(f"rwb{hosts}", hosts, inventory=Path(tempfile.mkdtemp(prefix="rwbench-")) / "hosts.yml")
    lab.up()
    try:
        for round_number, serial in enumerate(serials):
            folder = Path(tempfile.mkdtemp(prefix=f"rwbench-{hosts}-"))
            old, new = f"1.{round_number}.0", f"2.{round_number}.0"
            specs = {}
            for version in (old, new):
                artifact, sha = sample.build(version, folder / "dist")
                specs[version] = sample.write_spec(folder, lab.inventory_path, artifact, sha, version, batches=[serial])
            setup = timed(lab, folder, "deploy", "-f", str(specs[old]))
            deploy = timed(lab, folder, "deploy", "-f", str(specs[new]))
            noop = timed(lab, folder, "deploy", "-f", str(specs[new]))
            rollback = timed(lab, folder, "rollback", "-f", str(specs[new]))
            first = "first deploy (setup)" if round_number else "first deploy, empty fleet"
            for name, m in ((first, setup), ("rolling deploy", deploy), ("no-op re-run", noop), ("rollback", rollback)):
                rows.append([str(hosts), str(serial), name, f"{m.seconds:.1f}", str(m.rc), str(m.load.sent),
                             str(m.load.failed)])
    finally:
        lab.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, action="append", help="app hosts per lab (default: 3 and 6)")
    args = parser.parse_args()
    require_root()
    rows: list[list[str]] = []
    for hosts in args.hosts or [3, 6]:
        bench_fleet(hosts, [1, "50%"], rows)
    table = Table(title=f"rollwright deploy on the lab, under {LOAD_RATE:.0f} requests/s through HAProxy")
    for column in ("app hosts", "serial", "run", "wall s", "exit", "requests", "failed"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
