"""The generated project needs no rollwright and nothing outside itself: generated, then moved elsewhere with
its source (spec folder, artifact) gone, `ansible-runner run <dir> -p site.yml` (the engine AWX and AAP embed,
the project checked out into `<dir>/project` as AWX does) deploys it, and plain `ansible-playbook site.yml`
from the same copy then changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from fleets import APP_HOSTS, VENV_BIN, Fleet, recap

from rollwright.lab.fleet import Lab


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_moved_project_deploys_with_ansible_runner_then_ansible_playbook(lab: Lab, tmp_path: Path) -> None:
    fleet = Fleet.beside(lab, tmp_path / "app")
    spec = fleet.spec("40.0.0")
    generated = fleet.rollwright("generate", "-f", str(spec), "-t", "lab", "-o", str(tmp_path / "generated"))
    assert generated.returncode == 0, generated.stdout + generated.stderr
    private = tmp_path / "elsewhere" / "runner"  # ansible-runner's private data dir; the project goes into project/
    private.mkdir(parents=True)
    shutil.move(tmp_path / "generated", private / "project")
    shutil.rmtree(fleet.folder / "dist")  # the artifact the spec names: only the project's copy is left
    before = _files(private / "project")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}

    runner = subprocess.run([str(VENV_BIN / "ansible-runner"), "run", str(private), "-p", "site.yml"], env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    assert runner.returncode == 0, runner.stdout[-3000:] + runner.stderr[-2000:]
    first = recap(runner.stdout)
    assert set(APP_HOSTS) <= set(first) and all(r["failed"] == r["dark"] == "0" for r in first.values())
    assert {host: first[host]["changed"] != "0" for host in APP_HOSTS} == dict.fromkeys(APP_HOSTS, True)
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "40.0.0")
    assert (private / "artifacts").is_dir()  # ansible-runner's own record of the run

    playbook = subprocess.run([str(VENV_BIN / "ansible-playbook"), "site.yml"], cwd=private / "project", env=env,
                              capture_output=True, text=True, timeout=900, check=False)
    assert playbook.returncode == 0, playbook.stdout[-3000:] + playbook.stderr[-2000:]
    second = recap(playbook.stdout)
    assert set(APP_HOSTS) <= set(second) and all(r["failed"] == r["dark"] == "0" for r in second.values())
    assert {host: r["changed"] for host, r in second.items()} == dict.fromkeys(second, "0"), second
    assert _files(private / "project") == before  # nothing written into the project
