"""From nothing to a first deploy: the README's quickstart walked literally in a temp folder, `init` (the app's
name, the schema modeline), `target add` adopting an inventory it never rewrites, `--artifact` builds and the
`artifact: {from: FILE}` build file."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from rollwright.cli import main
from rollwright.run import deploy as deploy_module
from rollwright.spec.artifact import version_from_name
from rollwright.spec.loader import load_spec
from rollwright.spec.schema import spec_schema

REPO = Path(__file__).resolve().parents[2]
MODELINE = "# yaml-language-server: $schema=./rollwright.schema.json"
LAB_INVENTORY = """\
# Written by `rollwright lab up --name lab`; rewritten on every up, removed by down, do not edit.
all:
  vars:
    ansible_user: root
    lab_name: lab
  children:
    app:
      hosts:
        app1: {ansible_host: 10.213.7.12}
        app2: {ansible_host: 10.213.7.13}
    lb:
      hosts:
        lb1: {ansible_host: 10.213.7.2}
    db:
      hosts:
        db1: {ansible_host: 10.213.7.3}
"""


def _quickstart() -> list[list[str]]:
    """The commands of the README's quickstart block, continuation lines joined, comments dropped."""
    readme = (REPO / "README.md").read_text()
    start = readme.index("```sh\n", readme.index("## From `rollwright init` to production")) + len("```sh\n")
    block = readme[start:readme.index("```", start)].replace("\\\n", " ")
    return [words for line in block.splitlines() if (words := shlex.split(line, comments=True))]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_readme_quickstart_works_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Every command of the quickstart that needs no hosts, in order; deploys as --dry-run (touch nothing)."""
    app = tmp_path / "myapp"
    (app / "dist").mkdir(parents=True)
    (app / "dist/myapp-1.4.0.tar.gz").write_bytes(b"the build")
    monkeypatch.chdir(app)
    ran = []
    for words in _quickstart():
        if words[0] != "rollwright":
            assert words[0] in ("cd", "$EDITOR"), words
            continue
        command = words[1:]
        if command[0] in ("history", "env") or command[:2] == ["target", "test"]:  # they need hosts or a vault
            continue
        if command[0] == "deploy":
            command.append("--dry-run")
        assert main(command) == 0, (command, capsys.readouterr())
        ran.append(" ".join(command[:2]))
    assert ran == ["init", "validate", "target add", "target add", "target list", "plan -t", "generate -t",
                   "deploy -t", "deploy -t"]
    spec_text = (app / "rollwright.yml").read_text()
    assert spec_text.splitlines()[0] == MODELINE
    assert json.loads((app / "rollwright.schema.json").read_text()) == spec_schema()
    spec = load_spec(app / "rollwright.yml").spec
    assert spec.app == "myapp"
    assert {name: (t.inventory, t.after, t.production, t.become) for name, t in spec.targets.items()} == {
        "staging": ("inventories/staging", None, False, True),
        "production": ("inventories/production", "staging", True, True)}
    staging = yaml.safe_load((app / "inventories/staging/hosts.yml").read_text())["all"]
    assert set(staging["children"]) == {"app", "lb", "db"} and staging["vars"] == {"ansible_user": "deploy"}
    assert (app / "inventories/production/hosts.yml").is_file()
    assert (app / "build/staging/artifact/myapp-1.4.0.tar.gz").read_bytes() == b"the build"
    values = yaml.safe_load((app / "build/staging/group_vars/all/rollwright.yml").read_text())
    assert values["rollwright_version"] == "1.4.0"
    assert values["rollwright_artifact"]["sha256"] == hashlib.sha256(b"the build").hexdigest()
    assert not (app / ".rollwright").exists()  # the dry runs touched nothing
    assert (app / "rollwright.yml").read_text() == spec_text  # --artifact never rewrites the spec


@pytest.mark.parametrize(("files", "app"), [
    ({"package.json": '{"name": "@acme/Shop.Web", "version": "1.0.0"}'}, "shop-web"),
    ({"package.json": '{"name": "storefront"}'}, "storefront"),
    ({"pyproject.toml": '[project]\nname = "Billing_API"\n'}, "billing_api"),
    ({"pyproject.toml": '[tool.poetry]\nname = "ledger"\nversion = "0.1.0"\n'}, "ledger"),
    ({"pyproject.toml": '[project]\nname = "api"\n', "package.json": '{"name": "assets"}'}, "api"),
    ({"pyproject.toml": "[tool.ruff]\nline-length = 100\n", "package.json": '{"name": "web"}'}, "web"),
    ({"package.json": "{not json"}, "my-app"),
    ({"pyproject.toml": "[project\n"}, "my-app"),
    ({"package.json": '{"name": "123"}'}, "app-123"),
    ({}, "my-app"),
])
def test_init_names_the_app_as_the_project_does(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                files: dict[str, str], app: str) -> None:
    project = tmp_path / "My App"
    project.mkdir()
    for name, text in files.items():
        (project / name).write_text(text)
    assert main(["init", str(project)]) == 0
    assert f"app {app}, from " in capsys.readouterr().out
    assert load_spec(project / "rollwright.yml").spec.app == app


def test_init_writes_the_schema_and_the_modeline_and_force_rewrites_both(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path), "--app", "shop"]) == 0
    spec, schema = tmp_path / "rollwright.yml", tmp_path / "rollwright.schema.json"
    assert spec.read_text().startswith(MODELINE + "\n")
    assert json.loads(schema.read_text()) == spec_schema()
    assert load_spec(spec).spec.targets == {}  # targets come from `target add`
    schema.write_text("{}")
    spec.unlink()
    assert main(["init", str(tmp_path)]) == 2  # the schema alone is not overwritten either
    assert "rollwright.schema.json exists; use --force" in capsys.readouterr().err
    assert not spec.exists() and schema.read_text() == "{}"
    spec.write_text("mine")
    assert main(["init", str(tmp_path), "--force"]) == 0
    assert spec.read_text().startswith(MODELINE) and json.loads(schema.read_text()) == spec_schema()
    assert main(["init", str(tmp_path), "--force", "--app", "Not A Name"]) == 2
    assert "--app 'Not A Name'" in capsys.readouterr().err


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """A fresh starter spec (app demo) with no targets."""
    assert main(["init", str(tmp_path), "--app", "demo"]) == 0
    return tmp_path / "rollwright.yml"


@pytest.mark.parametrize("inventory", ["inventories/lab/hosts.yml", "inventories/lab"])
def test_target_add_adopts_an_existing_inventory_without_rewriting_it(
        spec: Path, inventory: str, capsys: pytest.CaptureFixture[str]) -> None:
    hosts = spec.parent / "inventories/lab/hosts.yml"
    hosts.parent.mkdir(parents=True)
    hosts.write_text(LAB_INVENTORY)
    assert main(["target", "add", "lab", "-f", str(spec), "--inventory", inventory]) == 0
    out = capsys.readouterr().out
    assert "adopted the inventory" in out and "(app:2 lb:1 db:1; not rewritten)" in out
    assert hosts.read_text() == LAB_INVENTORY
    assert _files(spec.parent / "inventories") == {"lab/hosts.yml": LAB_INVENTORY.encode()}
    assert load_spec(spec).spec.targets["lab"].inventory == inventory
    assert main(["plan", "-f", str(spec), "-t", "lab"]) == 0
    assert "@ app1" in capsys.readouterr().out
    assert main(["target", "update", "lab", "-f", str(spec), "--add-host", "app:app3=10.213.7.14"]) == 0
    assert hosts.read_text().startswith(LAB_INVENTORY.split("\n", 1)[0])  # an asked-for edit keeps its comments
    assert "app3: {ansible_host: 10.213.7.14}" in hosts.read_text()


def test_target_add_adopts_inventories_name_when_no_host_is_given(spec: Path) -> None:
    shutil.copytree(REPO / "inventories/staging", spec.parent / "inventories/staging")
    before = _files(spec.parent / "inventories")
    assert main(["target", "add", "staging", "-f", str(spec), "--become"]) == 0
    assert _files(spec.parent / "inventories") == before
    assert load_spec(spec).spec.targets["staging"].inventory == "inventories/staging"


@pytest.mark.parametrize(("args", "message"), [
    (["--host", "app:x=192.0.2.1"], "never rewrites an inventory it did not write"),
    (["--var", "ansible_user=deploy"], "never rewrites an inventory it did not write"),
])
def test_target_add_never_rewrites_an_existing_inventory(spec: Path, capsys: pytest.CaptureFixture[str],
                                                         args: list[str], message: str) -> None:
    hosts = spec.parent / "inventories/lab/hosts.yml"
    hosts.parent.mkdir(parents=True)
    hosts.write_text(LAB_INVENTORY)
    before = _files(spec.parent)
    assert main(["target", "add", "lab", "-f", str(spec), "--inventory", "inventories/lab/hosts.yml", *args]) == 2
    assert message in capsys.readouterr().err
    assert _files(spec.parent) == before


def test_target_add_refuses_an_inventory_without_hosts(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hosts = spec.parent / "inventories/empty/hosts.yml"
    hosts.parent.mkdir(parents=True)
    hosts.write_text("all:\n  vars:\n    ansible_user: deploy\n")
    before = _files(spec.parent)
    assert main(["target", "add", "empty", "-f", str(spec), "--inventory", "inventories/empty"]) == 2
    assert "has no hosts" in capsys.readouterr().err
    assert _files(spec.parent) == before


# ---------------------------------------------------------------------------------------------- --artifact

DEPLOY_SPEC = """\
app: hello
artifact:
  path: dist/hello-1.0.0.tar.gz
  version: "1.0.0"
  sha256: "{sha}"
