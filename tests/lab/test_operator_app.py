"""The commands an operator reaches for between deploys, on real hosts: `app restart|stop|start`, `audit` (with
an `exec` line among the others) and `lock acquire`.

One fleet of the sample app is deployed once for the module; the tests run in file order and build on each
other like an afternoon of operations on it. Every load goes through the lab's HAProxy, and a single failed
request fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fleets import APP_HOSTS, Fleet

from rollwright.lab.fleet import Lab

AUDITED = {"lb1", *APP_HOSTS}  # the hosts a run of this spec concerns (no database): each keeps an audit log
MIN_REQUESTS = 300
HOLD_MESSAGE = "maintenance: kernel update, ticket 881"


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    fleet = Fleet.beside(lab, tmp_path_factory.mktemp("operator"))
    first = fleet.deploy(fleet.spec("1.0.0"))
    assert first.returncode == 0, first.stdout + first.stderr
    return fleet


@pytest.fixture(scope="module")
def spec(fleet: Fleet) -> Path:
    return fleet.spec("1.0.0")


def _app(fleet: Fleet, spec: Path, action: str, *extra: str) -> tuple[str, int, int]:
    """`rollwright app ACTION` under load: its output, exit code and failed requests."""
    proc, load = fleet.under_load("app", action, "-f", str(spec), "-t", "lab", "--no-color", *extra)
    return proc.stdout + proc.stderr, proc.returncode, load.failed


def _active(fleet: Fleet, host: str) -> str:
    return fleet.lab.run(host, "systemctl is-active hello || true").stdout.strip()


def test_restart_under_load_renews_every_process_without_failing_a_request(fleet: Fleet, spec: Path) -> None:
    before = fleet.main_pids()
    proc, load = fleet.under_load("app", "restart", "-f", str(spec), "-t", "lab", "--no-color")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert load.failed == 0 and load.sent >= MIN_REQUESTS, load.summary()
    after = fleet.main_pids()
    assert all(after[host] not in ("", "0", before[host]) for host in APP_HOSTS), (before, after)
    assert fleet.backend_states() == dict.fromkeys(APP_HOSTS, "UP")
    for batch in ("batch 1/3", "batch 2/3", "batch 3/3"):
        assert batch in out
    assert "restarted: app1, app2, app3 healthy and in service" in out


def test_stop_leaves_a_host_drained_and_start_brings_it_back(fleet: Fleet, spec: Path) -> None:
    out, code, failed = _app(fleet, spec, "stop", "--host", "app2")
    assert (code, failed) == (0, 0), out
    assert "stopped and left out of the load balancer: app2" in out
    assert _active(fleet, "app2") == "inactive"
    assert fleet.backend_states() == {"app1": "UP", "app2": "MAINT", "app3": "UP"}

    pids = fleet.main_pids()
    out, code, failed = _app(fleet, spec, "start", "--host", "app2")
    assert (code, failed) == (0, 0), out
    assert "started: app2 healthy and in service" in out
    assert _active(fleet, "app2") == "active"
    assert fleet.backend_states() == dict.fromkeys(APP_HOSTS, "UP")
    assert {h: p for h, p in fleet.main_pids().items() if h != "app2"} == {h: pids[h] for h in ("app1", "app3")}


def test_a_restart_stops_at_a_broken_host_leaving_the_others_in_service(fleet: Fleet, spec: Path) -> None:
    """app2's release breaks its health at start (the sample app's BROKEN marker): batch 2 fails there, app2 stays
    drained, app3 (batch 3) is not touched, and `app start` brings app2 back once it is fixed."""
    fleet.lab.run("app2", "touch /srv/hello/current/BROKEN")
    try:
        before = fleet.main_pids()
        out, code, failed = _app(fleet, spec, "restart")
        assert code == 3 and failed == 0, out
        assert "✗ app restart on lab failed at app2 (left out of the load balancer)" in out
        assert "not touched (later batches): app3" in out
        after = fleet.main_pids()
        assert after["app1"] != before["app1"] and after["app3"] == before["app3"]
        assert fleet.backend_states() == {"app1": "UP", "app2": "MAINT", "app3": "UP"}
    finally:
        fleet.lab.run("app2", "rm -f /srv/hello/current/BROKEN")
    out, code, failed = _app(fleet, spec, "start")  # app2 runs but is sick: start renews it; the others are left
    assert (code, failed) == (0, 0), out
    assert fleet.backend_states() == dict.fromkeys(APP_HOSTS, "UP")
    assert {h: p for h, p in fleet.main_pids().items() if h != "app2"} == {h: after[h] for h in ("app1", "app3")}


def test_audit_merges_every_hosts_lines_by_time_newest_last(fleet: Fleet, spec: Path) -> None:
    ran = fleet.rollwright("exec", "-f", str(spec), "-t", "lab", "--host", "app1", "--", "true")  # app1's own line
    assert ran.returncode == 0, ran.stdout + ran.stderr
    proc = fleet.rollwright("audit", "-f", str(spec), "-t", "lab", "--json", "-n", "200")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    every_row = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [row["time"] for row in every_row] == sorted(row["time"] for row in every_row)
    # the session lab's hosts also keep the lines of other modules' runs: this module's are those of its
    # records (history beside its spec) and the exec above, the newest line of all
    ours = {row["id"] for row in map(json.loads, fleet.rollwright("history", "-f", str(spec), "--json").stdout
                                     .splitlines())} | {every_row[-1]["id"]}
    rows = [row for row in every_row if row["id"] in ours]
    assert {row["host"] for row in rows} == AUDITED
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
    for host in AUDITED:
        actions = [(row["action"], row["status"]) for row in rows if row["host"] == host]
        assert actions == [("deploy", "succeeded"), ("restart", "succeeded"), ("stop", "succeeded"),
                           ("start", "succeeded"), ("restart", "unsafe"), ("start", "succeeded"),
                           *([("exec", "succeeded")] if host == "app1" else [])], (host, actions)
    assert rows[-1]["host"] == "app1" and (rows[-1]["command"], rows[-1]["exit"]) == ("true", "0"), rows[-1]
    assert {row["app"] for row in rows} == {"hello"} and {row["version"] for row in rows} == {"1.0.0"}

    text = fleet.rollwright("audit", "-f", str(spec), "-t", "lab", "-n", "5")
    lines = text.stdout.splitlines()
    assert text.returncode == 0 and len(lines) == 5, text.stdout + text.stderr
    assert [line.split()[0] for line in lines] == [row["host"] for row in every_row[-5:]]
    assert all(line.split(None, 1)[1] == row["line"] for line, row in zip(lines, every_row[-5:], strict=True))


def test_a_maintenance_hold_refuses_deploys_until_released(fleet: Fleet, spec: Path) -> None:
    held = fleet.rollwright("lock", "acquire", "-f", str(spec), "-t", "lab", "-m", HOLD_MESSAGE)
    assert held.returncode == 0, held.stdout + held.stderr
    status = fleet.rollwright("lock", "status", "-f", str(spec), "-t", "lab", "--json")
    assert status.returncode == 1 and json.loads(status.stdout)["holder"]["hold"] is True

    new = fleet.spec("2.0.0")
    refused = fleet.deploy(new)  # the hold's process is gone, on this very machine: still not stale
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "maintenance hold" in refused.stderr and HOLD_MESSAGE in refused.stderr, refused.stderr
    again = fleet.rollwright("lock", "acquire", "-f", str(spec), "-t", "lab", "-m", "mine now")
    assert again.returncode == 2 and HOLD_MESSAGE in again.stderr, again.stderr

    released = fleet.rollwright("lock", "release", "-f", str(spec), "-t", "lab")
    assert released.returncode == 0 and "released" in released.stdout, released.stdout + released.stderr
    deployed = fleet.deploy(new)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert fleet.versions(new) == dict.fromkeys(APP_HOSTS, "2.0.0")
