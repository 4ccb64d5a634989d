"""The deployed version in the service's environment (issue 22): the env file ends with ROLLWRIGHT_VERSION,
ROLLWRIGHT_RELEASE and OTEL_RESOURCE_ATTRIBUTES (the spec's attributes kept, service.version the deployed
version), and a change of those lines alone is no reason to restart, so a reload stays a reload. The lab checks
the environment of the running processes (tests/lab/test_rollout.py, tests/lab/test_load_balancers.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
import yaml
from test_load_balancer_kinds import _project, _tasks

from rollwright.render.playbooks import ROLLBACK_VERSION_TASK

REPO = Path(__file__).resolve().parents[2]


def _env(env: dict[str, Any]) -> str:
    """roles/service's env template as Ansible's template lookup renders it (trim_blocks)."""
    environment = jinja2.Environment(trim_blocks=True)
    environment.filters["to_json"] = json.dumps
    template = environment.from_string((REPO / "roles/service/templates/service.env.j2").read_text())
    return template.render(ansible_managed="managed", service_env=env)


def _values(text: str) -> dict[str, str]:
    """An env file's assignments as systemd reads them (a later one wins)."""
    return {line.split("=", 1)[0]: json.loads(line.split("=", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def _service_env() -> ModuleType:
    path = REPO / "roles/service/module_utils/service_env.py"
    spec = importlib.util.spec_from_file_location("service_env", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_env_names_the_version_its_release_folder_and_the_otel_service_version() -> None:
    env = _env({"API_TOKEN": "s3cret"})
    whole = _service_env().with_version(env, "2.0.0", "/srv/hello/")
    assert whole.startswith(env) and _values(whole) == {
        "API_TOKEN": "s3cret", "ROLLWRIGHT_VERSION": "2.0.0", "ROLLWRIGHT_RELEASE": "/srv/hello/releases/2.0.0",
        "OTEL_RESOURCE_ATTRIBUTES": "service.version=2.0.0"}


def test_the_specs_otel_attributes_are_kept_and_service_version_is_the_deployed_one() -> None:
    env = _env({"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod, service.version=0.9,team=web,"})
    assert _values(_service_env().with_version(env, "2.0.0", "/srv/hello"))["OTEL_RESOURCE_ATTRIBUTES"] == (
        "deployment.environment=prod,team=web,service.version=2.0.0")


def test_without_a_version_nothing_is_added() -> None:
    env = _env({"A": "1"})
    assert _service_env().with_version(env, "", "/srv/hello") == env


def test_only_the_envs_own_lines_decide_a_restart_and_a_rollback_rewrites_only_the_version() -> None:
    service_env = _service_env()
    env = _env({"A": "1", "OTEL_RESOURCE_ATTRIBUTES": "team=web"})
    old = service_env.with_version(env, "1.0.0", "/srv/hello")
    assert not service_env.env_changed(old, env)  # another version only: a reload stays a reload
    assert not service_env.env_changed(env, env)  # a file written before the version was in it: no restart for it
    assert service_env.env_changed(old, _env({"A": "2", "OTEL_RESOURCE_ATTRIBUTES": "team=web"}))
    assert service_env.env_changed(None, env)
    new = service_env.with_version(env, "2.0.0", "/srv/hello")
    back = service_env.with_version(service_env.own_lines(new), "1.0.0", "/srv/hello")  # service_version's rewrite
    assert back == old and _values(back)["OTEL_RESOURCE_ATTRIBUTES"] == "team=web,service.version=1.0.0"


def test_a_rollback_restart_names_the_release_it_restarts_in() -> None:
    rollback = yaml.safe_load((REPO / "roles/rollback/tasks/main.yml").read_text())
    restart = next(task for task in rollback if task["name"] == "Restart the service on the old release")
    assert restart["vars"]["service_version"] == "{{ release_switch_result.current }}"
    tasks = yaml.safe_load((REPO / "roles/service/tasks/restart.yml").read_text())
    assert [task.get("service_version") is not None for task in tasks].index(True) < [
        "ansible.builtin.systemd_service" in task for task in tasks].index(True)


def test_the_service_and_every_process_get_the_deployed_version(tmp_path: Path) -> None:
    site = _project(tmp_path, None, None)["site.yml"]
    installs = [task for task in _tasks(site) if str(task.get("name", "")).startswith("Install the account")]
    assert installs and all(task["vars"]["service_version"] == "{{ rollwright_version }}" for task in installs)
    assert "service_version" in yaml.safe_load((REPO / "roles/service/meta/argument_specs.yml").read_text())[
        "argument_specs"]["processes"]["options"]


def test_rollback_yml_names_the_release_now_current_before_it_restarts_it(tmp_path: Path) -> None:
    project = _project(tmp_path, None, None)
    tasks = _tasks(project["rollback.yml"])
    names = [task.get("name") for task in tasks]
    named = tasks[names.index(ROLLBACK_VERSION_TASK)]
    assert named["service_version"]["version"] == "{{ rollwright_back.current }}" and "rollwright_back" in named["when"]
    assert names.index(ROLLBACK_VERSION_TASK) < names.index("Restart the release now current and wait until it is "
                                                            "healthy")
    assert "roles/service/library" in project["ansible.cfg"].decode()  # the module is called outside the role
