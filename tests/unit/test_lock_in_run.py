"""The deploy lock taken by the first play of site.yml / rollback.yml (one ansible-runner run fewer per deploy).

The runner's side (DeployLock.ask / watch) on the events such a run sends, and the playbook's side for real:
when the lock is held by another deploy, the generated site.yml ends at its first play, before any check or
change, and a plain run without the runner's request skips the play.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollwright.render.playbooks import TAKE_LOCK_PLAY
from rollwright.run.lock import DeployLock

REPO = Path(__file__).resolve().parents[2]
OTHER = {"id": "20261204T000000Z-other", "user": "ana@bastion", "control_host": "bastion", "pid": 4242,
         "version": "1.0.0", "message": "friday fix", "since": 1_700_000_000}


def _event(kind: str, play: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"play": play, **data}}


def _lock(tmp_path: Path) -> DeployLock:
    return DeployLock(tmp_path, tmp_path / "runs", "20261204T000001Z-mine", "2.0.0", "", lambda line: None)


def test_a_deferred_lock_is_asked_for_once_and_its_play_is_kept_from_the_progress(tmp_path: Path) -> None:
    lock, seen = _lock(tmp_path), list[dict[str, Any]]()
    assert lock.ask() == {}  # not deferred: lock.yml takes it
    taken: list[bool] = []
    lock.on_taken = lambda: taken.append(True)  # the deploy's start (its webhook) comes with the lock
    lock.deferred = True
    asked = lock.ask()
    assert asked["deploy_lock_action"] == "acquire" and asked["deploy_lock_holder"]["id"] == "20261204T000001Z-mine"
    handle = lock.watch(seen.append)
    handle(_event("playbook_on_play_start", TAKE_LOCK_PLAY))
    handle(_event("runner_on_ok", TAKE_LOCK_PLAY, task_action="deploy_lock", res={"held": True}))
    handle(_event("playbook_on_play_start", "Preflight on the control node (changes nothing)"))
    assert (lock.held, lock.refused, taken) == (True, False, [True])
    assert [event["event_data"]["play"] for event in seen] == ["Preflight on the control node (changes nothing)"]
    assert lock.ask() == {}  # held: the next run of the same deploy does not ask again


def test_a_lock_held_by_another_or_an_unreachable_host_refuses(tmp_path: Path) -> None:
    taken: list[bool] = []
    for event in (_event("runner_on_failed", TAKE_LOCK_PLAY, task_action="deploy_lock", res={"holder": OTHER}),
                  _event("runner_on_unreachable", TAKE_LOCK_PLAY, res={"msg": "no route"})):
        lock = _lock(tmp_path)
        lock.on_taken = lambda: taken.append(True)
        lock.deferred = True
        lock.ask()
        lock.watch(lambda event: None)(event)
        assert (lock.held, lock.refused, taken) == (False, True, [])  # refused: the deploy never started


def _run_site(project: Path, lock_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    inventory = project / "local.yml"
    inventory.write_text(json.dumps({"all": {"children": {"app": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}))
    variables = project / "lock-vars.json"
    variables.write_text(json.dumps({"rollwright_lock_path": str(lock_path), "deploy_lock_holder": {
        "id": "20261204T000001Z-mine", "user": "bo", "control_host": "here", "pid": 1, "version": "2.0.0",
        "message": ""}, "deploy_lock_force": False, "deploy_lock_stale_holder": ""}))
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
           "ANSIBLE_NOCOLOR": "1", "HOME": str(project)}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
                           "-e", f"@{variables}", *extra, "site.yml"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_site_yml_ends_at_its_first_play_when_another_deploy_holds_the_lock(tmp_path: Path) -> None:
    project = tmp_path / "hello"
    shutil.copytree(REPO / "playbooks/hello", project, symlinks=True)
    lock_path = tmp_path / "locks" / "hello"
    lock_path.mkdir(parents=True)
    (lock_path / "holder.json").write_text(json.dumps(OTHER))
    refused = _run_site(project, lock_path, "-e", "deploy_lock_action=acquire")
    assert refused.returncode != 0, refused.stdout
    assert f"PLAY [{TAKE_LOCK_PLAY}]" in refused.stdout and "deploy lock held by ana@bastion" in refused.stdout
    assert "PLAY [Preflight" not in refused.stdout, refused.stdout  # nothing after the lock play ran
    assert json.loads((lock_path / "holder.json").read_text())["id"] == OTHER["id"]
    plain = _run_site(project, lock_path, "--list-tasks")  # listed for a plain run too; its task asks `when`
    assert plain.returncode == 0 and f"play #1 (app[0]): {TAKE_LOCK_PLAY}" in plain.stdout, plain.stdout


def test_a_ctrl_c_counted_by_the_deploy_ends_its_wait_for_a_held_lock(tmp_path: Path) -> None:
    """The retry after a refused lock play waits inside the deploy's signal handler, which only counts: the
    count must still end the wait at once, as Ctrl-C did before the lock moved into the run."""
    lock, calls = _lock(tmp_path), list[str]()

    def held_by_other(action: str, **_: Any) -> tuple[bool, dict[str, Any]]:
        calls.append(action)
        return False, {"msg": "deploy lock held", "holder": OTHER}  # on another control node: never broken

    lock.call = held_by_other  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        lock.acquire(300, cancel=lambda: True)
    assert calls == ["acquire"] and not lock.held  # asked once, then stopped: no second poll
