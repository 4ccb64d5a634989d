"""Graceful reloads (service.reload_signal): the unit's ExecReload, and the rollout's gate reloading instead of
restarting only a running host whose unit and env file did not change. The lab proves it on real hosts
(tests/lab/test_load_balancers.py: same main PIDs, new version, no failed request)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
from test_load_balancer_kinds import _project, _spec, _tasks

from rollwright.spec.loader import SpecError, load_spec

REPO = Path(__file__).resolve().parents[2]
GATE = "Restart the service and wait until the new version is healthy"


def _unit(signal: str) -> str:
    """roles/service's unit as Ansible's template lookup renders it (trim_blocks)."""
    environment = jinja2.Environment(trim_blocks=True)
    environment.filters["regex_replace"] = lambda value, pattern, replacement: re.sub(pattern, replacement, value)
    template = environment.from_string((REPO / "roles/service/templates/service.unit.j2").read_text())
    return template.render(ansible_managed="managed", service_name="hello", service_user="hello",
                           service_group="hello", service_working_dir="", service_root="/srv/hello",
                           service_exec="app.py", service_restart="on-failure", service_stop_timeout_s=30,
                           service_reload_signal=signal)


def test_the_unit_sends_the_signal_on_reload_and_is_unchanged_without_one() -> None:
    assert "ExecReload=/bin/kill -s HUP $MAINPID\n" in _unit("HUP")
    without = _unit("")
    assert "ExecReload" not in without and _unit("HUP").replace("ExecReload=/bin/kill -s HUP $MAINPID\n", "") == without


def _gate(tmp_path: Path, service: dict[str, Any] | None = None) -> dict[str, Any]:
    site = _project(tmp_path, None, service)["site.yml"]
    return next(task for task in _tasks(site) if task.get("name") == GATE)


def test_the_rollout_reloads_only_a_running_host_whose_unit_and_env_file_stayed(tmp_path: Path) -> None:
    gate = _gate(tmp_path, {"reload_signal": "HUP"})["healthcheck"]
    assert gate["restart"] is True and gate["version"] == "{{ rollwright_version }}"  # still gated on the version
    assert gate["reload"] == ("{{ healthcheck_report.active == 'active' and "
                              "not (service_restart_needed | default(false)) }}")


def test_without_a_signal_every_update_restarts(tmp_path: Path) -> None:
    assert "reload" not in _gate(tmp_path)["healthcheck"]


def test_rollback_and_app_restart_always_restart(tmp_path: Path) -> None:
    project = _project(tmp_path, None, {"reload_signal": "USR1"})
    for playbook in ("rollback.yml", "app.yml"):
        gates = [t["healthcheck"] for t in _tasks(project[playbook]) if "healthcheck" in t]
        assert gates and not any("reload" in gate for gate in gates), playbook


def test_only_signals_a_server_reloads_on(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(_spec(tmp_path, None, {"reload_signal": "KILL"}))
    assert "service.reload_signal" in str(error.value)