release: {{root: /srv/hello}}
service: {{exec: bin/hello, user: hello}}
health: {{path: /health, port: 8080}}
targets:
  staging: {{inventory: hosts.yml, webhook: "http://127.0.0.1:9/hook"}}
  production: {{inventory: hosts.yml, after: staging, production: true}}
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A spec pinned to build 1.0.0, its inventory, and a new build dist/hello-1.4.0.tar.gz beside it."""
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist/hello-1.0.0.tar.gz").write_bytes(b"old build")
    (tmp_path / "dist/hello-1.4.0.tar.gz").write_bytes(b"new build")
    (tmp_path / "hosts.yml").write_text("all:\n  children:\n    app:\n      hosts:\n        app1: {}\n")
    (tmp_path / "rollwright.yml").write_text(DEPLOY_SPEC.format(sha=hashlib.sha256(b"old build").hexdigest()))
    return tmp_path


NEW_SHA = hashlib.sha256(b"new build").hexdigest()


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Deploys stop where site.yml would run: each is recorded as succeeded and verified (what its record,
    history and webhooks would hold), and no host is contacted."""
    seen: list[dict[str, Any]] = []

    def fake_site(loaded: Any, options: Any, workspace: Any, record: Any, documents: Any, inventory: Any,
                  tell: Any, lock: Any) -> int:
        record.finish(0)
        record.status, record.verified = "succeeded", True
        deploy_module._write_record(workspace, record, documents, tell)
        seen.append({"version": record.version, "sha256": record.sha256, "project": workspace.project,
                     "artifact": loaded.spec.artifact})
        return 0

    monkeypatch.setattr(deploy_module, "_run_site", fake_site)
    monkeypatch.setattr(deploy_module, "host_problems", lambda *args: [])
    monkeypatch.setattr(deploy_module, "notify", lambda url, event, record, write: seen.append(
        {"webhook": event, "version": record.version, "sha256": record.sha256}) if url else None)
    return seen


