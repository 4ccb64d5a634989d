"""What status.yml's report means (the release a process runs, the version a health answer names, the load
balancer's word) and what a recovery repairs, from report shapes the lab's hosts gave."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rollwright.run.records import History, Record
from rollwright.run.recover import choose_version, last_good_version, orphans, plan_repair, wait_for_orphans
from rollwright.run.status import HostState, Workspace, one_healthy_version, print_states, state_of


def _report(current: str, running: str, lb: str = "ready", status: str = "UP", **extra: Any) -> dict[str, Any]:
    return {"current": current, "previous": "1.0.0", "root": "/srv/hello", "active": "active",
            "process_dir": f"/srv/hello/releases/{running}" if running else "", "health_status": 200, "healthy": True,
            "health_body": f'{{"status": "ok", "version": "{running}"}}',
            "lb": [{"item": "lb1", "previous": lb, "status": status, "changed": False}], **extra}


def test_a_host_a_killed_deploy_left_half_done_is_told_as_it_is() -> None:
    """current switched to 2.0.0, the old process still runs, drained: not what `current` says."""
    state = state_of("app2", _report("2.0.0", "1.0.0", lb="maint", status="MAINT"))
    assert (state.current, state.running, state.answers, state.lb) == ("2.0.0", "1.0.0", "1.0.0", {"lb1": "MAINT"})
    assert state.serves == "1.0.0" and state.half_done and not state.settled
    assert state.problems() == ["current is 2.0.0 but the process runs 1.0.0", "MAINT in lb1"]
    lines: list[str] = []
    print_states(lines.append, [state])
    assert lines[1].split()[:2] == ["app2", "1.0.0"]
    assert "MAINT in lb1" in lines[1] and "current is 2.0.0 but the process runs 1.0.0" in lines[1]
    assert one_healthy_version([state, state_of("app1", _report("1.0.0", "1.0.0"))]) is None


def test_a_settled_host_and_what_the_load_balancer_cannot_say() -> None:
    settled = state_of("app1", _report("2.0.0", "2.0.0"))
    assert settled.settled and not settled.half_done and settled.problems() == []
    working_dir_elsewhere = state_of("app1", {**_report("2.0.0", ""), "process_dir": "/opt/app", "health_body": "ok"})
    assert working_dir_elsewhere.running == "" and working_dir_elsewhere.settled  # unknown is not a mismatch
    lost = {"item": "lb1", "unreachable": True, "msg": "Data could not be sent"}
    unreachable = state_of("app1", {**_report("2.0.0", "2.0.0"), "lb": [lost]})
    assert unreachable.lb == {"lb1": "unreachable"} and not unreachable.settled and not unreachable.half_done
    named = state_of("app1", {**_report("2.0.0", "2.0.0"), "health_body": "hello 2.0.0 up"})
    assert named.answers == "2.0.0"


def _states(*rows: tuple[str, str, str]) -> list[HostState]:
    return [state_of(name, _report(current, running, lb=lb, status="MAINT" if lb == "maint" else "UP"))
            for name, (current, running, lb) in zip(["app1", "app2", "app3"], rows, strict=True)]


def test_a_deploy_repairs_only_half_done_hosts_back_to_the_last_verified_version() -> None:
    states = _states(("2.0.0", "2.0.0", "ready"), ("2.0.0", "1.0.0", "maint"), ("1.0.0", "1.0.0", "ready"))
    repair = plan_repair(states, "1.0.0", whole_fleet=False)
    assert (repair.version, repair.restart, repair.undrain) == ("1.0.0", ["app2"], [])
    whole = plan_repair(states, "1.0.0", whole_fleet=True)
    assert (whole.version, whole.restart, whole.undrain) == ("1.0.0", ["app1", "app2"], [])
    assert whole.found["app1"] == ["serves 2.0.0, not 1.0.0"]


def test_a_host_only_left_out_of_the_load_balancer_is_put_back_without_a_restart() -> None:
    states = _states(("1.0.0", "1.0.0", "ready"), ("1.0.0", "1.0.0", "maint"), ("1.0.0", "1.0.0", "ready"))
    repair = plan_repair(states, "1.0.0", whole_fleet=True)
    assert (repair.restart, repair.undrain, repair.found) == ([], ["app2"], {"app2": ["MAINT in lb1"]})


def test_nothing_to_repair_on_a_settled_fleet_or_one_never_deployed() -> None:
    settled = _states(*[("2.0.0", "2.0.0", "ready")] * 3)
    assert plan_repair(settled, "1.0.0", whole_fleet=True).hosts == []
    never = [HostState(name, "", "", False, -1, active=False) for name in ("app1", "app2")]
    assert plan_repair(never, "", whole_fleet=True).hosts == []


def test_the_version_to_return_to(tmp_path: Path) -> None:
    states = _states(("2.0.0", "2.0.0", "ready"), ("2.0.0", "1.0.0", "maint"), ("2.0.0", "2.0.0", "ready"))
    assert choose_version(states, "1.0.0") == "1.0.0"  # the last verified one, still on the hosts
    assert choose_version(states, "0.9.0") == "2.0.0"  # gone from the hosts: what most settled hosts serve
    assert choose_version(states, "") == "2.0.0"
    fresh = _states(("2.0.0", "2.0.0", "ready"), ("3.0.0", "3.0.0", "maint"), ("2.0.0", "2.0.0", "ready"))
    fresh[1] = replace(fresh[1], previous="")  # a host that never staged the last verified one (added later)
    assert choose_version(fresh, "1.0.0", {"app2"}) == "3.0.0"  # what it can serve: it is only put back
    repair = plan_repair(fresh, "1.0.0", whole_fleet=False)
    assert (repair.version, repair.restart, repair.undrain) == ("3.0.0", [], ["app2"])
    history = History(tmp_path)
    for version, status, verified in (("1.0.0", "succeeded", True), ("2.0.0", "failed", False)):
        record = Record("hello", "lab", "deploy", version, "", "rolling", f"2026-01-01T00:0{version[0]}:00Z")
        record.status, record.verified = status, verified
        history.add(record, tmp_path / f"{version}.json")
    assert last_good_version(history, "lab") == "1.0.0"
    assert last_good_version(history, "staging") == ""


def test_a_killed_runners_playbook_still_working_on_the_target_is_found_and_waited_for(tmp_path: Path) -> None:
    """A real process, started as ansible-runner starts ansible-playbook: from the project folder."""
    project = tmp_path / "lab" / "projects" / "0123abcd"
    project.mkdir(parents=True)
    playbook = tmp_path / "ansible-playbook"
    playbook.write_text("import time\ntime.sleep(float(__import__('sys').argv[1]))\n")
    workspace = Workspace(tmp_path / "lab", project)
    elsewhere = subprocess.Popen([sys.executable, str(playbook), "30"], cwd=tmp_path)
    orphan = subprocess.Popen([sys.executable, str(playbook), "2"], cwd=project)
    try:
        assert orphans(workspace) == [orphan.pid]
        said: list[str] = []
        assert wait_for_orphans(workspace, said.append, wait_s=60) == []
        assert said == [f"waiting up to 60s for the playbook processes a killed run left behind (pid {orphan.pid})"]
        assert orphan.poll() == 0
    finally:
        for proc in (elsewhere, orphan):
            proc.kill()
            proc.wait()
