"""Benchmark of `rollwright lab`: cold image build, boot of 3 and of 8 app hosts, fleet memory.

Run as root: `.venv/bin/python bench/bench_lab.py` (about 3 minutes; `--no-cold` skips the image build).
Prints figures, asserts nothing: machines are shared and noisy, compare within one run.

The cold build goes into a temporary cache dir, so the real image cache is left alone. Memory is
measured right after boot, two ways: the sum over hosts of the PSS of nspawn and every container
process (shared pages split between their users) plus what the containers hold in tmpfs; and the
drop of the machine's MemAvailable across the boot, which also counts page cache and kernel memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rollwright.lab import image, machine
from rollwright.lab.fleet import Lab
from rollwright.lab.state import load
from rollwright.lab.system import remove_tree, require_root


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def cold_build() -> float:
    """Seconds to build the base image into an empty cache dir."""
    cache = Path(tempfile.mkdtemp(prefix="rollwright-bench-", dir="/var/tmp"))
    try:
        started = time.monotonic()
        image.ensure_image(lambda message: print(message, file=sys.stderr), cache_dir=cache)
        return time.monotonic() - started
    finally:
        remove_tree(cache)


def boot(name: str, app_hosts: int, workdir: Path) -> list[tuple[str, str, str]]:
    """Boot a lab, weigh it, take it down; table rows (measurement, value, how)."""
    fleet = Lab(name, app_hosts, inventory=workdir / name / "hosts.yml", log=lambda m: print(m, file=sys.stderr))
    fleet.down()  # a clean start, so the figure is a full boot
    hosts = app_hosts + 2
    before = mem_available_mib()
    try:
        started = time.monotonic()
        result = fleet.up()
        total = time.monotonic() - started
        drop = before - mem_available_mib()
        state = load(fleet.files)
        assert state is not None
        memory = sum((machine.memory(h) for h in state.hosts.values()), machine.Memory())
    finally:
        fleet.down()
    pss, tmpfs, rss = memory.pss / 1024, memory.tmpfs / 1024, memory.rss / 1024
    return [
        (f"boot {app_hosts} app hosts ({hosts} hosts)", f"{result.boot_seconds:.1f} s",
         f"all at once, until systemd is 'running' on each (whole `up`: {total:.1f} s)"),
        (f"fleet memory, {hosts} hosts", f"{pss + tmpfs:.0f} MiB",
         f"PSS {pss:.0f} + tmpfs {tmpfs:.0f} MiB, {(pss + tmpfs) / hosts:.0f} MiB/host "
         f"(RSS sum {rss:.0f} MiB; MemAvailable drop {drop:.0f} MiB)"),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold image build")
    args = parser.parse_args()
    require_root()
    rows = []
    if not args.no_cold:
        rows.append(
            ("cold image build", f"{cold_build():.1f} s", f"debootstrap of {len(image.PACKAGES)} packages + trim")
        )
    image.ensure_image(lambda message: print(message, file=sys.stderr))  # the boots below use the real cache
    with tempfile.TemporaryDirectory() as workdir:
        rows += boot("bench3", 3, Path(workdir))
        rows += boot("bench8", 8, Path(workdir))
    table = Table(title="rollwright lab benchmark")
    for column in ("measurement", "value", "how"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
