"""Load balancers other than HAProxy's own driver, on real hosts: `kind: command` (the spec's commands take each
host out of service and back, here through HAProxy's admin socket on lb1 with socat, as a user would script a
cloud load balancer's API) and `kind: none` (each batch restarted in place, health-gated); then a graceful reload
(`service.reload_signal`).

One fleet of the sample app for the module; the tests run in file order, each deploying the next version.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fleets import APP_HOSTS, Fleet

from rollwright.lab.fleet import Lab

MIN_REQUESTS = 300
LOG = "/var/log/rollwright-lb-commands.log"  # on lb1: what each command saw, one line per run
ADMIN = "socat stdio /run/haproxy/admin.sock"
SAY = f'echo "$ROLLWRIGHT_ACTION $ROLLWRIGHT_HOST $ROLLWRIGHT_ADDRESS $ROLLWRIGHT_PORT $ROLLWRIGHT_VERSION" >> {LOG}'


def _field(column: int) -> str:
    """This host's `show stat` column in backend app (5: current sessions, 18: status)."""
    return (f'$(echo "show stat" | {ADMIN} | awk -F, -v h="$ROLLWRIGHT_HOST" '
            f"'$1 == \"app\" && $2 == h {{print ${column}}}')")


# HAProxy driven through its admin socket as a user's script would drive any load balancer's API
COMMANDS = {
    "drain": f'{SAY}; echo "set server app/$ROLLWRIGHT_HOST state drain" | {ADMIN}',
    "wait": (f"{SAY}; for i in $(seq 300); do [ \"{_field(5)}\" = 0 ] && break; sleep 0.1; done; "
             f'echo "set server app/$ROLLWRIGHT_HOST state maint" | {ADMIN}'),
    "undrain": f'{SAY}; echo "set server app/$ROLLWRIGHT_HOST state ready" | {ADMIN}',
    "ready": (f"{SAY}; for i in $(seq 300); do [ \"{_field(18)}\" = UP ] && exit 0; sleep 0.1; done; "
              'echo "$ROLLWRIGHT_HOST is not UP in the load balancer" >&2; exit 1'),
}


def _command_lb(**commands: str) -> dict[str, Any]:
    return {"load_balancer": {"kind": "command", "on": "lb", **COMMANDS, **commands}}


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    fleet = Fleet.beside(lab, tmp_path_factory.mktemp("load_balancers"))
    first = fleet.deploy(fleet.spec("1.0.0", rollout=_command_lb()))
    assert first.returncode == 0, first.stdout + first.stderr
    return fleet


def _command_log(fleet: Fleet) -> list[list[str]]:
    return [line.split() for line in fleet.lab.run("lb1", f"cat {LOG}; : > {LOG}").stdout.splitlines()]


def test_command_kind_rolls_out_under_load_without_failing_a_request(fleet: Fleet) -> None:
    _command_log(fleet)  # the first deploy's lines
    spec = fleet.spec("2.0.0", rollout=_command_lb())
    plan = fleet.rollwright("plan", "-f", str(spec), "-t", "lab")
    assert plan.returncode == 0 and "drain with the load balancer's commands on lb" in plan.stdout, plan.stdout
    proc, load = fleet.deploy_under_load(spec, "--no-color")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert load.failed == 0 and load.sent >= MIN_REQUESTS, load.summary()
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "2.0.0")
    assert fleet.backend_states() == dict.fromkeys(APP_HOSTS, "UP")
    for host in APP_HOSTS:
        assert f"{host}" in out and "drain" in out
    # each host went through the four commands in order, batch after batch, with its values in the environment
    addresses = {host: fleet.lab.hosts[host].address for host in APP_HOSTS}
    assert _command_log(fleet) == [[action, host, addresses[host], "8080", "2.0.0"]
                                   for host in APP_HOSTS for action in ("drain", "wait", "undrain", "ready")]
    status = fleet.rollwright("status", "-f", str(spec), "-t", "lab", "--json")
    assert status.returncode == 0, status.stdout
    assert all(not host.get("lb") for host in json.loads(status.stdout)), status.stdout  # no state to read: omitted


def test_a_failing_drain_command_stops_the_deploy_before_any_switch(fleet: Fleet) -> None:
    spec = fleet.spec("3.0.0", rollout=_command_lb(drain='echo "the load balancer API refused: 403" >&2; exit 3'))
    proc = fleet.deploy(spec, "--no-color")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "the load balancer API refused: 403" in out
    assert "Drain this host in the load balancer" in out or "drain" in out
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "2.0.0")
    assert fleet.backend_states() == dict.fromkeys(APP_HOSTS, "UP")  # the rescue put app1 back in


