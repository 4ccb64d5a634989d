"""The load balancer's kinds: their spec rules, and what each renders into the playbooks (haproxy's are covered by
the committed playbooks/hello; here command and none), the plan and verify. The lab runs them for real
(tests/lab/test_load_balancers.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_generate import assert_lints_production

from rollwright.cli import main
from rollwright.render.project import prepare, render
from rollwright.spec.loader import SpecError, load_spec

SHA = "a" * 64
HOSTILE = "./lb.sh drain \"{{ lookup('pipe', 'touch pwned') }}\" $ROLLWRIGHT_HOST"
COMMAND_LB = {"kind": "command", "drain": HOSTILE, "wait": "aws elbv2 wait target-deregistered",
              "undrain": "./lb.sh undrain", "ready": "aws elbv2 wait target-in-service"}
INVENTORY = {"all": {"children": {
    "app": {"hosts": {"app1": {"ansible_host": "192.0.2.11"}, "app2": {"ansible_host": "192.0.2.12"}}},
    "lb": {"hosts": {"lb1": {"ansible_host": "192.0.2.2"}}}}}}


def _spec(folder: Path, rollout: dict[str, Any] | None, service: dict[str, Any] | None = None) -> Path:
    (folder / "dist").mkdir(exist_ok=True)
    (folder / "dist" / "hello-1.0.0.tar.gz").write_bytes(b"x")
    (folder / "lb.sh").write_text("#!/bin/sh\n")
    (folder / "inventory.yml").write_text(yaml.safe_dump(INVENTORY))
    spec = {"app": "hello", "artifact": {"path": "dist/hello-1.0.0.tar.gz", "version": "1.0.0", "sha256": SHA},
            "release": {"root": "/srv/hello"},
            "service": {"exec": "python3 app.py", "user": "hello", **(service or {})},
            "health": {"path": "/health", "port": 8080}, "rollout": rollout or {},
            "targets": {"lab": {"inventory": "inventory.yml"}}}
    path = folder / "rollwright.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _project(folder: Path, rollout: dict[str, Any] | None, service: dict[str, Any] | None = None) -> dict[str, Any]:
    files = render(prepare(load_spec(_spec(folder, rollout, service)), "lab", artifact_required=False))
    return {name: (yaml.safe_load(data.replace(b"!unsafe", b"")) if name.endswith(".yml") else data)
            for name, data in files.items()}


def _tasks(plays: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every task of the plays, blocks and rescues flattened."""
    found = []

    def walk(tasks: list[dict[str, Any]]) -> None:
        for task in tasks:
            found.append(task)
            walk(task.get("block", []) + task.get("rescue", []))

    for play in plays:
        walk(play.get("tasks", []))
    return found


