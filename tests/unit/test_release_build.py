"""release.build, host hooks and apps without a service: the spec's rules, the plays they render, and the
release_run module's once-per-release marker (run by ansible on this machine)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from role_files import run_role_module

from rollwright.render import playbooks
from rollwright.render.project import prepare, render
from rollwright.spec.loader import load_spec
from rollwright.spec.model import Spec

SHA = "a" * 64
ARTIFACT = {"path": "dist/shop.tgz", "version": "1.0.0", "sha256": SHA}
SITE: dict[str, Any] = {"app": "site", "artifact": ARTIFACT, "release": {"root": "/srv/site"}}  # files only
BASE: dict[str, Any] = {  # a service whose release is built, with hooks around each switch
    **SITE, "app": "shop", "release": {"root": "/srv/shop", "build": ["python manage.py collectstatic --noinput"]},
    "service": {"exec": "bin/shop", "user": "shop", "env": {"SECRET": "{{ vault_secret }}"}},
    "health": {"path": "/health", "port": 8080}, "rollout": {"load_balancer": {"backend": "shop"}},
    "hooks": {"before_switch": ["./bin/warm"], "after_switch": ["./bin/announce"]}}


def _spec(data: dict[str, Any]) -> Spec:
    return Spec.model_validate(data)


def _tasks(plays: list[dict[str, Any]], play_start: str) -> list[dict[str, Any]]:
    return next(play for play in plays if play["name"].startswith(play_start))["tasks"]


def _names(tasks: list[dict[str, Any]]) -> list[str]:
    return [task["name"] for task in tasks]


def test_an_artifact_without_a_service_is_a_release_of_files() -> None:
    spec = _spec(SITE)
    assert spec.service is None and spec.release is not None and spec.release.owner == "root"


@pytest.mark.parametrize(("data", "message"), [
    ({"app": "x", "release": {"root": "/srv/x", "build": ["make"]}}, "they need 'artifact'"),
    ({"app": "x", "hooks": {"after_switch": ["./notify"]}}, "they need 'artifact'"),
    ({**SITE, "rollout": {"strategy": "canary", "load_balancer": {"backend": "b"}}}, "use strategy rolling"),
    ({**SITE, "health": {"path": "/health", "port": 80}}, "'health.url' or 'smoke'"),
    ({"app": "x", "artifact": ARTIFACT}, "'artifact' needs 'release'"),
    ({**SITE, "release": {"root": "/srv/site", "build": [""]}}, "at least 1 character"),
])
def test_host_work_and_serviceless_rules(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec(data)


def test_the_build_runs_in_the_stage_on_every_host_once_per_release() -> None:
    plays = playbooks.site_plays(_spec(BASE), [])
    stage = next(play for play in plays if play["name"].startswith("Stage the release"))
    assert stage["any_errors_fatal"] is True  # one host's failed build stops the deploy before any switch
    build = stage["tasks"][-1]
    assert build["name"] == playbooks.BUILD_TASK
    args = build["release_run"]
    assert args["marker"] == playbooks.BUILD_MARKER and args["commands"] == "{{ rollwright_release.build }}"
    assert args["env_file"] == "{{ rollwright_runner.env_file }}" and args["user"] == "{{ rollwright_runner.user }}"
    names = [play["name"] for play in plays]
    assert names.index(stage["name"]) < next(i for i, n in enumerate(names) if n.startswith(playbooks.ROLLOUT_PLAY))


def test_host_hooks_surround_the_switch_inside_the_drained_window() -> None:
    tasks = _tasks(playbooks.site_plays(_spec(BASE), []), playbooks.ROLLOUT_PLAY)
    update = next(task for task in tasks if "block" in task)
    assert _names(update["block"]) == [
        playbooks.PHASE_TASK["drain"], playbooks.BEFORE_SWITCH_TASK, playbooks.PHASE_TASK["switch"],
        playbooks.PHASE_TASK["restart"], playbooks.AFTER_SWITCH_TASK, playbooks.PHASE_TASK["undrain"]]
    hooks = [t for t in update["block"] if "release_run" in t]
    assert [t["release_run"]["marker"] for t in hooks] == ["", ""]  # they run whenever the host is updated
    assert [t["release_run"]["env"]["ROLLWRIGHT_PHASE"] for t in hooks] == ["before_switch", "after_switch"]
    assert update["rescue"][0]["ansible.builtin.include_role"]["name"] == "rollback"  # after_switch fails: back


def test_without_a_service_each_batch_only_switches_and_a_failure_switches_back() -> None:
    spec = _spec({**SITE, "hooks": {"after_switch": ["./purge-cdn"]}})
    plays = playbooks.site_plays(spec, [])
    update = next(task for task in _tasks(plays, playbooks.ROLLOUT_PLAY) if "block" in task)
    assert _names(update["block"]) == [playbooks.PHASE_TASK["switch"], playbooks.AFTER_SWITCH_TASK]
    assert update["rescue"][0]["release_switch"]["action"] == "pop"
    stage = _tasks(plays, "Stage the release")
    assert _names(stage) == ["Stage the release (upload, verify sha256, unpack, link shared)"]  # no unit, no user
    rollback = _tasks(playbooks.rollback_plays(spec), playbooks.ROLLBACK_PLAY)
    assert _names(rollback) == [playbooks.ROLLBACK_TASK]
    assert "no service" in json.dumps(playbooks.app_plays(spec))
    report = _tasks(playbooks.status_plays(spec), "Report what every app host runs")
    assert report[0]["vars"]["healthcheck_unit"] == ""
    assert report[1]["ansible.builtin.set_fact"]["rollwright_status_report"]["service"] is False


def _project(tmp_path: Path, data: dict[str, Any]) -> dict[str, bytes]:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "shop.tgz").write_bytes(b"not really a tarball")
    sha = hashlib.sha256(b"not really a tarball").hexdigest()
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  children:\n    app:\n      hosts: {app1: {}}\n    lb:\n      hosts: {lb1: {}}\n")
    spec = {**data, "artifact": {**data["artifact"], "sha256": sha},
            "targets": {"lab": {"inventory": "inventory.yml"}}}
    (tmp_path / "rollwright.yml").write_text(yaml.safe_dump(spec))
    return render(prepare(load_spec(tmp_path / "rollwright.yml"), "lab"))


def test_commands_reach_the_hosts_as_data_and_the_runner_is_the_service_user(tmp_path: Path) -> None:
    data = {**BASE, "release": {"root": "/srv/shop", "build": ["echo {{ lookup('pipe', 'id') }} $HOME"]}}
    values = _project(tmp_path, data)["group_vars/all/rollwright.yml"].decode()
    assert "- !unsafe 'echo {{ lookup(''pipe'', ''id'') }} $HOME'" in values
    runner = yaml.safe_load(values.replace("!unsafe", ""))["rollwright_runner"]
    assert runner == {"user": "shop", "group": "shop", "env_file": "/etc/rollwright/shop.env"}
    assert "SECRET" not in values.split("rollwright_runner:")[1].split("rollwright_service:")[0]  # a path, no values


def _staged(tmp_path: Path) -> Path:
    release = tmp_path / "srv" / "releases" / "1.0.0"
    release.mkdir(parents=True)
    (release / "REVISION").write_text("1.0.0\n")
    return tmp_path / "srv"


def test_release_run_skips_a_release_whose_marker_matches_and_check_mode_runs_nothing(tmp_path: Path) -> None:
    root = _staged(tmp_path)
    args = {"root": str(root), "version": "1.0.0", "commands": ["touch ran"], "marker": ".rollwright-build"}
    checked = run_role_module("release", "release_run", args, "--check")
    assert checked["failed"] is False and checked["changed"] is True and checked["ran"] == []
    assert not (root / "releases" / "1.0.0" / "ran").exists()
    digest = hashlib.sha256(json.dumps(["touch ran"]).encode()).hexdigest()
    (root / "releases" / "1.0.0" / ".rollwright-build").write_text(digest + "\n")
    done = run_role_module("release", "release_run", args)
    assert done["failed"] is False and done["changed"] is False and done["ran"] == []
    changed = run_role_module("release", "release_run", {**args, "commands": ["touch other"]}, "--check")
    assert changed["changed"] is True  # other commands: the marker no longer matches, the build runs again


def test_release_run_refuses_a_release_that_is_not_staged(tmp_path: Path) -> None:
    result = run_role_module("release", "release_run", {"root": str(tmp_path), "version": "9.9.9",
                                                        "commands": ["true"]})
    assert result["failed"] is True and "is not a staged release" in result["msg"]


def test_verify_of_a_release_of_files_checks_current_and_its_owner_only(tmp_path: Path) -> None:
    files = _project(tmp_path, {**SITE, "release": {"root": "/srv/site", "owner": "www-data"}})
    suite = files["verify/test_app.py"].decode()
    assert "SERVICE = ''" in suite and "RELEASE_OWNER = 'www-data'" in suite
    tests = sorted(line.split("(")[0][4:] for line in suite.splitlines() if line.startswith("def test_"))
    assert tests == ["test_current_is_the_deployed_release", "test_release_folder_owner_and_mode"]


def test_after_stage_hooks_run_once_on_the_control_node_after_every_host_staged() -> None:
    """Control-node hooks, as the spec says: not on each app host, where the project's files/ does not exist."""
    spec = _spec({**BASE, "hooks": {"after_stage": ["./notify staged"]}})
    stage = _tasks(playbooks.site_plays(spec, []), "Stage the release")
    hook = stage[-1]
    assert hook["name"] == "Run after_stage hook 1" and _names(stage).index(hook["name"]) > 0
    assert hook["delegate_to"] == "localhost" and hook["run_once"] is True
    assert hook["ansible.builtin.command"]["argv"][-1] == "./notify staged"
