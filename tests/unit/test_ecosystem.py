"""The generated project in the Ansible ecosystem's tools, for real: ansible-builder makes the execution
environment's build context from execution-environment.yml as written, ansible-navigator runs site.yml with the
project's settings file, and ARA's callback finds every run of a deploy labelled with its id."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from rollwright.cli import main
from rollwright.run.deploy import ara_labels
from rollwright.run.records import Record, now
from rollwright.spec.loader import SpecError, load_spec

VENV_BIN = Path(sys.executable).parent
STAMP_SPEC = """\
app: stamped
groups:
  - name: stamp
    build_command: "echo stamped >> {out}/stamped.txt"
"""  # the built-in local target (the control node), so a real run needs no hosts


def _project(tmp_path: Path, extra: str = "") -> Path:
    """A generated project of STAMP_SPEC (plus `extra` spec text) for the local target; its command writes
    stamped.txt in tmp_path."""
    (tmp_path / "rollwright.yml").write_text(STAMP_SPEC.format(out=tmp_path) + extra)
    assert main(["generate", "-f", str(tmp_path / "rollwright.yml"), "-o", str(tmp_path / "project")]) == 0
    return tmp_path / "project"


@pytest.mark.parametrize(("extra", "image", "package_manager"), [
    ("", "quay.io/centos/centos:stream10", "/usr/bin/dnf"),
    ("execution_environment:\n  base_image: registry.access.redhat.com/ubi10/ubi-minimal:latest\n"
     "  package_manager_path: /usr/bin/microdnf\n", "registry.access.redhat.com/ubi10/ubi-minimal:latest",
     "/usr/bin/microdnf"),
])
def test_ansible_builder_creates_the_build_context_as_written(tmp_path: Path, tool_env: dict[str, str], extra: str,
                                                              image: str, package_manager: str) -> None:
    """`ansible-builder create` (no container engine needed) accepts the definition and writes a Containerfile
    on the spec's base image that installs python3 with its package manager, then ansible-core and runner."""
    project = _project(tmp_path, extra)
    proc = subprocess.run([str(VENV_BIN / "ansible-builder"), "create", "--output-filename", "Containerfile"],
                          cwd=project, env=tool_env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "Complete! The build context can be found at" in proc.stdout, \
        proc.stdout + proc.stderr
    containerfile = (project / "context" / "Containerfile").read_text()
    args = dict(re.findall(r'^ARG (\w+)="(.*)"$', containerfile, re.MULTILINE))
    assert args["EE_BASE_IMAGE"] == image and args["PKGMGR"] == package_manager
    assert (args["PYPKG"], args["PYCMD"]) == ("python3", "/usr/bin/python3")
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    assert "RUN $PKGMGR install $PYPKG -y" in containerfile
    # the refs are expanded unquoted in a shell: each must stay one word (no redirection, no glob)
    assert "RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS" in containerfile
    assert shlex.split(args["ANSIBLE_INSTALL_REFS"]) == ["ansible-core~=2.19.0", "ansible-runner~=2.4"]
    assert not set(args["ANSIBLE_INSTALL_REFS"]) & set("<>|;&*?[]$`'\"")
    assert "RUN /output/scripts/check_ansible $PYCMD" in containerfile  # the image refuses to build without them
    assert (project / "context" / "_build" / "bindep.txt").read_text().split("\n")[0] == \
        "openssh-clients [platform:rpm]"


@pytest.mark.parametrize("image", [
    "ee-minimal:latest",  # no registry: each engine would resolve it through its own search list
    "quay.io/centos/centos",  # no tag or digest
    "quay.io/centos/centos:{{ lookup('pipe', 'id') }}",
    "quay.io/centos/centos:stream10 --privileged",
])
def test_a_base_image_must_be_fully_qualified(tmp_path: Path, image: str) -> None:
    (tmp_path / "rollwright.yml").write_text(f"app: ee\nexecution_environment:\n  base_image: {json.dumps(image)}\n")
    with pytest.raises(SpecError, match=r"rollwright\.yml:3:\d+: execution_environment\.base_image"):
        load_spec(tmp_path / "rollwright.yml")


def test_generate_takes_the_base_image_from_the_command_line(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """--ee-base-image/--ee-package-manager win over the spec's, for this run; a bad image is exit 2, nothing
    written."""
    (tmp_path / "rollwright.yml").write_text(STAMP_SPEC.format(out=tmp_path))
    argv = ["generate", "-f", str(tmp_path / "rollwright.yml"), "-o", str(tmp_path / "project")]
    image = "registry.access.redhat.com/ubi9/ubi-minimal:latest"
    assert main([*argv, "--ee-base-image", image, "--ee-package-manager", "/usr/bin/microdnf"]) == 0
    ee = (tmp_path / "project" / "execution-environment.yml").read_text()
    assert f"name: {image}\n" in ee and "package_manager_path: /usr/bin/microdnf" in ee
    assert main(["generate", "-f", str(tmp_path / "rollwright.yml"), "-o", str(tmp_path / "other"),
                 "--ee-base-image", "quay.io/x/y:{{ lookup('pipe', 'id') }}"]) == 2
    assert "--ee-base-image" in capsys.readouterr().err and not (tmp_path / "other").exists()


def test_ansible_navigator_runs_site_yml_with_the_projects_settings(tmp_path: Path, tool_env: dict[str, str]) -> None:
    """`ansible-navigator run site.yml --ee false` in the project: this venv's Ansible (no image pulled, no
    container engine), stdout mode, the project's inventory, and its log and playbook artifact in navigator/."""
    project = _project(tmp_path)
    settings = (project / "ansible-navigator.yml").read_text()
    assert "image: localhost/rollwright-ee:stamped" in settings and "policy: missing" in settings
    env = {**tool_env, "HOME": str(tmp_path / "home")}  # its caches stay in the test's folder
    proc = subprocess.run([str(VENV_BIN / "ansible-navigator"), "run", "site.yml", "--ee", "false"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    said = proc.stdout + proc.stderr
    recap = re.search(r"^localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0\s", proc.stdout,
                      re.MULTILINE)
    assert proc.returncode == 0 and recap and int(recap.group(2)) == 1, said
    assert "PLAY [Group 1: stamp (order 0)]" in proc.stdout, said
    assert (tmp_path / "stamped.txt").read_text() == "stamped\n"
    (artifact,) = (project / "navigator").glob("site-successful-*.json")
    saved = json.loads(artifact.read_text())
    assert saved["status"] == "successful"
    effective = saved["settings_entries"]["ansible-navigator"]
    assert effective["execution-environment"]["enabled"] is False and effective["mode"] == "stdout"
    assert effective["ansible"]["inventory"]["entries"] == [str(project / "inventory")]
    assert (project / "navigator" / "ansible-navigator.log").is_file()


ARA_LIKE_CALLBACK = '''\
import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """What ARA's ara_default callback reads at each play's start: the play's ara_playbook_* variables."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "ara_like"

    def v2_playbook_on_start(self, playbook):
        self.playbook = os.path.basename(playbook._file_name)

    def v2_playbook_on_play_start(self, play):
        found = play._variable_manager.get_vars(play=play)["vars"]
        with open(os.environ["ARA_LIKE_OUT"], "a") as out:
            out.write(json.dumps({"playbook": self.playbook, "name": found.get("ara_playbook_name"),
                                  "labels": list(found.get("ara_playbook_labels") or [])}) + "\\n")
'''


def test_every_run_of_a_deploy_carries_aras_name_and_labels(tmp_path: Path, tool_env: dict[str, str]) -> None:
    """A real deploy with a callback that reads the play variables as ARA's does (enabled as ARA is, by
    ANSIBLE_CALLBACK_PLUGINS alone): each of its runs has the name and the labels, the deploy id the record's."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "ara_like.py").write_text(ARA_LIKE_CALLBACK)
    (tmp_path / "rollwright.yml").write_text(STAMP_SPEC.format(out=tmp_path))
    seen = tmp_path / "seen.jsonl"
    env = {**tool_env, "ANSIBLE_CALLBACK_PLUGINS": str(tmp_path / "plugins"), "ARA_LIKE_OUT": str(seen)}
    proc = subprocess.run([str(VENV_BIN / "rollwright"), "deploy", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = next(e for e in map(json.loads, proc.stdout.splitlines()) if e["event"] == "record")
    plays = [json.loads(line) for line in seen.read_text().splitlines()]
    assert {"site.yml", "finish.yml"} <= {play["playbook"] for play in plays}, plays
    expected = {"name": "stamped local deploy",
                "labels": [f"deploy_id:{record['id']}", "app:stamped", "target:local", "action:deploy"]}
    assert all({key: play[key] for key in expected} == expected for play in plays), plays


def test_a_rollback_is_labelled_with_its_action_and_version() -> None:
    record = Record("shop", "production", "rollback", "1.2.3", "", "rollback to 1.2.3", now())
    assert ara_labels(record) == ("shop production rollback", {
        "deploy_id": record.id, "app": "shop", "target": "production", "action": "rollback", "version": "1.2.3"})