def _named(plays: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [task for task in _tasks(plays) if task.get("name") == name]


@pytest.mark.parametrize(("load_balancer", "message"), [
    ({"hosts": "lb"}, "rollout.load_balancer: required field missing: backend"),
    ({"kind": "command", "drain": "./out.sh"}, "kind command needs 'drain' and 'undrain'"),
    ({"kind": "command", "drain": "a", "undrain": "b", "backend": "app"}, "'backend' is only for kind haproxy"),
    ({"kind": "command", "drain": "a", "undrain": "b", "socket": "/run/x.sock"}, "'socket' is only for kind haproxy"),
    ({"backend": "app", "drain": "./out.sh"}, "'drain' is only for kind command"),
    ({"kind": "none", "on": "lb"}, "'on' is only for kind command"),
    ({"backend": "app", "timeout_s": 60}, "'timeout_s' is only for kind command"),
    ({"kind": "nginx"}, "rollout.load_balancer.kind"),
])
def test_each_kind_takes_only_its_settings(tmp_path: Path, load_balancer: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(_spec(tmp_path, {"load_balancer": load_balancer}))
    assert message in str(error.value)
    assert f"{tmp_path / 'rollwright.yml'}:" in str(error.value)


@pytest.mark.parametrize("strategy", ["canary", "blue_green"])
@pytest.mark.parametrize("kind", [{"kind": "none"}, COMMAND_LB])
def test_canary_and_blue_green_need_haproxy(tmp_path: Path, strategy: str, kind: dict[str, Any]) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(_spec(tmp_path, {"strategy": strategy, "load_balancer": kind}))
    assert f"strategy '{strategy}' needs 'load_balancer' of kind haproxy" in str(error.value)


def test_the_old_form_still_means_haproxy(tmp_path: Path) -> None:
    lb = load_spec(_spec(tmp_path, {"load_balancer": {"backend": "app"}})).spec.rollout.load_balancer
    assert lb is not None and (lb.kind, lb.hosts, lb.backend) == ("haproxy", "lb", "app")


def test_command_kind_runs_the_spec_commands_as_data_with_the_host_in_the_environment(tmp_path: Path) -> None:
    project = _project(tmp_path, {"load_balancer": COMMAND_LB})
    site = project["site.yml"]
    raw = render(prepare(load_spec(tmp_path / "rollwright.yml"), "lab", artifact_required=False))["site.yml"]
    assert b"!unsafe './lb.sh drain" in raw  # never templated: the lookup stays text for /bin/sh
    names = ["Drain this host in the load balancer", "Wait until the load balancer drained this host",
             "Put this host back in the load balancer", "Wait until the load balancer serves this host again"]
    update = next(t for t in _tasks(site) if t.get("name", "").startswith("Update this host"))
    assert [t["name"] for t in update["block"]] == [names[0], names[1], "Switch current to the new release",
                                                   "Restart the service and wait until the new version is healthy",
                                                   names[2], names[3]]
    assert [t["name"] for t in update["rescue"]][1:3] == names[2:]  # the host goes back in after its rollback
    drain = update["block"][0]
    assert drain["ansible.builtin.command"]["argv"] == ["/bin/sh", "-c", HOSTILE]
    assert drain["ansible.builtin.command"]["chdir"] == "{{ playbook_dir }}/files"
    assert (drain["delegate_to"], drain["become"]) == ("localhost", False)
    assert drain["environment"] == {
        "ROLLWRIGHT_HOST": "{{ inventory_hostname }}",
        "ROLLWRIGHT_ADDRESS": "{{ hostvars[inventory_hostname].ansible_host | default(inventory_hostname) }}",
        "ROLLWRIGHT_PORT": "8080", "ROLLWRIGHT_APP": "hello", "ROLLWRIGHT_VERSION": "{{ rollwright_version }}",
        "ROLLWRIGHT_ACTION": "drain"}
    assert project["files/lb.sh"] == b"#!/bin/sh\n"  # the script a command names comes along
    # nothing of HAProxy: no server states, no socket check, no verify of its backend
    everything = str({name: data for name, data in project.items() if (name.endswith(".yml") and "/" not in name)
                      or name.startswith("group_vars")})
    assert "haproxy" not in everything and "rollwright_lb" not in everything
    assert not any(name.startswith("verify/test_lb") for name in project)
    # rollback.yml, app.yml and undrain.yml take the host out and back with the same commands
    for playbook in ("rollback.yml", "app.yml", "undrain.yml"):
        assert _named(project[playbook], names[0] if playbook != "undrain.yml" else names[2]), playbook
        assert all(t["environment"]["ROLLWRIGHT_VERSION"] == "" for t in _tasks(project[playbook])
                   if t.get("name") in names), playbook
    # undrain.yml (the runner's repair) puts back only a host that answers healthy
    undrain = [t["name"] for t in _tasks(project["undrain.yml"])]
    assert undrain.index("Check this host is healthy before it goes back") < undrain.index(names[2])


def test_command_kind_on_a_group_runs_on_each_of_its_hosts(tmp_path: Path) -> None:
    project = _project(tmp_path, {"load_balancer": {**COMMAND_LB, "on": "lb"}})
    drain = _named(project["site.yml"], "Drain this host in the load balancer")[0]
    assert (drain["delegate_to"], drain["loop"]) == ("{{ item }}", "{{ groups['lb'] | default([]) }}")
    assert "chdir" not in drain["ansible.builtin.command"] and "become" not in drain
    assert "files/lb.sh" not in project  # runs on the lb hosts: nothing to carry
    check = _named(project["preflight.yml"], "Check the load balancer's command hosts are in the inventory")
    assert check and check[0]["ansible.builtin.assert"]["that"] == ["groups['lb'] | default([]) | length > 0"]
    assert "lb" in project["finish.yml"][0]["hosts"].split(":")  # its hosts get the audit line


def test_every_load_balancer_command_has_a_time_limit(tmp_path: Path) -> None:
    """A hung command (a cloud CLI waiting forever) fails its task instead of holding the deploy and its lock."""
    (tmp_path / "default").mkdir()
    (tmp_path / "named").mkdir()
    default = _tasks(_project(tmp_path / "default", {"load_balancer": COMMAND_LB})["site.yml"])
    assert {task["timeout"] for task in default if "ROLLWRIGHT_ACTION" in task.get("environment", {})} == {300}
    named = _tasks(_project(tmp_path / "named", {"load_balancer": {**COMMAND_LB, "timeout_s": 900}})["site.yml"])
    assert {task["timeout"] for task in named if "ROLLWRIGHT_ACTION" in task.get("environment", {})} == {900}


@pytest.mark.parametrize("rollout", [{"load_balancer": {"kind": "none"}}, None])
def test_kind_none_is_no_load_balancer(tmp_path: Path, rollout: dict[str, Any] | None) -> None:
    project = _project(tmp_path, rollout)
    plays = {name: project[name] for name in ("site.yml", "rollback.yml", "app.yml", "undrain.yml", "status.yml")}
    assert not any("load balancer" in task.get("name", "") for name in plays if name != "undrain.yml"
                   for task in _tasks(plays[name]))
    assert _named(project["undrain.yml"], "Say there is no load balancer")
    rollout_play = next(p for p in project["site.yml"] if p["name"].startswith("Roll out in batches"))
    assert rollout_play["serial"] == [1, "50%", "100%"]  # still batch by batch, each health-gated


def test_same_project_for_kind_none_as_without_a_load_balancer(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    none = render(prepare(load_spec(_spec(tmp_path / "a", {"load_balancer": {"kind": "none"}})), "lab"))
    without = render(prepare(load_spec(_spec(tmp_path / "b", None)), "lab"))
    differ = [name for name in none if none[name] != without.get(name)]
    assert all(name.endswith("README.md") or name in ("rollwright.yml",) for name in differ), differ


@pytest.mark.parametrize(("load_balancer", "says"), [
    ({"backend": "app"}, "Batch 1: drain in app on lb, switch current, restart, health gate, undrain"),
    (COMMAND_LB, "Batch 1: drain with the load balancer's commands on the control node, switch current"),
    ({**COMMAND_LB, "on": "lb"}, "Batch 1: drain with the load balancer's commands on lb, switch current"),
    ({"kind": "none"}, "Batch 1: switch current, restart, health gate  @ app1"),
])
def test_plan_says_how_each_host_leaves_service(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                load_balancer: dict[str, Any], says: str) -> None:
    assert main(["plan", "-f", str(_spec(tmp_path, {"load_balancer": load_balancer})), "-t", "lab"]) == 0
    assert says in capsys.readouterr().out


def test_command_kind_project_passes_syntax_check_and_lint(tmp_path: Path, tool_env: dict[str, str]) -> None:
    spec = _spec(tmp_path, {"load_balancer": {**COMMAND_LB, "on": "lb"}})
    assert main(["generate", "-f", str(spec), "-t", "lab", "-o", str(tmp_path / "out")]) == 0
    playbooks = ["site.yml", "rollback.yml", "undrain.yml", "app.yml", "status.yml", "preflight.yml"]
    syntax = subprocess.run(["ansible-playbook", "--syntax-check", *playbooks], cwd=tmp_path / "out", env=tool_env,
                            capture_output=True, text=True, timeout=300)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    assert_lints_production(tmp_path / "out", tool_env, *playbooks)