def test_deploy_artifact_records_the_build_and_gates_production_by_its_sha256(
        app: Path, runs: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    spec = app / "rollwright.yml"
    before = spec.read_bytes()
    build = str(app / "dist/hello-1.4.0.tar.gz")
    assert main(["deploy", "-f", str(spec), "-t", "production", "--artifact", build, "--no-color"]) == 2
    assert f"artifact sha256 {NEW_SHA[:12]}… has no successful, verified deploy on staging" in capsys.readouterr().err
    assert main(["deploy", "-f", str(spec), "-t", "staging", "--artifact", build, "--no-color"]) == 0
    assert "deploying hello 1.4.0 to staging" in capsys.readouterr().out
    deployed = runs[-2]
    assert (deployed["version"], deployed["sha256"]) == ("1.4.0", NEW_SHA)
    assert (deployed["project"] / "artifact/hello-1.4.0.tar.gz").read_bytes() == b"new build"
    assert {(r["webhook"], r["version"], r["sha256"]) for r in runs if "webhook" in r} == {
        ("success", "1.4.0", NEW_SHA)}
    assert main(["history", "-f", str(spec), "-t", "staging", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (row["version"], row["sha256"]) == ("1.4.0", NEW_SHA)
    assert main(["deploy", "-f", str(spec), "-t", "production", "--artifact", build, "--no-color"]) == 0  # proven
    assert spec.read_bytes() == before  # the spec still pins 1.0.0


def test_deploy_artifact_with_an_explicit_version(app: Path, runs: list[dict[str, Any]]) -> None:
    shutil.copy(app / "dist/hello-1.4.0.tar.gz", app / "dist/hello.tar.gz")
    assert main(["deploy", "-f", str(app / "rollwright.yml"), "-t", "staging", "--artifact",
                 str(app / "dist/hello.tar.gz"), "--version", "1.4.0-rc2", "--no-color"]) == 0
    assert (runs[-2]["version"], runs[-2]["sha256"]) == ("1.4.0-rc2", NEW_SHA)


def test_plan_and_generate_show_the_artifact(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, build = str(app / "rollwright.yml"), str(app / "dist/hello-1.4.0.tar.gz")
    assert main(["plan", "-f", spec, "-t", "staging", "--artifact", build]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {NEW_SHA[:12]}…" in out and "Stage 1.4.0" in out
    assert main(["generate", "-f", spec, "-t", "staging", "--artifact", build, "-o", str(app / "out")]) == 0
    values = yaml.safe_load((app / "out/group_vars/all/rollwright.yml").read_text())
    assert (values["rollwright_version"], values["rollwright_artifact"]["sha256"]) == ("1.4.0", NEW_SHA)
    assert (app / "out/artifact/hello-1.4.0.tar.gz").read_bytes() == b"new build"


@pytest.mark.parametrize(("name", "version"), [
    ("hello-1.4.0.tar.gz", "1.4.0"),
    ("hello_2.0-rc1.tgz", "2.0-rc1"),
    ("hello-v1.4.0+build.7.tar.xz", "1.4.0+build.7"),
    ("shop-api-10.2.zip", "10.2"),
    ("hello-linux-x86_64-1.2.0.tar.gz", "1.2.0"),
    ("hello.tar.gz", None),
    ("hello-x86_64.tar.gz", None),
    ("hello-7.tar.gz", None),
    ("hello-1.4.0", None),
    ("1.4.0.tar.gz", None),
])
def test_the_version_is_read_from_the_build_name(name: str, version: str | None) -> None:
    assert version_from_name(name) == version


@pytest.mark.parametrize(("args", "message"), [
    (["--artifact", "dist/hello.tar.gz"], "cannot tell the version from the file name"),
    (["--artifact", "dist/missing-1.0.0.tar.gz"], "No such file or directory"),
    (["--artifact", "dist"], "not a regular file"),
    (["--artifact", "dist/hello-1.4.0.tar.gz", "--version", "1.4 beta"], "--version '1.4 beta': expected a version"),
    (["--version", "1.4.0"], "--version VERSION goes with --artifact PATH"),
])
def test_artifact_refusals_exit_2_and_touch_nothing(app: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], args: list[str],
                                                    message: str) -> None:
    (app / "dist/hello.tar.gz").write_bytes(b"unnamed")
    monkeypatch.chdir(app)
    for command in (["deploy", "-t", "staging"], ["plan", "-t", "staging"], ["generate", "-t", "staging"]):
        assert main([*command, *args]) == 2
        assert message in capsys.readouterr().err
    assert not (app / ".rollwright").exists() and not (app / "build").exists()


# ---------------------------------------------------------------------------------------------- artifact.from


def _from_spec(app: Path, build_file: str = "dist/build.json", extra: str = "") -> Path:
    spec = app / "rollwright.yml"
    text = spec.read_text()
    start, end = text.index("artifact:\n"), text.index("release:")
    spec.write_text(text[:start] + f"artifact:\n  from: {build_file}\n{extra}" + text[end:])
    return spec


def test_a_build_file_gives_the_artifact(app: Path, runs: list[dict[str, Any]],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    spec = _from_spec(app)
    (app / "dist/build.json").write_text(json.dumps({"path": "dist/hello-1.4.0.tar.gz", "version": "1.4.0",
                                                     "sha256": NEW_SHA}))
    artifact = load_spec(spec).spec.artifact
    assert artifact is not None and (artifact.path, artifact.version, artifact.sha256) == (
        "dist/hello-1.4.0.tar.gz", "1.4.0", NEW_SHA)
    assert main(["deploy", "-f", str(spec), "-t", "staging", "--no-color"]) == 0
    assert (runs[-2]["version"], runs[-2]["sha256"]) == ("1.4.0", NEW_SHA)
    assert main(["target", "add", "qa", "-f", str(spec), "--host", "app:qa1=192.0.2.1"]) == 0
    (app / "dist/build.json").unlink()  # target edits and --artifact need no build file
    assert main(["target", "remove", "qa", "-f", str(spec)]) == 0
    assert main(["plan", "-f", str(spec), "-t", "staging", "--artifact", str(app / "dist/hello-1.0.0.tar.gz")]) == 0
    assert "Stage 1.0.0" in capsys.readouterr().out


@pytest.mark.parametrize(("build", "where", "message"), [
    (None, "rollwright.yml:3:9: artifact.from", "dist/build.json does not exist: run the build first"),
    ('{"path": "dist/hello-1.4.0.tar.gz", "version": "1.4.0",\n "sha256": "abc"}', "dist/build.json:2:12: sha256",
     "a sha256: 64 lowercase hex characters"),
    ('{"path": "../hello.tar.gz", "version": "1.4.0", "sha256": "' + "a" * 64 + '"}', "dist/build.json:1:10: path",
     "climbs out with '..'"),
    ('{"path": "/srv/hello.tar.gz", "version": "1.4.0", "sha256": "' + "a" * 64 + '"}', "dist/build.json:1:10: path",
     "expected a path relative to the spec's folder"),
    ('{"path": "dist/h.tar.gz", "version": "1.4.0", "sha256": "' + "a" * 64 + '", "size": 3}',
     "dist/build.json:1:", "size: unknown key 'size'"),
    ('{"path": "dist/h.tar.gz", "sha256": "' + "a" * 64 + '"}', "dist/build.json:1:1",
     "required field missing: version"),
    ('{"path": "dist/h.tar.gz",', "dist/build.json:1:", "not valid JSON"),
    ("[]", "dist/build.json:1:1", "expected an object with path, version and sha256"),
])
def test_build_file_errors_name_file_line_and_field(app: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], build: str | None,
                                                    where: str, message: str) -> None:
    _from_spec(app)
    if build is not None:
        (app / "dist/build.json").write_text(build)
    monkeypatch.chdir(app)
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert where in err and message in err, err


@pytest.mark.parametrize(("build_file", "extra", "message"), [
    ("../build.json", "", "artifact.from: '../build.json' climbs out with '..'"),
    ("/tmp/build.json", "", "artifact.from: expected a path relative to the spec's folder"),
    ("dist/build.json", '  version: "1.4.0"\n', "artifact.version: unknown key 'version' beside 'from'"),
])
def test_the_from_key_is_checked_like_every_spec_path(app: Path, capsys: pytest.CaptureFixture[str],
                                                      build_file: str, extra: str, message: str) -> None:
    spec = _from_spec(app, build_file, extra)
    assert main(["validate", "-f", str(spec)]) == 2
    assert message in capsys.readouterr().err


def test_the_schema_offers_the_build_file_form() -> None:
    """Editors accept `artifact: {from: FILE}` alone, and refuse it beside the pinned fields."""
    validator = jsonschema.Draft7Validator(spec_schema())
    artifact = {"app": "hello", "artifact": {"from": "dist/build.json"}}
    assert [error.message for error in validator.iter_errors(artifact)
            if list(error.absolute_path)[:1] == ["artifact"]] == []
    both = {"app": "hello", "artifact": {"from": "dist/build.json", "version": "1.4.0"}}
    assert any(list(error.absolute_path) == ["artifact"] for error in validator.iter_errors(both))
    neither = {"app": "hello", "artifact": {"version": "1.4.0"}}
    assert any("'sha256' is a required property" in error.message for error in validator.iter_errors(neither))


