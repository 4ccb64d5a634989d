"""An app's other processes (workers, schedulers): the spec's rules, and where the generated plays restart them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from role_files import load_role_file
from test_generate import _generate, _hello_copy, _UnsafeLoader, assert_lints_production

from rollwright.cli import main
from rollwright.render.playbooks import PROCESSES_AFTER_TASK, PROCESSES_BACK_TASK, PROCESSES_BEFORE_TASK
from rollwright.run.journal import LogsOptions, journalctl_argv
from rollwright.run.status import state_of

REQUIRED = "required_env: []\n"  # the hello spec's last line: processes go before it
WORKER = """processes:
  worker:
    exec: /usr/bin/python3 worker.py
    instances: 2
    env: {QUEUE: jobs}
  scheduler:
    exec: bin/scheduler
    hosts: sched
    ready: {command: "bin/check --quiet", timeout_s: 20}
    order: before_web
"""


def _site(out: Path, playbook: str = "site.yml") -> list[dict[str, Any]]:
    return yaml.load((out / playbook).read_text(), Loader=_UnsafeLoader)


def _play(plays: list[dict[str, Any]], start: str) -> dict[str, Any]:
    return next(play for play in plays if play["name"].startswith(start))


def _names(tasks: list[dict[str, Any]]) -> list[str]:
    return [task["name"] for task in tasks]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("processes")
    return _generate(_hello_copy(folder, REQUIRED, WORKER + REQUIRED), "staging", folder / "out")


@pytest.mark.parametrize(("process", "line", "expected"), [
    ("worker: {exec: w, ready: {running_s: 5, port: 9000}}", 2,
     "processes.worker.ready: set exactly one of 'running_s', 'command' or 'port'"),
    ("worker: {exec: w, instances: 0}", 2, "processes.worker.instances"),
    ("worker: {exec: w, order: first}", 2, "processes.worker.order"),
    ("worker: {exec: w, stop_timeout_s: 0}", 2, "processes.worker.stop_timeout_s"),
    ("worker: {exec: w, hosts: App}", 2, "processes.worker.hosts"),
    ("worker: {exec: w, env: {X: '{{ a }} b'}}", 2, "processes.worker.env.X"),
    ("worker: {exec: w, restart: sometimes}", 2, "processes.worker.restart"),
    ("worker: {exec: w, unit: hello}", 2, "processes.worker.unit: unit 'hello' is already the service's"),
    ("Worker: {exec: w}", 2, "processes.Worker"),
    ("worker: {exec: w, working_dir: /srv/other}", 2, "processes.worker.working_dir: '/srv/other' is outside"),
])
def test_a_bad_process_names_its_field_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], process: str,
                                                line: int, expected: str) -> None:
    spec = _hello_copy(tmp_path, REQUIRED, f"processes:\n  {process}\n" + REQUIRED)
    first = spec.read_text().splitlines().index("processes:") + 1
    assert main(["validate", "-f", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"rollwright.yml:{first + line - 1}:" in err and expected in err, err


def test_processes_need_the_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "rollwright.yml"
    spec.write_text("app: hello\nprocesses:\n  worker: {exec: w}\n")
    assert main(["validate", "-f", str(spec)]) == 2
    assert "'processes' need 'service'" in capsys.readouterr().err


def test_each_process_gets_the_services_defaults_its_own_unit_and_readiness(project: Path) -> None:
    values = yaml.load((project / "group_vars/all/rollwright.yml").read_text(), Loader=_UnsafeLoader)
    worker, scheduler = values["rollwright_processes"]
    assert (worker["unit"], worker["hosts"], worker["user"], worker["group"]) == ("hello-worker", "app", "hello",
                                                                                  "hello")
    assert worker["units"] == ["hello-worker@1", "hello-worker@2"] and scheduler["units"] == ["hello-scheduler"]
    assert worker["env"] == {"DATABASE_URL": "{{ database_url }}", "STARTUP_DELAY_S": "1", "QUEUE": "jobs"}
    assert worker["ready"] == {"running_s": 5, "port": 0, "command": "", "timeout_s": 60}
    assert scheduler["ready"] == {"running_s": 0, "port": 0, "command": "bin/check --quiet", "timeout_s": 20}
    assert (worker["order"], scheduler["order"]) == ("after_web", "before_web")
    assert worker["chdir"] == "/srv/hello/current"


def test_every_host_of_every_process_is_staged_and_rolled_out(project: Path) -> None:
    site = _site(project)
    stage = _play(site, "Stage the release")
    assert stage["hosts"] == "app:sched"
    install, processes = stage["tasks"][:2]
    assert install["when"] == "rollwright_web | bool"  # a scheduler-only host gets no web unit
    assert processes["ansible.builtin.import_role"]["tasks_from"] == "processes"
    assert _play(site, "Roll out in batches")["hosts"] == "app:sched"
    assert _play(site, "Report what every app host runs")["hosts"] == "app:sched"


def test_processes_restart_around_the_web_gate_and_go_back_with_the_host(project: Path) -> None:
    rollout = _play(_site(project), "Roll out in batches")
    update = rollout["tasks"][-1]
    names = _names(update["block"])
    assert names == ["Drain this host in the load balancer", "Switch current to the new release",
                     PROCESSES_BEFORE_TASK, "Restart the service and wait until the new version is healthy",
                     PROCESSES_AFTER_TASK, "Put this host back in the load balancer"]
    before, after = update["block"][2], update["block"][4]
    assert "'before_web'" in before["loop"] and "'after_web'" in after["loop"]
    assert after["process_ready"]["env_file"] == "/etc/rollwright/{{ item.unit }}.env"
    assert _names(update["rescue"])[:2] == ["Roll this host back to the previous release", PROCESSES_BACK_TASK]
    assert update["rescue"][1]["when"] == update["rescue"][0]["when"]  # only a host this run switched
    decide = rollout["tasks"][1]
    assert "rollwright_processes_behind" in decide["ansible.builtin.set_fact"]["rollwright_host_stale"]
    assert "rollwright_new_release | regex_escape" in decide["vars"]["rollwright_processes_behind"]


def test_rollback_and_app_restart_cover_the_processes(project: Path) -> None:
    rollback = _play(_site(project, "rollback.yml"), "Roll back the app hosts")
    names = _names(rollback["tasks"])
    assert names.index(PROCESSES_BEFORE_TASK) < names.index("Restart the release now current and wait until it is "
                                                              "healthy") < names.index(PROCESSES_AFTER_TASK)
    app = _play(_site(project, "app.yml"), "Act on the app's service")
    block = _names(app["tasks"][-1]["block"])
    assert "Stop the app's other processes" in block and PROCESSES_AFTER_TASK in block


def test_the_project_with_processes_lints_production(project: Path, tool_env: dict[str, str]) -> None:
    syntax = subprocess.run(["ansible-playbook", "--syntax-check", "site.yml", "rollback.yml", "app.yml", "status.yml"],
                            cwd=project, env=tool_env, capture_output=True, text=True, timeout=300)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    assert_lints_production(project, tool_env, "site.yml", "rollback.yml", "app.yml")


def test_status_reads_each_process_and_a_stopped_one_is_not_settled() -> None:
    info = {"current": "2.0.0", "root": "/srv/hello", "active": "active", "healthy": True, "health_status": 200,
            "process_dir": "/srv/hello/releases/2.0.0", "health_body": '{"version": "2.0.0"}',
            "processes": {"hello-worker@1": {"active": "active", "process_dir": "/srv/hello/releases/2.0.0"},
                          "hello-worker@2": {"active": "active", "process_dir": "/srv/hello/releases/1.0.0"}}}
    state = state_of("app1", info)
    assert state.processes["hello-worker@1"] == {"active": "active", "running": "2.0.0"}
    assert not state.settled and state.half_done
    assert state.problems() == ["hello-worker@2 runs 1.0.0"]
    info["processes"]["hello-worker@2"] = {"active": "failed", "process_dir": ""}
    assert state_of("app1", info).problems() == ["hello-worker@2 is not running"]
    del info["processes"]["hello-worker@2"]
    assert state_of("app1", info).settled
    worker_only = state_of("work1", {**info, "web": False, "active": "inactive", "healthy": False, "process_dir": ""})
    assert worker_only.settled and worker_only.problems() == []


def test_logs_read_every_process_unit_beside_the_service() -> None:
    argv = journalctl_argv("hello", LogsOptions(lines=5), ["hello-worker@*", "hello-scheduler"])
    assert argv[:4] == ["journalctl", "--unit=hello.service", "--unit=hello-worker@*.service",
                        "--unit=hello-scheduler.service"]


def test_the_plan_names_the_processes_around_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _hello_copy(tmp_path, REQUIRED, WORKER + REQUIRED)
    main(["plan", "-f", str(spec), "-t", "staging"])
    plan = capsys.readouterr().out
    assert "switch current, restart scheduler (ready), restart, health gate, restart worker (ready), undrain" in plan


def test_a_command_readiness_check_reaches_the_shell_as_written() -> None:
    """systemd-run's command line is expanded by systemd (`$NAME`): every `$` is doubled, so the shell, not
    systemd, sees `${PORT:-9000}` (as `rollwright exec` and the build's commands do)."""
    ready = load_role_file("healthcheck/library/process_ready.py")
    argv = ready.check_argv({"user": "hello", "group": "hello", "chdir": "/srv/hello/current",
                             "env_file": "/etc/rollwright/hello-worker.env",
                             "command": 'test "$(bin/ping ${PORT:-9000})" = ok'})
    assert argv[-3:] == ["/bin/sh", "-c", 'test "$$(bin/ping $${PORT:-9000})" = ok']
    assert argv[argv.index("--") - 2:argv.index("--")] == ["-p", "EnvironmentFile=/etc/rollwright/hello-worker.env"]
