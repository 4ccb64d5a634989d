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

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "roles/service/templates"


def _render(name: str, env: dict[str, Any], version: str = "2.0.0") -> str:
    """A roles/service template as Ansible's template lookup renders it (trim_blocks)."""
    environment = jinja2.Environment(trim_blocks=True)
    environment.filters["to_json"] = json.dumps
    template = environment.from_string((TEMPLATES / name).read_text())
    return template.render(ansible_managed="managed", service_env=env, service_version=version,
                           service_root="/srv/hello")


def _values(text: str) -> dict[str, str]:
    """An env file's assignments as systemd reads them (a later one wins)."""
    return {line.split("=", 1)[0]: json.loads(line.split("=", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def _install_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("service_install", REPO / "roles/service/library/service_install.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_env_names_the_version_its_release_folder_and_the_otel_service_version() -> None:
    assert _values(_render("service.version.env.j2", {"API_TOKEN": "s3cret"})) == {
        "ROLLWRIGHT_VERSION": "2.0.0", "ROLLWRIGHT_RELEASE": "/srv/hello/releases/2.0.0",
        "OTEL_RESOURCE_ATTRIBUTES": "service.version=2.0.0"}


def test_the_specs_otel_attributes_are_kept_and_service_version_is_the_deployed_one() -> None:
    env = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod, service.version=0.9,team=web,"}
    whole = _render("service.env.j2", env) + _render("service.version.env.j2", env)
    assert _values(whole)["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment=prod,team=web,service.version=2.0.0"


def test_without_a_version_nothing_is_added() -> None:
    assert _render("service.version.env.j2", {"A": "1"}, version="").strip() == ""


def test_only_the_envs_own_lines_decide_a_restart() -> None:
    module = _install_module()
    env = _render("service.env.j2", {"A": "1"})
    old = env + module.VERSION_MARK + _render("service.version.env.j2", {"A": "1"}, "1.0.0")
    assert not module.env_changed(old, env)  # another version only: a reload stays a reload
    assert not module.env_changed(env, env)  # a file written before the version was in it: no restart for it
    assert module.env_changed(old, _render("service.env.j2", {"A": "2"}))
    assert module.env_changed(None, env)


def test_the_service_and_every_process_get_the_deployed_version(tmp_path: Path) -> None:
    site = _project(tmp_path, None, None)["site.yml"]
    installs = [task for task in _tasks(site) if str(task.get("name", "")).startswith("Install the account")]
    assert installs and all(task["vars"]["service_version"] == "{{ rollwright_version }}" for task in installs)
    assert "service_version" in yaml.safe_load((REPO / "roles/service/meta/argument_specs.yml").read_text())[
        "argument_specs"]["processes"]["options"]
