"""Migration tools other than sql (alembic, flyway, django, any command) on the lab: the apply command
runs once per deploy, on the first app host, from the new release, as the service user with the
service's env, before any switch; `rollwright migrations` runs the tool's status and plan commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from rollwright.lab import sample
from rollwright.lab.fleet import Lab
from rollwright.render.yamlout import dump_yaml

VENV_BIN = Path(sys.executable).parent
LOG = "/srv/hello/shared/log/migrations.log"
# Like a real tool, it applies once per release: a line saying where it ran, as whom, where current
# pointed, and whether DATABASE_URL was set; a release it already ran for changes nothing.
APPLY = (f"/bin/sh -c 'grep -qs \"^$(pwd) \" {LOG} || echo \"$(pwd) $(id -un) current=$(readlink /srv/hello/current) "
         f"url=${{DATABASE_URL:+set}}\" >> {LOG}'")
STATUS = f"/bin/sh -c 'cat {LOG} 2>/dev/null || echo no migrations yet'"


def _rollwright(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(VENV_BIN / "rollwright"), *args], cwd=folder, capture_output=True, text=True,
                          timeout=600, check=False)
    print(proc.stdout, proc.stderr, file=sys.stderr)
    return proc


def _spec(lab: Lab, folder: Path, version: str) -> Path:
    artifact, sha = sample.build(version, folder / "dist")
    spec = sample.write_spec(folder, lab.inventory_path, artifact, sha, version, name="app.yml")
    data = yaml.safe_load(spec.read_text())
    data["database"] = {"hosts": "db", "name": "hello",
                        "migrations": {"tool": "command", "command": APPLY, "status_command": STATUS}}
    spec.write_bytes(dump_yaml(data))
    return spec


def test_a_command_tool_runs_once_from_the_new_release_before_the_switch(lab: Lab, tmp_path: Path) -> None:
    for host in ("app1", "app2", "app3"):
        lab.run(host, f"rm -f {LOG}")
    first = _spec(lab, tmp_path, "0.8.0")
    assert _rollwright(tmp_path, "deploy", "-f", str(first), "-t", "lab").returncode == 0
    second = _spec(lab, tmp_path, "0.8.1")
    assert _rollwright(tmp_path, "deploy", "-f", str(second), "-t", "lab").returncode == 0
    again = _rollwright(tmp_path, "deploy", "-f", str(second), "-t", "lab")
    assert again.returncode == 0 and "(0 changes)" in again.stdout  # the status did not move: changed=0

    lines = lab.run("app1", f"cat {LOG}").stdout.splitlines()
    assert len(lines) == 2, lines  # once per deploy
    assert lines[1] == "/srv/hello/releases/0.8.1 hello current=/srv/hello/releases/0.8.0 url=set"
    for host in ("app2", "app3"):  # not once per host
        assert lab.run(host, f"test -e {LOG}").returncode != 0

    status = _rollwright(tmp_path, "migrations", "status", "-f", str(second), "-t", "lab")
    assert status.returncode == 0
    assert f"$ {STATUS}" in status.stdout and "releases/0.8.1 hello" in status.stdout
    plan = _rollwright(tmp_path, "migrations", "apply", "--dry-run", "-f", str(second), "-t", "lab")
    assert plan.returncode == 0 and f"$ {STATUS}" in plan.stdout
    assert len(lab.run("app1", f"cat {LOG}").stdout.splitlines()) == 2  # the plan changed nothing

    refused = _rollwright(tmp_path, "migrations", "baseline", "3", "-f", str(second), "-t", "lab")
    assert refused.returncode == 2 and "is for tool: sql" in refused.stderr
