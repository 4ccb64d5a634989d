"""The commands an operator reaches for between deploys: `app`, `audit`, `lock acquire`, without hosts.

The audit log's lines parsed and merged across hosts; bad arguments refused at once (exit 2, nothing
contacted); a maintenance hold that no deploy breaks as stale; app.yml's shape.
"""

from __future__ import annotations

import os
import re
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rollwright.cli import main
from rollwright.errors import BadInput
from rollwright.inventory import inventory_groups
from rollwright.render.playbooks import APP_DECIDE_TASK, APP_PLAY, PHASE_TASK, app_plays
from rollwright.run import lock as lock_module
from rollwright.run.audit import host_lines, merge, parse_time
from rollwright.run.lock import DeployLock, describe, stale
from rollwright.run.progress import Progress
from rollwright.spec.loader import load_spec

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello" / "rollwright.yml"
DEPLOY = "2026-12-04T10:00:00Z 20261204T095800Z-1a2b deploy hello 2.0.0 succeeded by ana@bastion"
RESTART = "2026-12-04T11:00:00Z 20261204T105900Z-3c4d restart hello 2.0.0 succeeded by bo@bastion"


def test_a_line_gives_its_fields_and_an_exec_line_its_detail() -> None:
    (line,), _ = host_lines("app1", DEPLOY)
    assert line.as_dict() == {"host": "app1", "time": "2026-12-04T10:00:00Z", "id": "20261204T095800Z-1a2b",
                              "action": "deploy", "app": "hello", "version": "2.0.0", "status": "succeeded",
                              "user": "ana@bastion", "line": DEPLOY}
    exec_line = ("2026-12-04T10:00:00Z e1 exec hello 2.0.0 succeeded by bo@bastion command=uptime exit=0 "
                 "read-only-safe user=x")
    (other,), _ = host_lines("app1", exec_line)
    assert other.as_dict() == {"host": "app1", "time": "2026-12-04T10:00:00Z", "id": "e1", "action": "exec",
                               "app": "hello", "version": "2.0.0", "status": "succeeded", "user": "bo@bastion",
                               "command": "uptime", "exit": "0", "read-only-safe": True, "line": exec_line}
    (between,), _ = host_lines("app1", "2026-12-04T10:00:00Z e2 note hello 2.0.0 ok see ticket 9 by bo@bastion")
    assert (between.fields()["detail"], between.fields()["user"]) == ("see ticket 9", "bo@bastion")
    (odd,), _ = host_lines("app1", "2026-12-04T10:00:00Z something else entirely")
    assert odd.as_dict() == {"host": "app1", "time": "2026-12-04T10:00:00Z",
                             "line": "2026-12-04T10:00:00Z something else entirely"}


def test_lines_without_a_time_are_counted_not_merged() -> None:
    lines, bad = host_lines("lb1", f"{DEPLOY}\n\ngarbage line\n  \n2026-13-45T99:00:00Z x\n{RESTART}\n")
    assert [line.text for line in lines] == [DEPLOY, RESTART]
    assert bad == 2  # the empty lines are not counted
    merged, unreadable = merge({"lb1": "garbage\n" + DEPLOY, "app1": RESTART}, 50)
    assert [line.host for line in merged] == ["lb1", "app1"] and unreadable == {"lb1": 1}


def test_merge_orders_by_time_then_host_then_each_logs_own_order() -> None:
    same = "2026-12-04T10:00:00Z"
    logs = {"app2": f"{same} b1 restart hello 2 succeeded by x\n{same} b2 stop hello 2 succeeded by x",
            "app1": f"{RESTART}\n{same} a1 deploy hello 2 succeeded by x",
            "lb1": "2026-12-04T09:59:59+00:00 l1 deploy hello 2 succeeded by x"}
    merged, _ = merge(logs, 50)
    assert [(line.host, line.text.split()[1]) for line in merged] == [
        ("lb1", "l1"), ("app1", "a1"), ("app2", "b1"), ("app2", "b2"), ("app1", "20261204T105900Z-3c4d")]


def test_merge_keeps_the_newest_n_oldest_first() -> None:
    logs = {f"app{h}": "\n".join(f"2026-12-04T10:{m:02d}:0{h}Z id{h}{m} deploy hello 1 succeeded by x"
                                 for m in range(10)) for h in (1, 2)}
    newest, _ = merge(logs, 3)
    assert [line.text.split()[1] for line in newest] == ["id28", "id19", "id29"]
    assert len(merge(logs, 100)[0]) == 20


def test_times_are_read_as_utc() -> None:
    assert parse_time("2026-12-04T12:00:00+02:00") == datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert parse_time("2026-12-04T10:00:00") == parse_time("2026-12-04T10:00:00Z")
    assert parse_time("yesterday") is None


