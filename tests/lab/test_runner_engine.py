"""The generated project needs no rollwright: `ansible-runner run <dir> -p site.yml`, the engine AWX and AAP
embed, deploys it as generated, with the project checked out into `<dir>/project` as AWX does."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from fleets import APP_HOSTS, VENV_BIN, Fleet

from rollwright.lab.fleet import Lab

RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<dark>\d+)\s+"
                   r"failed=(?P<failed>\d+)", re.MULTILINE)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ansible_runner_run_deploys_the_generated_project_unchanged(lab: Lab, tmp_path: Path) -> None:
    fleet = Fleet.beside(lab, tmp_path / "app")
    spec = fleet.spec("40.0.0")
    private = tmp_path / "runner"  # ansible-runner's private data dir; the project goes into project/
    generated = fleet.rollwright("generate", "-f", str(spec), "-t", "lab", "-o", str(private / "project"))
    assert generated.returncode == 0, generated.stdout + generated.stderr
    before = _files(private / "project")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    recaps = []
    for _ in range(2):  # the second run must change nothing
        proc = subprocess.run([str(VENV_BIN / "ansible-runner"), "run", str(private), "-p", "site.yml"], env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        plain = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)  # ansible-runner forces colour
        recaps.append({m["host"]: m.groupdict() for m in RECAP.finditer(plain)})
    assert set(APP_HOSTS) <= set(recaps[0]) and all(r["failed"] == r["dark"] == "0" for r in recaps[0].values())
    assert {host: r["changed"] for host, r in recaps[1].items()} == dict.fromkeys(recaps[1], "0"), recaps[1]
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "40.0.0")
    assert _files(private / "project") == before  # nothing written into the project
    assert (private / "artifacts").is_dir()  # ansible-runner's own record of the two runs
