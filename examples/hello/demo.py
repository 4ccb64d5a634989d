"""`make demo`: the whole job on the local lab, for real.

Brings the lab up, builds the sample app, deploys 1.0.0 with the committed spec (examples/hello/
rollwright.yml: verified backup, then tracked SQL migrations, then the rolling release), rolls 2.0.0
out in batches behind HAProxy while a bounded load runs through it, then tries a deliberately broken
3.0.0 and shows it rolled back, each time counting failed requests. The later specs, builds and
ansible-runner artifacts land in build/demo/. Needs root (the lab uses namespaces and systemd-nspawn).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rollwright.lab import sample
from rollwright.lab.fleet import Lab
from rollwright.lab.load import Load

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FOLDER = REPO / "build" / "demo"
COMMITTED_SPEC = HERE / "rollwright.yml"
ROLLWRIGHT = str(Path(sys.executable).parent / "rollwright")


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def rollwright(*args: str) -> int:
    return subprocess.run([ROLLWRIGHT, *args], cwd=FOLDER, check=False).returncode


def newest_record(spec: Path) -> Path:
    """record.md of the newest deploy of `spec` on the lab (the deployment log)."""
    out = subprocess.run([ROLLWRIGHT, "history", "-f", str(spec), "-t", "lab", "--json"], cwd=FOLDER, check=True,
                         capture_output=True, text=True).stdout
    return Path(json.loads(out.splitlines()[0])["record"]).with_name("record.md")  # JSON Lines, newest first


def main() -> int:
    FOLDER.mkdir(parents=True, exist_ok=True)
    step("lab up (lb1 with HAProxy, db1 with PostgreSQL, app1..app3)")
    lab = Lab()
    lab.up()
    specs = {}
    for version, broken in (("2.0.0", False), ("3.0.0", True)):
        artifact, sha = sample.build(version, FOLDER / "dist", broken=broken)
        specs[version] = sample.write_spec(FOLDER, lab.inventory_path, artifact, sha, version)
        print(f"built {artifact.name} sha256 {sha}{' (deliberately broken: fails its health check)' if broken else ''}")

    step("deploy 1.0.0 with examples/hello/rollwright.yml (backup, tracked migrations, rolling release)")
    sample.build("1.0.0", HERE / "dist")  # byte-reproducible: the sha256 pinned in the committed spec
    if rollwright("deploy", "-f", str(COMMITTED_SPEC), "-t", "lab") != 0:
        return 1
    rollwright("migrations", "status", "-f", str(COMMITTED_SPEC), "-t", "lab")
    outcomes = []
    for version, expected in (("2.0.0", 0), ("3.0.0", 1)):
        step(f"deploy {version} while {lab.hosts['lb1'].address}:80 takes load")
        with Load(lab.hosts["lb1"].address, 80, rate=50) as load:
            code = rollwright("deploy", "-f", str(specs[version]), "-t", "lab")
        print(f"load: {load.result.summary()}")
        outcomes.append((version, code, expected, load.result.failed))
        if version == "2.0.0":
            step(f"the deployment log of 2.0.0 ({newest_record(specs[version])})")
            print(newest_record(specs[version]).read_text())

    step("what every app host serves now")
    rollwright("status", "-f", str(specs["2.0.0"]), "-t", "lab")
    step("summary")
    for version, code, expected, failed in outcomes:
        print(f"deploy {version}: exit {code} (expected {expected}), failed requests {failed}")
    ok = all(code == expected and failed == 0 for _, code, expected, failed in outcomes)
    print("demo OK" if ok else "demo FAILED")
    print(f"records: {FOLDER / '.rollwright' / 'lab' / 'records'} (and {HERE / '.rollwright' / 'lab' / 'records'} "
          f"for 1.0.0); `rollwright history -f {specs['2.0.0']} -t lab` lists them")
    print("the lab stays up for you to look around (`.venv/bin/rollwright lab ssh app1`); "
          "`.venv/bin/rollwright lab down` removes it")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
