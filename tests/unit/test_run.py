"""The runner without hosts: progress from recorded event shapes, deploy options refused before any run,
the release history module, and the load generator against a loopback server."""

from __future__ import annotations

import http.server
import io
import json
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from rich.console import Console
from role_files import load_role_file

from rollwright.cli import main
from rollwright.lab import sample
from rollwright.lab.load import Load
from rollwright.render.playbooks import (
    DECIDE_TASK,
    PHASE_TASK,
    RESCUE_FAIL_TASK,
    ROLLBACK_PLAY,
    ROLLOUT_PLAY,
    SWITCH_TASK,
)
from rollwright.run.output import JsonOutput, LiveOutput, Output, choose_output
from rollwright.run.progress import Progress
from rollwright.run.records import Record, markdown

ROLLOUT = f"{ROLLOUT_PLAY} [1, 2]"


def _event(kind: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": data}


def _phase(host: str, phase: str) -> dict[str, Any]:
    return _event("runner_on_start", host=host, task=PHASE_TASK[phase])


def _switch(host: str, old: str, new: str, task: str = PHASE_TASK["switch"]) -> dict[str, Any]:
    """The rollout's switch task; `task=SWITCH_TASK`: the rollback role's."""
    res = {"changed": True, "switched_from": old, "current": new}
    return _event("runner_on_ok", host=host, task=task, res=res)


def _run(events: list[dict[str, Any]]) -> tuple[Progress, list[str]]:
    lines: list[str] = []
    progress = Progress(lines.append, batches=2)
    for event in events:
        progress(event)
    return progress, lines


def test_progress_knows_which_hosts_a_failed_rollout_left_switched() -> None:
    events = [
        _event("playbook_on_play_start", play=ROLLOUT),
        _phase("app1", "drain"), _phase("app1", "switch"), _switch("app1", "1", "2"), _phase("app1", "restart"),
        _phase("app1", "undrain"),
        _event("playbook_on_play_start", play=ROLLOUT),
        _phase("app2", "switch"), _phase("app3", "switch"), _switch("app2", "1", "2"), _switch("app3", "1", "2"),
        _phase("app2", "restart"), _phase("app3", "restart"),
        _event("runner_on_failed", host="app3", task=PHASE_TASK["restart"],
               res={"msg": "not healthy after 10s: body {\"status\": \"broken\"}"}),
        _phase("app3", "rollback"), _switch("app3", "2", "1", SWITCH_TASK),
        _event("runner_on_failed", host="app3", task=RESCUE_FAIL_TASK, res={"msg": "release 2 failed on app3"}),
        _event("playbook_on_stats"),
    ]
    progress, lines = _run(events)
    assert progress.switched == ["app1", "app2"]
    assert [h.name for h in progress.failed] == ["app3"]
    assert progress.hosts["app3"].failures == [f'restart: {PHASE_TASK["restart"]}: not healthy after '
                                               '10s: body {"status": "broken"}']
    assert progress.failed_plays == [ROLLOUT, ROLLOUT]
    assert "▸ Roll out in batches, batch 2/2" in lines
    assert sum("release 2 failed on app3" in line for line in lines) == 0  # the rescue's re-raise is not repeated


def test_progress_counts_a_rollback_run_and_ignores_unmoved_switches() -> None:
    progress, lines = _run([
        _event("playbook_on_play_start", play=ROLLBACK_PLAY),
        _phase("app1", "rollback"), _switch("app1", "2", "1", SWITCH_TASK),
        _phase("app2", "rollback"), _event("runner_on_ok", host="app2", task=SWITCH_TASK,
                                           res={"changed": True, "switched_from": "1", "current": "1"}),
        _event("playbook_on_stats"),
    ])
    assert progress.hosts["app1"].rolled_back and not progress.hosts["app2"].rolled_back
    assert lines[0] == "▸ Roll back the app hosts, batch 1"
    assert lines[-1].startswith("  ok in")


def test_a_canary_verdict_is_said_and_kept_for_the_record() -> None:
    res = {"changed": False, "passed": False, "window_s": 30, "canary_servers": ["app1"],
           "baseline_servers": ["app2"], "reasons": ["canary error rate 25.00% (5/20) is above the limit 1.00%"],
           "canary": {"requests": 20, "errors": 5, "error_rate": 0.25, "avg_ms": 3.0},
           "baseline": {"requests": 40, "errors": 0, "error_rate": 0.0, "avg_ms": 2.0}}
    guard = _event("runner_on_ok", host="app1", task="Judge the canary", task_action="canary_guard", res=res)
    progress, lines = _run([_event("playbook_on_play_start", play=ROLLOUT), _phase("app1", "undrain"), guard])
    assert progress.canary == [{"step": 1, "passed": False, "window_s": 30, "reasons": res["reasons"],
                                "source": "haproxy",
                                "canary": {"servers": ["app1"], **res["canary"]},
                                "baseline": {"servers": ["app2"], **res["baseline"]}}]
    assert lines[-1] == ("    canary step 1 (app1): errors 25.00% (5/20) vs baseline 0.00% (0/40); 3.0 ms vs 2.0 ms "
                         "in 30 s: FAILED: canary error rate 25.00% (5/20) is above the limit 1.00%")
    record = Record("hello", "lab", "deploy", "2.0.0", "", "canary [1]", "2026-11-22T00:00:00Z")
    record.canary = progress.canary
    assert f"## Canary analysis\n\n- {lines[-1].strip()}\n" in markdown(record)


def test_hosts_an_interrupted_batch_left_drained_are_known() -> None:
    progress, _ = _run([
        _event("playbook_on_play_start", play=ROLLOUT),
        _phase("app1", "drain"), _phase("app1", "switch"), _switch("app1", "1", "2"), _phase("app1", "undrain"),
        _event("playbook_on_play_start", play=ROLLOUT),
        _phase("app2", "drain"), _phase("app3", "drain"), _phase("app2", "switch"), _switch("app2", "1", "2"),
        _phase("app3", "switch"),  # interrupted here: app3's switch may or may not have happened
    ])
    assert progress.switched == ["app1", "app2"]
    assert progress.left_out == ["app3"]
    assert progress.changed == 2


def test_a_host_the_batch_found_settled_goes_through_no_phase() -> None:
    """Ansible queues (and announces) every task of the update block before it evaluates the block's `when`:
    a host already on the release must not show drain, switch... nor count as drained; a skipped phase task
    gives the phase before it back."""
    decide = [_event("runner_on_ok", host=host, task=DECIDE_TASK,
                     res={"ansible_facts": {"rollwright_host_stale": stale}}) for host, stale in (("app1", False),
                                                                                                  ("app2", "True"))]
    progress, lines = _run([
        _event("playbook_on_play_start", play=ROLLOUT), *decide,
        _phase("app1", "drain"), _event("runner_on_skipped", host="app1", task=PHASE_TASK["drain"]),
        _phase("app2", "drain"), _phase("app2", "switch"),
        _event("runner_on_skipped", host="app2", task=PHASE_TASK["switch"]),
    ])
    assert progress.hosts["app1"].phase == "" and not any("app1" in line for line in lines)
    assert progress.hosts["app2"].phase == "drain" and progress.left_out == ["app2"]


def test_unreachable_host_is_a_failure_with_its_reason() -> None:
    progress, _ = _run([_event("playbook_on_play_start", play="Stage"),
                        _event("runner_on_unreachable", host="app2", task="Create", res={"msg": "ssh: timed out"})])
    assert progress.failed[0].unreachable == "ssh: timed out"


def test_an_unreachable_load_balancer_is_blamed_not_the_app_host_it_worked_for() -> None:
    """The event shape ansible-runner gave when lb1 was powered off during app2's undrain."""
    lost = 'Task failed: Data could not be sent to remote host "10.0.0.10": Connection timed out'
    res = {"results": [{"unreachable": True, "msg": lost, "item": "lb1", "ansible_loop_var": "item"}],
           "unreachable": True, "msg": "All items completed", "changed": False}
    progress, lines = _run([
        _event("playbook_on_play_start", play=ROLLOUT),
        _phase("app2", "drain"), _phase("app2", "switch"), _phase("app2", "undrain"),
        _event("runner_on_unreachable", host="app2", task=PHASE_TASK["undrain"], task_action="haproxy_server", res=res),
    ])
    assert [h.name for h in progress.failed] == ["lb1"]
    assert progress.failed[0].failures == [
        f"unreachable (the load balancer) at app2's undrain: {PHASE_TASK['undrain']}: {lost}"]
    assert lines[-1].split()[:4] == ["lb1", "✗", "unreachable", "(the"]
    assert "app2's undrain" in lines[-1] and "All items completed" not in lines[-1]


def test_a_failed_command_is_reported_with_what_it_said() -> None:
    res = {"msg": "non-zero return code", "rc": 2, "stdout": "", "stderr": "warming up\nsh: cannot create x: denied\n"}
    progress, lines = _run([_event("playbook_on_play_start", play="Migrate"),
                            _event("runner_on_failed", host="app1", task="Apply", res=res)])
    assert progress.failed[0].failures == ["Apply: exit 2: sh: cannot create x: denied\nwarming up\n"
                                           "sh: cannot create x: denied"]
    assert lines[-1].splitlines()[0].endswith("Apply: exit 2: sh: cannot create x: denied")


def test_a_failed_command_keeps_its_last_twenty_lines_with_the_secrets_masked() -> None:
    """`manage.py migrate` failing: its last line is a caret; the error is lines above it, in the tail."""
    stdout = "".join(f"  Applying app.{n:04d}_step... OK\n" for n in range(1, 19))
    stderr = ("Traceback (most recent call last):\n  File manage.py, line 22\n"
              "django.db.utils.ProgrammingError: relation \"no_such_table\" does not exist\n"
              "DETAIL: connecting as app with password hunter2-secret\nLINE 1: SELECT * FROM no_such_table\n"
              "                      ^\n")
    res = {"msg": "non-zero return code", "rc": 1, "stdout": stdout, "stderr": stderr}
    lines: list[str] = []
    progress = Progress(lines.append, secrets=("hunter2-secret", ""))
    progress(_event("playbook_on_play_start", play="Migrate"))
    progress(_event("runner_on_failed", host="app1", task="Apply", res=res))
    said, *tail = progress.failed[0].failures[0].splitlines()
    assert said == "Apply: exit 1: ^"
    assert len(tail) == 20 and tail[0] == "  Applying app.0005_step... OK" and tail[-1].strip() == "^"
    assert 'django.db.utils.ProgrammingError: relation "no_such_table" does not exist' in tail
    assert "DETAIL: connecting as app with password <secret>" in tail
    assert "hunter2-secret" not in "\n".join(lines) and 'relation "no_such_table"' in lines[-1]


def _spec(tmp_path: Path, production: bool) -> Path:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    app:\n      hosts:\n        app1: {}\n        app2: {}\n"
                         "    lb:\n      hosts:\n        lb1: {}\n")
    artifact, sha = sample.build("1.0.0", tmp_path / "dist")
    return sample.write_spec(tmp_path, inventory, artifact, sha, "1.0.0", production=production)


