"""Values are data, never templates: a Jinja or shell payload in any string of the spec, a CLI option or
the environment reaches the generated playbooks and Ansible's extra vars only as `!unsafe` text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollwright.cli import main

VENV_BIN = Path(sys.executable).parent
MARK = "rwi-"


def jinja(field: str) -> str:
    return f"{{{{ lookup('pipe', 'touch /tmp/{MARK}{field}') }}}}"


def shell(field: str) -> str:
    return f"$(touch /tmp/{MARK}{field}-sh)"


# every string field that validation accepts free text in, with a payload naming the field
FIELDS = {
    "artifact.path": "dist/{}.tar.gz", "release.root": "/srv/{}", "release.shared": "log{}",
    "service.exec": "bin/app {}", "service.working_dir": "web/{}", "health.path": "/health?{}",
    "health.url": "http://127.0.0.1/{}", "lb.socket": "/run/{}", "backup.dir": "/var/backups/{}",
    "migrations.command": "{}", "migrations.status_command": "{}", "migrations.ack": "{}",
    "group.hosts": "{}", "group.build": "{}", "group.deploy": "{} {{file}}",
    "smoke.nm": "{}", "smoke.url": "http://127.0.0.1/{}", "smoke.contains": "{}", "smoke.command": "{}",
    "hook.before": "{}", "hook.stage": "{}", "hook.after": "{}", "hook.failure": "{}",
}


def payload(field: str) -> str:
    return FIELDS[field].format(jinja(field) + " " + shell(field))


def hostile_spec() -> dict[str, Any]:
    p = payload
    return {
        "app": "inject",
        "artifact": {"path": p("artifact.path"), "version": "1.0.0", "sha256": "0" * 64},
        "release": {"root": p("release.root"), "shared": [p("release.shared")]},
        "service": {"exec": p("service.exec"), "user": "app", "working_dir": p("service.working_dir"),
                    "env": {"SECRET": "{{ vault_secret }}", "PLAIN": shell("service.env")}},
        "health": {"path": p("health.path"), "port": 8080, "url": p("health.url")},
        "rollout": {"strategy": "rolling", "load_balancer": {"backend": "app", "socket": p("lb.socket")}},
        "database": {"name": "app", "backup": {"dir": p("backup.dir")},
                     "migrations": {"tool": "command", "command": p("migrations.command"),
                                    "status_command": p("migrations.status_command"),
                                    "acknowledge_destructive": [p("migrations.ack")]}},
        "groups": [{"name": "g", "hosts": p("group.hosts"), "build_command": p("group.build"),
                    "deploy_command": p("group.deploy"), "file_patterns": ["src/*.txt"]}],
        "smoke": [{"name": p("smoke.nm"), "url": p("smoke.url"), "contains": p("smoke.contains")},
                  {"command": p("smoke.command")}],
        "hooks": {"before_deploy": [p("hook.before")], "after_stage": [p("hook.stage")],
                  "after_deploy": [p("hook.after")], "on_failure": [p("hook.failure")]},
    }


class Text(str):
    """A plain YAML string: Ansible templates it."""


class Data(str):
    """An `!unsafe` YAML string: Ansible never templates it."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: Data(loader.construct_scalar(node)))
_Loader.add_constructor("tag:yaml.org,2002:str", lambda loader, node: Text(loader.construct_scalar(node)))


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*strings(key), *strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_no_spec_string_reaches_a_playbook_as_a_template(tmp_path: Path) -> None:
    """Every payload is in the generated project, and only ever inside an `!unsafe` string."""
    spec = tmp_path / "rollwright.yml"
    spec.write_text(yaml.safe_dump(hostile_spec()))
    artifact = tmp_path / payload("artifact.path")
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"")  # the project carries a copy of it
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / f"{{{{ lookup('pipe', 'touch {MARK}group.file') }}}}.txt").touch()  # a file name is data too
    assert main(["generate", "-f", str(spec), "-o", str(tmp_path / "out")]) == 0
    found = [s for path in sorted((tmp_path / "out").rglob("*.yml"))
             if path.relative_to(tmp_path / "out").parts[0] not in ("roles", "inventory")
             for s in strings(yaml.load(path.read_text(), Loader=_Loader))]
    templates = [s for s in found if isinstance(s, Text) and MARK in s and "{" in s]
    assert not templates, f"spec text Ansible would template: {templates}"
    data = " ".join(s for s in found if isinstance(s, Data))
    # the artifact reaches the project as a copy under its file name only (the payload's last path part)
    assert [p.name for p in (tmp_path / "out" / "artifact").iterdir()] == [artifact.name]
    missing = [field for field in [*FIELDS, "group.file"]
               if field != "artifact.path" and f"{MARK}{field}'" not in data]
    missing += [] if any(f"{MARK}service.env-sh" in s for s in found) else ["service.env"]
    assert not missing, f"payloads not rendered at all (the test would prove nothing): {missing}"
    values = yaml.load((tmp_path / "out" / "group_vars/all/rollwright.yml").read_text(), Loader=_Loader)
    assert values["rollwright_service"]["env"]["SECRET"] == "{{ vault_secret }}"  # a reference stays one
    assert isinstance(values["rollwright_service"]["env"]["SECRET"], Text)


@pytest.mark.parametrize("value", ["postgres://{{ user }}@db/app", "{{ lookup('pipe', 'id') }}",
                                   "{% if 1 %}x{% endif %}", "{# c #}", "{{ a }}{{ b }}"])
def test_a_service_env_template_other_than_a_whole_reference_is_refused(
        tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec_data = hostile_spec()
    spec_data["service"]["env"] = {"URL": value}
    spec = tmp_path / "rollwright.yml"
    spec.write_text(yaml.safe_dump(spec_data))
    assert main(["generate", "-f", str(spec), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "service.env.URL" in err and "only a whole '{{ variable_name }}'" in err, err
    assert not (tmp_path / "out").exists()


def test_cli_options_and_environment_reach_ansible_as_data(tmp_path: Path) -> None:
    """A real deploy on the control node: `--message` (kept in the lock) and the operator's name from the
    environment (in the audit line) carry payloads; nothing runs, and the audit line holds them verbatim."""
    (tmp_path / "rollwright.yml").write_text("app: inject\ngroups:\n  - name: g\n    build_command: 'true'\n")
    markers = [tmp_path / f"{MARK}{name}" for name in ("message", "message-sh", "user", "user-sh")]
    message = (f"{{{{ lookup('ansible.builtin.pipe', 'touch {markers[0]}') }}}} $(touch {markers[1]}) "
               "{% raw %}\"quoted\" ünïcode")
    user = f"{{{{ lookup('ansible.builtin.pipe', 'touch {markers[2]}') }}}}`touch {markers[3]}`"
    proc = subprocess.run([str(VENV_BIN / "rollwright"), "deploy", "--message", message], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "SUDO_USER": user})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [m.name for m in markers if m.exists()] == []
    audit = (tmp_path / ".rollwright" / "local" / "audit.log").read_text()
    assert f"by {user}@" in audit, audit
