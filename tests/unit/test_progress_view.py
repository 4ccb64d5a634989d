"""What a deploy shows in its first seconds, before any play ended: the plan (target, version, hosts and
batches), then each step it enters (the project, the lock, ansible-playbook starting), then the task under way
and which hosts answered it. The real `deploy()` runs with a fake ansible-runner that plays site.yml's first
events and stops there; the plain lines, the JSON events and the live view must tell the same story."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from rollwright.render.playbooks import TAKE_LOCK_PLAY
from rollwright.run import deploy as deploy_module
from rollwright.run import lock as lock_module
from rollwright.run.deploy import DeployOptions, deploy
from rollwright.run.engine import PlaybookRun
from rollwright.run.output import JsonOutput, LiveOutput, Output, hosts_in_batches
from rollwright.spec.loader import load_spec

PLAN = "deploying hello 1.4.0 to staging: 3 app hosts in 3 batches (1, 1, 1)"
PREFLIGHT = "Preflight on the hosts (changes nothing)"
CHECK = "Check the free disk space"


class Stop(Exception):
    """Ends the fake run where the test has seen enough (the deploy's lock is still given back)."""


def _spec(folder: Path) -> Path:
    artifact = folder / "hello-1.4.0.tar.gz"
    artifact.write_bytes(b"not really a tarball")
    (folder / "hosts.yml").write_text("all:\n  children:\n    app:\n      hosts: {app1: {}, app2: {}, app3: {}}\n")
    (folder / "rollwright.yml").write_text(f"""\
app: hello
artifact: {{path: {artifact.name}, version: 1.4.0, sha256: "{hashlib.sha256(artifact.read_bytes()).hexdigest()}"}}
release: {{root: /srv/hello}}
service: {{exec: /usr/bin/python3 app.py, user: hello}}
health: {{path: /health, port: 8080}}
rollout: {{batches: [1, 1, 1]}}
targets:
  staging: {{inventory: hosts.yml}}
""")
    return folder / "rollwright.yml"


def _event(kind: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": data}


def _deploy_until_a_task_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: Output,
                               seen: list[str] | None = None) -> list[str]:
    """Deploy with a fake runner: site.yml's lock play takes the lock, preflight starts a task on the three app
    hosts and app1 answers; then the run stops. `seen`: the live view when site.yml starts and at the end."""
    playbooks: list[str] = []

    def look() -> None:
        if seen is not None and isinstance(out, LiveOutput):
            view = io.StringIO()
            Console(file=view, width=160, color_system=None).print(out._view())
            seen.append(view.getvalue())

    def fake_run(project: Path, playbook: str, run_root: Path, on_event: Any, **_: Any) -> PlaybookRun:
        playbooks.append(playbook)
        if playbook == "site.yml":
            look()
            on_event(_event("playbook_on_play_start", play=TAKE_LOCK_PLAY))
            on_event(_event("runner_on_ok", play=TAKE_LOCK_PLAY, host="app1", task_action="deploy_lock", res={}))
            on_event(_event("playbook_on_play_start", play=PREFLIGHT))
            on_event(_event("playbook_on_task_start", play=PREFLIGHT, task=CHECK))
            for host in ("app1", "app2", "app3"):
                on_event(_event("runner_on_start", play=PREFLIGHT, host=host, task=CHECK))
            on_event(_event("runner_on_ok", play=PREFLIGHT, host="app1", task=CHECK, res={}))
            look()
            raise Stop
        return PlaybookRun(playbook, "successful", 0, 0.1, run_root)  # lock.yml: the lock given back

    monkeypatch.setattr(deploy_module, "run_playbook", fake_run)
    monkeypatch.setattr(lock_module, "run_playbook", fake_run)
    with out, pytest.raises(Stop):
        deploy(load_spec(_spec(tmp_path)), DeployOptions(target="staging"), out)
    assert playbooks == ["site.yml", "lock.yml"]  # the lock came with site.yml's first play, and went back
    return playbooks


def test_plain_lines_say_the_plan_then_each_step_before_any_play_ended(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    _deploy_until_a_task_waits(tmp_path, monkeypatch, Output(stream))
    assert stream.getvalue().splitlines() == [
        PLAN,
        "→ preparing the Ansible project (the playbooks, the roles, a copy of the artifact)",
        "→ starting ansible-playbook site.yml; its first play takes the deploy lock on app1",
        "→ deploy lock taken",
        f"▸ {PREFLIGHT}",
    ]  # tasks are the live view's: a line per task and host would drown the log


def test_json_events_carry_the_plan_and_the_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    _deploy_until_a_task_waits(tmp_path, monkeypatch, JsonOutput(stream))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["plan", "run_phase", "run_phase", "run_phase", "play"]
    plan = events[0]
    assert plan["text"] == PLAN
    assert {key: plan[key] for key in ("action", "app", "version", "target", "strategy", "hosts", "batch_sizes",
                                       "limit")} == {
        "action": "deploy", "app": "hello", "version": "1.4.0", "target": "staging", "strategy": "rolling",
        "hosts": ["app1", "app2", "app3"], "batch_sizes": [1, 1, 1], "limit": None}
    assert [e["phase"] for e in events[1:4]] == [
        "preparing the Ansible project (the playbooks, the roles, a copy of the artifact)",
        "starting ansible-playbook site.yml; its first play takes the deploy lock on app1", "deploy lock taken"]


def test_the_live_view_shows_the_plan_the_step_and_who_a_task_waits_for(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    stream = io.StringIO()
    _deploy_until_a_task_waits(tmp_path, monkeypatch, LiveOutput(stream, force_terminal=True), seen)
    starting, waiting = ([line.rstrip() for line in view.splitlines()] for view in seen)
    assert starting[0].startswith(f"{PLAN}  (") and starting[1].startswith(
        "starting ansible-playbook site.yml; its first play takes the deploy lock on app1  ")
    assert waiting[0].startswith(f"{PLAN}  (") and waiting[1].startswith(f"{PREFLIGHT}  ")
    assert waiting[2] == f"  {CHECK}: 1/3 hosts answered, waiting for app2, app3"
    assert "→ deploy lock taken" in stream.getvalue()


def test_the_plan_names_the_batches() -> None:
    assert hosts_in_batches([["a"], ["b", "c"]]) == "3 app hosts in 2 batches (1, 2)"
    assert hosts_in_batches([["a", "b"]]) == "2 app hosts in one batch"
    assert hosts_in_batches([]) == "no app host"
