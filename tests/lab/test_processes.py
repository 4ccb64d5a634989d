"""An app with more than one process, on real hosts: the sample app's web service behind HAProxy plus its worker
(examples/hello/app/worker.py, two instances per app host), which consumes jobs from a table in the lab's database.

One fleet for the module; the tests run in file order and build on each other: a first deploy whose workers
really work, a second run of it that changes nothing, a rollback that takes both processes back, and a release
whose worker is broken, rolled back on every host without failing a web request.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
from fleets import APP_HOSTS, Fleet

from rollwright.lab.fleet import Lab

TABLE = "jobs_" + secrets.token_hex(4)  # this module's own jobs, in the lab's app database
WORKERS = ["hello-worker@1", "hello-worker@2"]
JOBS = 30
MIN_REQUESTS = 300


def _spec(fleet: Fleet, version: str, **build: object) -> Path:
    return fleet.spec(version, **build, processes={"worker": {
        "exec": "/usr/bin/python3 worker.py", "instances": 2, "env": {"JOBS_TABLE": TABLE},
        "ready": {"running_s": 3, "timeout_s": 30}, "stop_timeout_s": 10}})


def _status(fleet: Fleet, spec: Path) -> dict[str, dict[str, object]]:
    proc = fleet.rollwright("status", "-f", str(spec), "-t", "lab", "--json")
    return {host["name"]: host for host in json.loads(proc.stdout)}


def _everything_runs(fleet: Fleet, spec: Path, version: str) -> None:
    """Every app host serves `version` from its web service and both worker instances, all running."""
    hosts = _status(fleet, spec)
    assert sorted(hosts) == APP_HOSTS, hosts
    for name, host in hosts.items():
        assert (host["current"], host["running"], host["healthy"], host["active"]) == (version, version, True, True), \
            (name, host)
        assert host["processes"] == {unit: {"active": "active", "running": version} for unit in WORKERS}, (name, host)


def _sql(fleet: Fleet, sql: str) -> str:
    proc = fleet.lab.run("db1", "runuser -u postgres -- psql -X -A -t -q -d app", stdin=sql)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _wait_for(what: str, check: object, timeout_s: float = 60) -> None:
    """Poll `check` until it is true (a worker polls its table twice a second); fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:g}s"
        time.sleep(0.5)


def _newest_record(fleet: Fleet, spec: Path) -> dict[str, object]:
    rows = fleet.rollwright("history", "-f", str(spec), "-t", "lab", "--json").stdout.splitlines()
    newest = json.loads(rows[0])["id"]
    return json.loads(fleet.rollwright("show", newest, "-f", str(spec), "--json").stdout)


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return Fleet.beside(lab, tmp_path_factory.mktemp("processes"))


def test_web_and_worker_deploy_and_the_workers_consume_jobs(fleet: Fleet) -> None:
    spec = _spec(fleet, "1.0.0")
    proc = fleet.deploy(spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _everything_runs(fleet, spec, "1.0.0")
    assert _newest_record(fleet, spec)["processes_restarted"] == {host: ["worker"] for host in APP_HOSTS}
    for host in APP_HOSTS:
        units = fleet.lab.run(host, "systemctl is-active hello hello-worker@1 hello-worker@2").stdout.split()
        assert units == ["active"] * 3, (host, units)
        unit = fleet.lab.run(host, "cat /etc/systemd/system/hello-worker@.service").stdout
        assert "TimeoutStopSec=10" in unit and "KillSignal=SIGTERM" in unit and "ROLLWRIGHT_INSTANCE=%i" in unit

    _wait_for("the workers create their table", lambda: _sql(fleet, f"SELECT to_regclass('{TABLE}')") == TABLE)
    _sql(fleet, f"INSERT INTO {TABLE} (payload) SELECT 'job ' || n FROM generate_series(1, {JOBS}) n")
    _wait_for("every job is done", lambda: _sql(fleet, f"SELECT count(*) FROM {TABLE} WHERE done_by IS NULL") == "0")
    done_by = _sql(fleet, f"SELECT DISTINCT done_by FROM {TABLE}").splitlines()
    assert all(who.split("/")[1] == "1.0.0" for who in done_by), done_by
    assert {who.split("/")[0] for who in done_by} <= set(APP_HOSTS), done_by


def test_a_second_run_of_the_same_deploy_changes_nothing(fleet: Fleet) -> None:
    """--limit takes the whole playbook (not the already-deployed shortcut): every task, none changed."""
    spec = _spec(fleet, "1.0.0")
    before = {host: fleet.lab.run(host, "systemctl show -p MainPID --value hello-worker@1 hello-worker@2").stdout
              for host in APP_HOSTS}
    proc = fleet.deploy(spec, "--limit", ",".join(APP_HOSTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(0 changes)" in proc.stdout, proc.stdout
    after = {host: fleet.lab.run(host, "systemctl show -p MainPID --value hello-worker@1 hello-worker@2").stdout
             for host in APP_HOSTS}
    assert after == before


def test_drift_sees_a_worker_unit_edited_by_hand_and_a_deploy_repairs_it(fleet: Fleet) -> None:
    spec = _spec(fleet, "1.0.0")
    clean = fleet.rollwright("drift", "-f", str(spec), "-t", "lab")
    assert clean.returncode == 0 and "no drift" in clean.stdout, clean.stdout
    unit = "/etc/systemd/system/hello-worker@.service"
    fleet.lab.run("app2", f"sed -i 's/^TimeoutStopSec=.*/TimeoutStopSec=5/' {unit}", check=True)
    drifted = fleet.rollwright("drift", "-f", str(spec), "-t", "lab", "--json")
    assert drifted.returncode == 1, drifted.stdout
    found = json.loads(drifted.stdout)["changes"]
    assert list(found) == ["app2"] and any(unit in item for item in found["app2"]), found
    repaired = fleet.deploy(spec)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "TimeoutStopSec=10" in fleet.lab.run("app2", f"cat {unit}").stdout
    assert _newest_record(fleet, spec)["processes_restarted"] == {"app2": ["worker"]}
    assert fleet.rollwright("drift", "-f", str(spec), "-t", "lab").returncode == 0


def test_rollback_takes_the_web_service_and_the_workers_back(fleet: Fleet) -> None:
    new = _spec(fleet, "2.0.0")
    assert fleet.deploy(new).returncode == 0
    _everything_runs(fleet, new, "2.0.0")
    back = fleet.rollwright("rollback", "-f", str(new), "-t", "lab")
    assert back.returncode == 0, back.stdout + back.stderr
    _everything_runs(fleet, new, "1.0.0")


def test_a_broken_worker_is_rolled_back_on_every_host_without_failing_a_request(fleet: Fleet) -> None:
    """The worker breaks on app3 only (the last batch): its readiness check rolls app3 back, the runner the
    hosts of the earlier batches (rollback.yml), web and workers alike."""
    spec = _spec(fleet, "3.0.0", broken_worker=["app3"])
    proc, load = fleet.deploy_under_load(spec)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert load.failed == 0 and load.sent >= MIN_REQUESTS, load.summary()
    assert "hello-worker@1, hello-worker@2: unit hello-worker@" in out, out  # the readiness gate says which...
    assert "worker: this release is broken (BROKEN_WORKER), exiting" in out, out  # ...and why: the unit's own words
    assert "rolled back by their health gate: app3" in out and "rolled back by the runner: app1, app2" in out, out
    assert "3.0.0" in load.versions, load.summary()  # app1 and app2 really served it before going back
    _everything_runs(fleet, spec, "1.0.0")
    assert fleet.backend_states() == dict.fromkeys(APP_HOSTS, "UP")