def test_command_kind_on_the_control_node_runs_in_the_project_files(fleet: Fleet) -> None:
    """Without `on`: the commands run on the control node, in the project's files/, which carries the script they
    name; here they only say what they were given (HAProxy's own check covers each short restart)."""
    said = fleet.folder / "control-node.log"
    script = fleet.folder / "lb.sh"
    script.write_text(f'#!/bin/sh\necho "$ROLLWRIGHT_ACTION $ROLLWRIGHT_HOST $ROLLWRIGHT_VERSION $(pwd)" >> {said}\n')
    script.chmod(0o755)
    spec = fleet.spec("3.1.0", rollout={"load_balancer": {"kind": "command", "drain": "./lb.sh", "undrain": "./lb.sh"}})
    proc = fleet.deploy(spec, "--no-color")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line.split() for line in said.read_text().splitlines()]
    assert [line[:3] for line in lines] == [[action, host, "3.1.0"] for host in APP_HOSTS
                                            for action in ("drain", "undrain")]
    assert all(line[3].endswith("/files") and "/.rollwright/lab/projects/" in line[3] for line in lines), lines
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "3.1.0")


def test_kind_none_restarts_batch_after_batch_health_gated(fleet: Fleet) -> None:
    spec = fleet.spec("4.0.0", rollout={"load_balancer": {"kind": "none"}, "batches": [1, 1, 1]})
    plan = fleet.rollwright("plan", "-f", str(spec), "-t", "lab")
    assert plan.returncode == 0 and "drain" not in plan.stdout, plan.stdout
    _command_log(fleet)
    before = fleet.main_pids()
    proc = fleet.deploy(spec, "--no-color")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for batch in ("batch 1/3", "batch 2/3", "batch 3/3"):
        assert batch in out
    assert " drain" not in out
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "4.0.0")
    after = fleet.main_pids()
    assert all(after[host] != before[host] for host in APP_HOSTS), (before, after)
    assert _command_log(fleet) == []  # no load balancer command ran


def test_kind_none_rolls_a_broken_release_back(fleet: Fleet) -> None:
    spec = fleet.spec("5.0.0", rollout={"load_balancer": {"kind": "none"}, "batches": [1, 1, 1]},
                      broken_on=["app2"])
    proc = fleet.deploy(spec, "--no-color")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "app2" in out and "rolled back" in out
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "4.0.0")
    # nothing drained them: HAProxy's own check (rise 2, inter 1s) takes the restarted hosts back by itself
    fleet.lab.run("lb1", f"for i in $(seq 100); do {_all_up()} && exit 0; sleep 0.1; done; exit 1")
    assert fleet.backend_states() == dict.fromkeys(APP_HOSTS, "UP")


def _all_up() -> str:
    return (f'[ "$(echo "show stat" | {ADMIN} | awk -F, \'$1 == "app" && $2 ~ /^app[0-9]/ && $18 != "UP"\' '
            '| wc -l)" = 0 ]')


def test_reload_renews_the_code_in_the_same_process_health_gated(fleet: Fleet) -> None:
    """service.reload_signal HUP: the first deploy with it changes the unit (its ExecReload), so it restarts;
    the next one reloads: the same main PIDs serve the new version, from its release folder, under load."""
    reloading = {"reload_signal": "HUP"}
    first = fleet.deploy(fleet.spec("6.0.0", service=reloading))
    assert first.returncode == 0, first.stdout + first.stderr
    assert fleet.lab.run("app1", "systemctl show -p ExecReload hello").stdout.count("/bin/kill -s HUP") == 1
    pids = fleet.main_pids()
    spec = fleet.spec("7.0.0", service=reloading)
    proc, load = fleet.deploy_under_load(spec, "--no-color")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert load.failed == 0 and load.sent >= MIN_REQUESTS, load.summary()
    assert fleet.main_pids() == pids and all(pid not in ("", "0") for pid in pids.values())
    status = fleet.rollwright("status", "-f", str(spec), "-t", "lab", "--json")
    assert status.returncode == 0, status.stdout  # every host settled: its process runs 7.0.0's folder
    assert {host["name"]: (host["current"], host["running"]) for host in json.loads(status.stdout)} == dict.fromkeys(
        APP_HOSTS, ("7.0.0", "7.0.0"))
    journal = fleet.lab.run("app1", "journalctl -u hello --since -10min -o cat").stdout
    assert "version 6.0.0 reloading on SIGHUP" in journal
    # the env file names 7.0.0, though only its version lines changed (so the host reloaded); the reloaded process
    # keeps the environment it started with
    env_file = fleet.lab.run("app1", "cat /etc/rollwright/hello.env").stdout
    assert 'ROLLWRIGHT_VERSION="7.0.0"' in env_file and '"service.version=7.0.0"' in env_file
    pid = pids["app1"]
    environ = fleet.lab.run("app1", f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout.splitlines()
    assert "ROLLWRIGHT_VERSION=6.0.0" in environ and "ROLLWRIGHT_RELEASE=/srv/hello/releases/6.0.0" in environ