def test_no_health_check_is_refused_on_production(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, production=True)
    assert main(["deploy", "-f", str(spec), "-t", "lab", "--no-health-check"]) == 2
    assert "refused on target 'lab': it is marked production" in capsys.readouterr().err
    assert not (tmp_path / ".rollwright").exists()  # nothing generated, nothing run


def test_unknown_group_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "-f", str(_spec(tmp_path, False)), "-t", "lab", "--skip-group", "nope"]) == 2
    assert "no command group 'nope'" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "-f", str(_spec(tmp_path, False)), "-t", "lab", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nothing is touched" in out and "Batch 2: drain in app on lb" in out
    assert not (tmp_path / ".rollwright").exists()


def _switch_module() -> ModuleType:
    return load_role_file("release/library/release_switch.py")


def _run_module(root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                **args: Any) -> dict[str, Any]:
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes

    payload = {"ANSIBLE_MODULE_ARGS": {"root": str(root), **args}}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps(payload)))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        _switch_module().main()
    return json.loads(capsys.readouterr().out)


def test_release_history_is_a_stack_so_rollback_never_returns_to_an_abandoned_release(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for version in ("1", "2", "3"):
        (tmp_path / "releases" / version).mkdir(parents=True)
        (tmp_path / "releases" / version / "REVISION").write_text(version)
    for version in ("1", "2", "3"):
        assert _run_module(tmp_path, monkeypatch, capsys, version=version)["changed"] is True
    again = _run_module(tmp_path, monkeypatch, capsys, version="3")
    assert again["changed"] is False
    back = _run_module(tmp_path, monkeypatch, capsys, action="pop")  # 3 was bad
    assert (back["current"], back["previous"], back["switched_from"]) == ("2", "1", "3")
    back = _run_module(tmp_path, monkeypatch, capsys, action="pop")  # and 2 too: go to 1, never to 3
    assert (back["current"], back["previous"]) == ("1", "")
    assert (tmp_path / "current").resolve() == tmp_path / "releases" / "1"
    assert not (tmp_path / "previous").exists()
    refused = _run_module(tmp_path, monkeypatch, capsys, action="pop")
    assert refused["failed"] and "no release before 1" in refused["msg"]
    missing = _run_module(tmp_path, monkeypatch, capsys, version="9")
    assert missing["failed"] and "not a staged release" in missing["msg"]
    assert (tmp_path / "history").read_text() == "1\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/" else 503)
        self.send_header("X-App-Version", "7")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_load_is_bounded_paced_and_counts_failures() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        with Load("127.0.0.1", port, rate=400, max_requests=60) as load:
            threading.Event().wait(1.0)
        assert (load.result.sent, load.result.ok, load.result.failed) == (60, 60, 0)
        assert load.result.versions == {"7": 60}
        with Load("127.0.0.1", port, "/down", rate=50, max_requests=1000, max_seconds=0.5) as load:
            threading.Event().wait(1.0)
        assert 20 <= load.result.sent <= 27 and load.result.failed == load.result.sent
    finally:
        server.shutdown()
        server.server_close()


