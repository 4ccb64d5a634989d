"""Acceptance of issue 8 on real hosts: canary steps judged by HAProxy's own counters, blue/green, and the
strategy policy.

The tests run in file order on one fleet: a plain deploy puts every host on 20.0.0, then canaries of
faulty builds (5xx on a share of pages, or slow pages; their health checks pass) must be stopped by the
SLO guard with every host back on 20.0.0, and a healthy canary must reach every host and pass the SLO hold after
its last step; the hold after a rolling deploy rolls every host back from a release that fails once past its
health gate.
Blue/green comes last: it leaves the idle colour's servers in maintenance.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from fleets import APP_HOSTS, LOAD_RATE, Fleet

from prometheus_fake import QUERIES, FakePrometheus, per_version
from rollwright.lab.fleet import Lab
from rollwright.lab.load import Load

CANARY = {"strategy": "canary", "canary": {"steps": [1, "100%"], "window_s": 6}}  # 300 requests a window at LOAD_RATE
HOLD = {"hold": {"duration_s": 8}}  # about 1200 requests at LOAD_RATE
BLUE_GREEN = {"strategy": "blue_green", "blue_green": {"blue": "blue", "green": "green"}}
BASELINE = "20.0.0"


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    fleet = Fleet.beside(lab, tmp_path_factory.mktemp("strategies"))
    first = fleet.deploy(fleet.spec(BASELINE))
    assert first.returncode == 0, first.stdout + first.stderr
    return fleet


def _newest_record(fleet: Fleet, spec: Path) -> dict[str, object]:
    rows = [json.loads(line) for line in
            fleet.rollwright("history", "-f", str(spec), "-t", "lab", "--json").stdout.splitlines()]
    return json.loads(Path(rows[0]["record"]).read_text())


def _staged(fleet: Fleet, version: str) -> list[str]:
    return [host for host in APP_HOSTS if fleet.lab.run(host, f"test -e /srv/hello/releases/{version}").returncode == 0]


def test_a_canary_answering_5xx_is_aborted_and_every_host_goes_back(fleet: Fleet) -> None:
    spec = fleet.spec("20.1.0", error_rate=0.3, rollout=CANARY)
    proc, load = fleet.deploy_under_load(spec)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "canary step 1 (app1): errors " in proc.stdout and "FAILED: canary error rate" in proc.stdout
    assert "rolled back by the runner: app1" in proc.stdout
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, BASELINE)
    assert set(load.versions) == {BASELINE, "20.1.0"}  # the canary really served...
    assert load.failed == 0, load.summary()  # ...but the lab's HAProxy retried its 5xx on the baseline
    verdict = _newest_record(fleet, spec)["canary"][0]  # type: ignore[index]
    assert verdict["passed"] is False and verdict["canary"]["servers"] == ["app1"]
    assert verdict["baseline"]["servers"] == ["app2", "app3"]
    assert 0.2 <= verdict["canary"]["error_rate"] <= 0.4, verdict
    assert verdict["baseline"]["error_rate"] == 0.0 and verdict["baseline"]["requests"] > 0, verdict


def test_a_slow_canary_is_aborted_on_latency(fleet: Fleet) -> None:
    spec = fleet.spec("20.2.0", delay_ms=150, rollout=CANARY)
    proc, load = fleet.deploy_under_load(spec)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED: canary response time" in proc.stdout and "error rate" not in proc.stdout.split("FAILED")[1]
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, BASELINE)
    assert load.failed == 0, load.summary()  # slow, not failing: only the guard sees it
    verdict = _newest_record(fleet, spec)["canary"][0]  # type: ignore[index]
    assert verdict["canary"]["avg_ms"] > 2 * max(verdict["baseline"]["avg_ms"], 10), verdict


def test_a_canary_judged_by_prometheus_is_aborted_with_its_p95_in_the_record(fleet: Fleet) -> None:
    """metrics.source prometheus: the guard asks a fake Prometheus on the control node's loopback (answering in
    the shapes a real one does) for each version's own series; it says the new version fails 40% of its requests
    and is slow, though the build itself is healthy."""
    numbers = {"20.2.5": {"error_ratio": "0.4", "latency_p95": "0.25", "requests": "300"},
               BASELINE: {"error_ratio": "0.005", "latency_p95": "0.02", "requests": "600"}}
    with FakePrometheus(per_version(numbers)) as prometheus:
        metrics = {"source": "prometheus", "prometheus": {"url": prometheus.url, **QUERIES, "timeout_s": 5}}
        spec = fleet.spec("20.2.5", rollout={**CANARY, "metrics": metrics})
        proc, load = fleet.deploy_under_load(spec)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ("canary step 1 (app1, 20.2.5): errors 40.00% (120/300) vs baseline (20.0.0) 0.50% (3/600); p95 250.0 ms "
            "vs 20.0 ms in 6 s from Prometheus: FAILED: canary error rate 40.00% (120/300)") in proc.stdout
    assert "rolled back by the runner: app1" in proc.stdout
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, BASELINE)
    assert load.failed == 0, load.summary()
    verdict = _newest_record(fleet, spec)["canary"][0]  # type: ignore[index]
    assert verdict["source"] == "prometheus" and verdict["passed"] is False, verdict
    assert (verdict["canary"]["version"], verdict["canary"]["p95_ms"]) == ("20.2.5", 250.0), verdict
    assert (verdict["baseline"]["version"], verdict["baseline"]["p95_ms"]) == (BASELINE, 20.0), verdict
    asked = [params["query"] for params in prometheus.asked]
    assert len(asked) == 6 and all("[6s]" in query and "$" not in query for query in asked), asked  # one window
    assert all(params["time"].replace(".", "").isdigit() for params in prometheus.asked)


def test_a_healthy_canary_proceeds_to_every_host_and_passes_its_hold(fleet: Fleet) -> None:
    spec = fleet.spec("20.3.0", rollout={**CANARY, **HOLD})  # the hold after the canary's last step
    proc, load = fleet.deploy_under_load(spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert load.failed == 0, load.summary()
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "20.3.0")
    record = _newest_record(fleet, spec)
    assert [(v["step"], v["passed"], v["canary"]["servers"]) for v in record["canary"]] == [  # type: ignore[attr-defined]
        (1, True, ["app1"]), (2, True, APP_HOSTS)]
    assert f"hold 8 s ({', '.join(APP_HOSTS)}): errors " in proc.stdout and "before the deploy); " in proc.stdout
    verdict = record["hold"]
    assert verdict["passed"] is True and verdict["reasons"] == [], verdict  # type: ignore[index]
    assert verdict["release"]["requests"] >= 20 and verdict["baseline"]["requests"] >= 20, verdict  # type: ignore[index]


def test_a_release_failing_after_its_health_gate_is_rolled_back_by_the_hold_on_every_host(fleet: Fleet) -> None:
    """20% of its pages fail from 2 s after start, when its health gate has passed: only the hold sees it."""
    spec = fleet.spec("20.3.2", error_rate=0.2, errors_after_s=2, rollout=HOLD)
    before = fleet.versions(spec)
    proc, load = fleet.deploy_under_load(spec)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED: release error rate" in proc.stdout
    assert f"rolled back by the runner: {', '.join(APP_HOSTS)}" in proc.stdout
    assert fleet.versions(spec) == before == dict.fromkeys(APP_HOSTS, "20.3.0")
    assert set(load.versions) >= {"20.3.0", "20.3.2"}, load.summary()  # the release really served
    record = _newest_record(fleet, spec)
    verdict = record["hold"]
    assert verdict["passed"] is False and verdict["release"]["servers"] == APP_HOSTS, verdict  # type: ignore[index]
    assert 0.1 <= verdict["release"]["error_rate"] <= 0.45, verdict  # type: ignore[index]
    assert verdict["baseline"]["source"] == "before the deploy", verdict  # type: ignore[index]
    assert verdict["baseline"]["error_rate"] == 0.0 and verdict["baseline"]["requests"] >= 20, verdict  # type: ignore[index]
    assert record["rolled_back_by_runner"] == APP_HOSTS


def test_direct_on_production_needs_the_flag(fleet: Fleet) -> None:
    spec = fleet.spec("20.4.0", rollout={"strategy": "direct"}, production=True)
    for command in ("plan", "deploy"):
        proc = fleet.rollwright(command, "-f", str(spec), "-t", "lab")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "on production target 'lab' that needs --direct" in proc.stderr
    assert _staged(fleet, "20.4.0") == []
    hotfix = fleet.deploy(spec, "--direct")
    assert hotfix.returncode == 0, hotfix.stdout + hotfix.stderr
    assert "direct: every app host restarts at once" in hotfix.stdout
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "20.4.0")


@pytest.mark.parametrize(("strategy", "sql", "reason"), [
    ("direct", "CREATE TABLE t (id int);\n", "a deploy with pending migrations (V1__t.sql) is never direct"),
    ("rolling", "DROP TABLE IF EXISTS gone;\n",
     "destructive migrations (V1__t.sql) need strategy canary or blue_green"),
])
def test_the_migration_policy_refuses_before_any_change(fleet: Fleet, strategy: str, sql: str, reason: str) -> None:
    database = f"policy_{strategy}"
    created = fleet.lab.run("db1", f"runuser -u postgres -- dropdb --if-exists {database} && "
                                   f"runuser -u postgres -- createdb {database}")
    assert created.returncode == 0, created.stderr
    (fleet.folder / "migrations").mkdir(exist_ok=True)
    (fleet.folder / "migrations" / "V1__t.sql").write_text(sql)
    migrations = {"tool": "sql", "path": "migrations", "acknowledge_destructive": ["V1__t.sql"]}
    spec = fleet.spec("20.5.0", rollout={"strategy": strategy}, database={"name": database, "migrations": migrations})
    proc = fleet.deploy(spec)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused before any change" in proc.stderr and f"policy: {reason}" in proc.stderr
    tables = fleet.lab.run("db1", f"runuser -u postgres -- psql -X -A -t -d {database} -c '\\dt'").stdout
    assert tables.strip() == ""  # not even the history table
    assert _staged(fleet, "20.5.0") == []
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "20.4.0")


@pytest.fixture(scope="module")
def colours(fleet: Fleet) -> Fleet:
    """The same fleet, its inventory with two colours: blue is app1, green app2 and app3."""
    inventory = yaml.safe_load(fleet.lab.inventory_path.read_text())
    hosts = inventory["all"]["children"]["app"]["hosts"]
    inventory["all"]["children"]["blue"] = {"hosts": {"app1": {}}}
    inventory["all"]["children"]["green"] = {"hosts": {name: {} for name in hosts if name != "app1"}}
    return Fleet.beside(fleet.lab, fleet.folder / "blue-green", inventory)


def _traffic(fleet: Fleet, requests: int = 60) -> dict[str, int]:
    """Which versions answer through the load balancer right now (a short bounded load)."""
    with Load(fleet.lab.hosts["lb1"].address, 80, rate=60.0, max_requests=requests, max_seconds=10) as load:
        time.sleep(requests / 60.0 + 0.5)
    assert load.result.failed == 0, load.result.summary()
    return dict(load.result.versions)


def _reload_haproxy(fleet: Fleet) -> dict[str, int]:
    """`systemctl reload haproxy` on lb1, then each server's admin state bits as the new process has them."""
    reloaded = fleet.lab.run("lb1", "systemctl reload haproxy")
    assert reloaded.returncode == 0, reloaded.stderr
    for _ in range(50):  # the new process opens the admin socket a moment after the reload returns
        shown = fleet.lab.run("lb1", "echo 'show servers state app' | socat stdio /run/haproxy/admin.sock")
        rows = [line.split() for line in shown.stdout.splitlines() if line[:1].isdigit() and len(line.split()) > 7]
        if rows:
            return {row[3]: int(row[6]) for row in rows}
        time.sleep(0.2)
    raise AssertionError(f"HAProxy's admin socket did not answer after the reload: {shown.stdout}{shown.stderr}")