@pytest.mark.parametrize(("argv", "said"), [
    (["audit", "-n", "0"], "-n must be from 1"),
    (["audit", "-n", "many"], "expected a number of lines"),
    (["audit", "-f", str(HELLO), "-t", "production", "--host", "nosuch"],
     "unknown host 'nosuch': the hosts of target production are app1, app2, app3, app4, lb1, lb2, db1"),
    (["app", "restart", "-f", str(HELLO), "-t", "production", "--host", "app2,lb1"],
     "unknown host 'lb1': the app hosts are app1, app2, app3, app4"),
    (["app", "stop", "-f", str(HELLO), "-t", "production", "--host", "app2"], "there is no terminal to ask; add --yes"),
    (["app", "restart", "-f", str(HELLO), "-t", "production", "--lock-wait", "-1"], "--lock-wait must be 0 or more"),
    (["app", "restrat"], "unknown action 'restrat'; did you mean 'restart'"),
    (["lock", "acquire", "-f", str(HELLO), "-t", "production"], "the following arguments are required: -m/--message"),
    (["lock", "acquire", "-f", str(HELLO), "-t", "production", "-m", "  "], "--message must say why"),
    (["lock", "acquire", "-f", str(HELLO), "-t", "production", "-m", "x", "--wait", "-5"], "--wait must be 0 or more"),
])
def test_bad_arguments_exit_2_within_a_second_touching_nothing(argv: list[str], said: str,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    inventory_groups(REPO / "inventories" / "production")  # ansible's import is paid once, not by the command
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115 - no terminal, as in CI or a pipe
    monkeypatch.setattr("rollwright.run.engine.run_playbook", _never)
    started = time.monotonic()
    try:
        code = main(argv)
    except SystemExit as done:  # argparse's own refusals
        code = int(done.code or 0)
    assert code == 2 and time.monotonic() - started < 1.0
    assert said in capsys.readouterr().err


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a refused command contacted the hosts")


def test_a_spec_without_a_release_has_no_app_to_act_on(tmp_path: Path) -> None:
    from rollwright.run.app import plan_app

    bare = tmp_path / "rollwright.yml"
    bare.write_text("app: bare\n")
    with pytest.raises(BadInput, match="deploys no release"):
        plan_app(load_spec(bare), None, "restart", [])


HOLD = {"id": "20261204T100000Z-hold", "user": "ana@bastion", "control_host": socket.gethostname(), "pid": 999_999_999,
        "version": "", "message": "database upgrade", "hold": True, "since": int(time.time()) - 60}


def test_a_maintenance_hold_is_never_stale_though_its_process_is_gone() -> None:
    assert stale({**HOLD, "hold": False}) and not stale(HOLD)
    assert re.fullmatch(r"ana@bastion \(maintenance hold 20261204T100000Z-hold, held for \d+s, "
                        r"message: database upgrade\)", describe(HOLD))


def test_a_deploy_refuses_a_hold_naming_its_message_and_never_breaks_it(tmp_path: Path) -> None:
    lock = DeployLock(tmp_path, tmp_path / "runs", "20261204T100500Z-dep", "2.0.0", "", lambda line: None)
    calls: list[dict[str, Any]] = []

    def call(action: str, *, force: bool = False, stale: str = "") -> tuple[bool, dict[str, Any]]:
        calls.append({"action": action, "force": force, "stale": stale})
        return False, {"msg": "held", "holder": HOLD}

    lock.call = call  # type: ignore[method-assign]
    with pytest.raises(BadInput) as refused:
        lock.acquire()
    assert "(maintenance hold 20261204T100000Z-hold, held for " in str(refused.value)
    assert str(refused.value).endswith("message: database upgrade); it is held for maintenance until "
                                       "`rollwright lock release`")
    assert calls == [{"action": "acquire", "force": False, "stale": ""}]


def test_a_hold_carries_hold_in_its_holder(tmp_path: Path) -> None:
    held = DeployLock(tmp_path, tmp_path, "h", "", "why", lambda line: None, hold=True).holder
    assert held["hold"] is True and held["message"] == "why"
    assert "hold" not in DeployLock(tmp_path, tmp_path, "d", "1", "", lambda line: None).holder


@pytest.mark.parametrize(("user", "force", "released"), [("ana@bastion", False, False), ("ana@bastion", True, True),
                                                          (None, False, True)])
def test_lock_release_ends_ones_own_hold_and_anothers_only_with_force(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user: str | None,
        force: bool, released: bool) -> None:
    from rollwright.run import workspace
    from rollwright.run.records import operator
    from rollwright.run.status import Workspace

    holder = {**HOLD, "user": user or operator()}
    calls: list[tuple[str, str, bool]] = []

    def call(self: DeployLock, action: str, *, force: bool = False, stale: str = "") -> tuple[bool, dict[str, Any]]:
        calls.append((action, self.holder["id"], force))
        return True, {"holder": holder} if action == "status" else {}

    monkeypatch.setattr(workspace, "prepare_workspace", lambda *a, **k: Workspace(tmp_path, tmp_path / "project"))
    monkeypatch.setattr(lock_module.DeployLock, "call", call)
    code = main(["lock", "release", "-f", str(HELLO), "-t", "staging", *(["--force"] if force else [])])
    if released:
        assert code == 0 and calls[1:] == [("release", HOLD["id"], False)]  # as its holder: removed whole
        assert "ending the maintenance hold of" in capsys.readouterr().out
    else:
        assert code == 2 and calls[1:] == []
        assert "held for maintenance by ana@bastion" in capsys.readouterr().err


def test_app_yml_acts_batch_by_batch_under_the_lock() -> None:
    spec = load_spec(HELLO).spec
    take_lock, play, *status = app_plays(spec)
    assert take_lock["tasks"][0]["when"] == "deploy_lock_action is defined"
    assert play["name"].startswith(APP_PLAY) and play["serial"] == spec.rollout.steps
    assert play["max_fail_percentage"] == 0 and status[-1]["name"] == "Report what every app host runs"
    block = play["tasks"][-1]["block"]
    assert [task["name"] for task in block] == [
        "Drain this host in the load balancer", "Stop the service",
        "Start or restart the service and wait until it is healthy", "Put this host back in the load balancer"]
    # stop leaves its hosts drained; the runner's --tags ACTION runs only that action's tasks
    assert [task["tags"] for task in block] == [["start", "stop", "restart"], ["stop"], ["start", "restart"],
                                                ["start", "restart"]]
    assert block[-1]["when"] == "rollwright_app_action in ['start', 'restart']"


def test_the_app_plays_batches_are_counted_and_a_host_left_alone_shows_no_phase() -> None:
    said: list[str] = []
    progress = Progress(said.append, batches=3)
    play = f"{APP_PLAY} [1, '50%', '100%']"
    for host, acts in (("app1", True), ("app2", False)):  # `start`: app2 already serves, healthy and in service
        progress({"event": "playbook_on_play_start", "event_data": {"play": play}})
        progress({"event": "runner_on_ok", "event_data": {"host": host, "task": APP_DECIDE_TASK, "res": {
            "ansible_facts": {"rollwright_host_stale": acts}}}})
        progress({"event": "runner_on_start", "event_data": {"host": host, "task": PHASE_TASK["drain"]}})
    assert said == [f"▸ {APP_PLAY}, batch 1/3", "    app1         drain", "  ok in 0.0s",
                    f"▸ {APP_PLAY}, batch 2/3"]


def test_audit_reads_every_host_in_one_run_and_names_an_unreachable_one(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from rollwright.render.playbooks import AUDIT_TAIL_TASK
    from rollwright.run import audit
    from rollwright.run.engine import PlaybookRun
    from rollwright.run.status import Workspace

    runs: list[dict[str, Any]] = []

    def run_playbook(project: Path, playbook: str, run_root: Path, on_event: Any, **options: Any) -> PlaybookRun:
        runs.append({"playbook": playbook, **options})
        for host, text in (("app1", RESTART), ("app2", DEPLOY)):
            on_event({"event": "runner_on_ok", "event_data": {"host": host, "task": AUDIT_TAIL_TASK,
                                                               "res": {"stdout": text, "rc": 0}}})
        gone = {"host": "lb1", "task": "Find the audit log", "res": {"msg": "ssh: connect to host lb1:\n refused"}}
        on_event({"event": "runner_on_unreachable", "event_data": gone})
        return PlaybookRun(playbook, "failed", 4, 1.0, tmp_path)

    monkeypatch.setattr(audit, "run_playbook", run_playbook)
    found = audit.read_audit(Workspace(tmp_path, tmp_path / "project"), 10)
    assert runs == [{"playbook": "audit.yml", "limit": None, "extravars": {"rollwright_audit_lines": 10}}]
    assert [line.host for line in found.lines] == ["app2", "app1"]
    assert found.failed == {"lb1": "unreachable: ssh: connect to host lb1: refused"}


def test_a_run_whose_lock_play_was_refused_waits_for_the_lock_then_runs_again(tmp_path: Path) -> None:
    lock = DeployLock(tmp_path, tmp_path / "runs", "20261204T100500Z-app", "", "", lambda line: None)
    said, waited, started = list[str](), list[float](), list[int]()

    def start() -> Any:
        started.append(len(started))
        lock.refused = len(started) == 1  # the first run's lock play found the lock held
        return f"run {len(started)}"

    lock.acquire = lambda wait_s=0.0, cancel=lambda: False: waited.append(wait_s)  # type: ignore[method-assign]
    assert lock.run_taking_it(start, 30.0, lambda: False, said.append, lambda: "starting again") == "run 2"
    assert (waited, said) == ([30.0], [lock_module.LOCK_NOT_FREE, "starting again"])