def test_restore_on_production_needs_yes_and_a_bad_name_is_refused(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    db:\n      hosts:\n        db1: {}\n")
    (tmp_path / "rollwright.yml").write_text(
        "app: shop\ndatabase: {name: shop, backup: {dir: /var/backups/shop}}\n"
        f"targets: {{production: {{inventory: {inventory}, production: true}}}}\n")
    spec = str(tmp_path / "rollwright.yml")
    assert main(["restore", "shop-20261121T000000Z-1.0.dump", "-f", spec, "-t", "production"]) == 2
    assert "marked production: restoring there needs --yes" in capsys.readouterr().err
    assert main(["restore", "../../etc/passwd", "-f", spec, "-t", "production", "--yes"]) == 2
    assert "is not a backup file name" in capsys.readouterr().err
    assert not (tmp_path / ".rollwright").exists()


def _rollout_events() -> list[dict[str, Any]]:
    return [_event("playbook_on_play_start", play=ROLLOUT), _phase("app1", "drain"), _phase("app1", "switch"),
            _event("runner_on_failed", host="app1", task="Fail with the last answer when unhealthy",
                   res={"msg": "not healthy after 10s"}),
            _event("playbook_on_stats")]


def test_json_output_is_one_event_per_line_with_hosts_batches_and_phases() -> None:
    stream = io.StringIO()
    progress = Progress(JsonOutput(stream), batches=2)
    for event in _rollout_events():
        progress(event)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["play", "phase", "phase", "failure", "play_end"]
    assert events[0]["batch"] == 1 and events[0]["batches"] == 2
    assert [(e["host"], e["phase"]) for e in events[1:3]] == [("app1", "drain"), ("app1", "switch")]
    assert events[3]["message"] == "not healthy after 10s" and events[4]["status"] == "failed"


def test_plain_output_when_not_a_terminal_or_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert type(choose_output(as_json=False, no_color=False, stream=io.StringIO())) is Output
    assert type(choose_output(as_json=False, no_color=True, stream=Terminal())) is Output
    assert type(choose_output(as_json=False, no_color=False, stream=Terminal())) is LiveOutput
    assert type(choose_output(as_json=True, no_color=False, stream=Terminal())) is JsonOutput
    monkeypatch.setenv("NO_COLOR", "1")
    assert type(choose_output(as_json=False, no_color=False, stream=Terminal())) is Output
    stream = io.StringIO()
    progress = Progress(Output(stream), batches=2)
    for event in _rollout_events():
        progress(event)
    assert "\x1b[" not in stream.getvalue()
    assert stream.getvalue().splitlines()[:2] == [f"▸ {ROLLOUT_PLAY}, batch 1/2", "    app1         drain"]


def test_live_view_shows_each_host_with_its_batch_phase_and_state() -> None:
    stream = io.StringIO()
    with LiveOutput(stream, force_terminal=True) as out:
        progress = Progress(out, batches=2)
        for event in _rollout_events()[:-1]:
            progress(event)
        view = io.StringIO()
        Console(file=view, width=100).print(out._view())  # type: ignore[attr-defined]
    assert "\x1b[" in stream.getvalue() and "✗ failed at switch" in stream.getvalue()
    row = next(line for line in view.getvalue().splitlines() if line.startswith("app1"))
    assert row.split() == ["app1", "1", "switch", "failed"]


def test_a_failed_command_in_a_loop_is_reported_with_what_it_said() -> None:
    """A load balancer command of kind command run on each lb host (a loop): its item's words, not the loop's."""
    item = {"failed": True, "msg": "non-zero return code", "rc": 3, "item": "lb1", "stdout": "asking the API",
            "stderr": "the load balancer API refused: 403"}
    res = {"results": [item], "failed": True, "msg": "One or more items failed", "changed": True}
    progress, lines = _run([_event("playbook_on_play_start", play=ROLLOUT), _phase("app1", "drain"),
                            _event("runner_on_failed", host="app1", task=PHASE_TASK["drain"], res=res)])
    assert progress.failed[0].failures == [f"drain: {PHASE_TASK['drain']}: exit 3: the load balancer API refused: 403"
                                           "\nasking the API\nthe load balancer API refused: 403"]
    assert "One or more items failed" not in lines[-1]
