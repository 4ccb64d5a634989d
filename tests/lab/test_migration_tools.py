"""Migration tools other than sql (alembic, flyway, django, any command) on the lab: the apply command
runs once per deploy, on the first app host, from the new release, as the service user with the
service's env, before any switch; `rollwright migrations` runs the tool's status and plan commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rollwright.lab import sample
from rollwright.lab.fleet import Lab
from rollwright.render.yamlout import dump_yaml

VENV_BIN = Path(sys.executable).parent
LOG = "/srv/hello/shared/log/migrations.log"
# Like a real tool, it applies once per release: a line saying where it ran, as whom, where current
# pointed, and whether DATABASE_URL was set; a release it already ran for changes nothing. It says what it
# applied as Django does.
APPLY = (f"/bin/sh -c 'grep -qs \"^$(pwd) \" {LOG} || {{ echo \"$(pwd) $(id -un) "
         f"current=$(readlink /srv/hello/current) url=${{DATABASE_URL:+set}}\" >> {LOG} "
         "&& echo \"  Applying hello.$(basename $(pwd))... OK\"; }'")
STATUS = f"/bin/sh -c 'cat {LOG} 2>/dev/null || echo no migrations yet'"


def _rollwright(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(VENV_BIN / "rollwright"), *args], cwd=folder, capture_output=True, text=True,
                          timeout=600, check=False)
    print(proc.stdout, proc.stderr, file=sys.stderr)
    return proc


def _spec(lab: Lab, folder: Path, version: str, tool: str = "command") -> Path:
    artifact, sha = sample.build(version, folder / "dist")
    spec = sample.write_spec(folder, lab.inventory_path, artifact, sha, version, name="app.yml")
    data = yaml.safe_load(spec.read_text())
    data["database"] = {"hosts": "db", "name": "hello",
                        "migrations": {"tool": tool, "command": APPLY, "status_command": STATUS,
                                       **({} if tool == "command" else {"plan_command": STATUS})}}
    spec.write_bytes(dump_yaml(data))
    return spec


def _newest_record(folder: Path, spec: Path) -> dict[str, Any]:
    row = json.loads(_rollwright(folder, "history", "-f", str(spec), "--json").stdout.splitlines()[0])
    return dict(json.loads(Path(row["record"]).read_text()))


def test_a_command_tool_runs_once_from_the_new_release_before_the_switch(
        lab: Lab, tmp_path: Path, closed_stdout: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """Also: the record keeps what each tool applied; and a deploy whose reader closed its stdout at once
    (`deploy --json | head -1`) runs to its end all the same: record, history row and audit line."""
    for host in ("app1", "app2", "app3"):
        lab.run(host, f"rm -f {LOG}")
    first = _spec(lab, tmp_path, "0.8.0")
    piped = closed_stdout([str(VENV_BIN / "rollwright"), "deploy", "--json", "-f", str(first), "-t", "lab"], tmp_path,
                          timeout=600)
    assert (piped.returncode, piped.stderr) == (0, "")
    record = _newest_record(tmp_path, first)
    assert (record["version"], record["status"], record["verified"]) == ("0.8.0", "succeeded", True)
    assert record["migrations"] == {"tool": "command", "output": ["  Applying hello.0.8.0... OK"]}
    assert record["id"] in lab.run("app1", "cat /var/log/rollwright/audit.log").stdout
    second = _spec(lab, tmp_path, "0.8.1", tool="django")
    assert _rollwright(tmp_path, "deploy", "-f", str(second), "-t", "lab").returncode == 0
    record = _newest_record(tmp_path, second)
    assert record["migrations"]["applied"] == [{"script": "hello.0.8.1"}]
    assert "schema changes of hello.0.8.1: a code rollback keeps them" in record["cannot_roll_back"]
    assert "- applied hello.0.8.1\n" in _rollwright(tmp_path, "show", record["id"], "-f", str(second)).stdout
    again = _rollwright(tmp_path, "deploy", "-f", str(second), "-t", "lab")
    assert again.returncode == 0 and "(0 changes)" in again.stdout  # the status did not move: changed=0
    assert _newest_record(tmp_path, second)["migrations"]["applied"] == []

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