def test_a_first_blue_green_deploy_can_wait_for_its_switch(colours: Fleet) -> None:
    """No colour has been live yet: blue, the idle one, gets the release and the traffic stays where it was."""
    spec = colours.spec("30.0.0", rollout=BLUE_GREEN)
    before = _traffic(colours)
    proc = colours.deploy(spec, "--no-switch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the traffic stays where it was: `rollwright promote` moves it to blue" in proc.stdout
    assert colours.versions(spec)["app1"] == "30.0.0"
    assert "30.0.0" not in before and set(_traffic(colours)) <= set(before)


def test_blue_green_switches_in_one_step_and_switches_back(colours: Fleet) -> None:
    first = colours.deploy(colours.spec("30.0.0", rollout=BLUE_GREEN))  # the staged blue takes the traffic
    assert first.returncode == 0, first.stdout + first.stderr
    assert list(_traffic(colours)) == ["30.0.0"]  # blue (app1) took all of it

    spec = colours.spec("30.1.0", rollout=BLUE_GREEN)
    proc, load = colours.deploy_under_load(spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert load.failed == 0, load.summary()
    assert set(load.versions) == {"30.0.0", "30.1.0"}, load.summary()
    assert colours.versions(spec) == {"app1": "30.0.0", "app2": "30.1.0", "app3": "30.1.0"}
    assert list(_traffic(colours)) == ["30.1.0"]
    states = _reload_haproxy(colours)  # the idle colour stays out of service: its servers start in maintenance
    assert [name for name, bits in states.items() if bits & 0x23] == ["app1"], states
    assert list(_traffic(colours)) == ["30.1.0"]

    with Load(colours.lab.hosts["lb1"].address, 80, rate=LOAD_RATE) as during:
        back = colours.rollwright("rollback", "-f", str(spec), "-t", "lab")
    assert back.returncode == 0, back.stdout + back.stderr
    assert during.result.failed == 0, during.result.summary()
    assert list(_traffic(colours)) == ["30.0.0"]  # the old colour serves at once, nothing restarted
    assert colours.versions(spec) == {"app1": "30.0.0", "app2": "30.1.0", "app3": "30.1.0"}
    states = _reload_haproxy(colours)  # and the rollback's colours survive a reload as well
    assert [name for name, bits in states.items() if bits & 0x23] == ["app2", "app3"], states
    assert list(_traffic(colours)) == ["30.0.0"]


def test_blue_green_deploy_now_switch_later(colours: Fleet) -> None:
    spec = colours.spec("30.2.0", rollout=BLUE_GREEN)
    proc = colours.deploy(spec, "--no-switch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "`rollwright promote` moves it to green" in proc.stdout
    assert list(_traffic(colours)) == ["30.0.0"]
    assert colours.versions(spec) == {"app1": "30.0.0", "app2": "30.2.0", "app3": "30.2.0"}
    with Load(colours.lab.hosts["lb1"].address, 80, rate=LOAD_RATE) as during:
        promoted = colours.rollwright("promote", "-f", str(spec), "-t", "lab")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert during.result.failed == 0, during.result.summary()
    assert list(_traffic(colours)) == ["30.2.0"]
