"""`rollwright target add|list|update|remove|test` on temp copies of the example spec and inventories:
round-trip edits (comments, key order, quoting and untouched bytes survive), refusals that write nothing,
and `target test` against a loopback port nothing listens on."""

from __future__ import annotations

import difflib
import json
import shutil
import socket
from pathlib import Path

import pytest
import yaml

from rollwright import targets
from rollwright.cli import main
from rollwright.errors import BadInput
from rollwright.spec.loader import load_spec

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples/hello/rollwright.yml"
TARGETS = """targets:
  # staging is where every release goes first
  staging:
    inventory: inventories/staging
  production:
    inventory: 'inventories/production'  # quoted on purpose
    after: staging
    production: true
    become: true
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The hello spec beside copies of the staging and production inventories; returns the spec's path."""
    text = HELLO.read_text()
    start, end = text.index("targets:\n"), text.index("\nrequired_env:")
    spec = tmp_path / "rollwright.yml"
    spec.write_text(text[:start] + TARGETS + text[end:])
    for name in ("staging", "production"):
        shutil.copytree(REPO / "inventories" / name, tmp_path / "inventories" / name)
    return spec


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _added_lines(before: str, after: str) -> list[str]:
    """The lines `after` adds to `before`; fails when it removes or changes any."""
    diff = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:2] in ("- ", "+ ")]
    assert not [line for line in diff if line.startswith("- ")], diff
    return [line[2:] for line in diff]


def test_add_writes_the_inventory_and_only_adds_lines_to_the_spec(project: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = project.read_text()
    assert main(["target", "add", "qa", "-f", str(project), "--host", "app:qa1=192.0.2.21",
                 "--host", "app:qa2=192.0.2.22:2222", "--host", "db:qadb=192.0.2.23", "--var", "ansible_user=deploy",
                 "--var", "ansible_port=22", "--after", "staging", "--become"]) == 0
    assert "added target qa" in capsys.readouterr().out
    after = project.read_text()
    assert _added_lines(before, after) == ["  qa:", "    inventory: inventories/qa", "    after: staging",
                                           "    become: true"]
    assert after.index("  qa:") < after.index("\nrequired_env:")  # inside targets, before the next section
    assert "# staging is where every release goes first" in after
    assert "'inventories/production'  # quoted on purpose" in after
    target = load_spec(project).spec.targets["qa"]
    assert (target.inventory, target.after, target.become, target.production) == ("inventories/qa", "staging",
                                                                                   True, False)
    inventory = yaml.safe_load((project.parent / "inventories/qa/hosts.yml").read_text())
    assert inventory == {"all": {
        "children": {"app": {"hosts": {"qa1": {"ansible_host": "192.0.2.21"},
                                       "qa2": {"ansible_host": "192.0.2.22", "ansible_port": 2222}}},
                     "db": {"hosts": {"qadb": {"ansible_host": "192.0.2.23"}}}},
        "vars": {"ansible_user": "deploy", "ansible_port": 22}}}
    assert "qa1: {ansible_host: 192.0.2.21}" in (project.parent / "inventories/qa/hosts.yml").read_text()


def test_add_then_remove_gives_back_the_spec_byte_for_byte(project: Path) -> None:
    before = _files(project.parent)
    assert main(["target", "add", "qa", "-f", str(project), "--host", "app:qa1=192.0.2.21", "--production"]) == 0
    assert main(["target", "remove", "qa", "-f", str(project), "--delete-inventory"]) == 0
    assert _files(project.parent) == before
    assert not (project.parent / "inventories/qa").exists()


def test_a_spec_with_a_preamble_and_folded_lines_keeps_them(tmp_path: Path) -> None:
    spec = tmp_path / "rollwright.yml"
    original = ("# written by hand\n---\napp: hello  # the app\nhooks:\n  before_deploy:\n"
                "    - echo 'a command long enough to be folded\n      over two lines'\n"
                "targets:\n  a:\n    inventory: \"inv/a\"\n\n# the end\n")
    spec.write_text(original)
    assert main(["target", "add", "b", "-f", str(spec), "--host", "app:b1=192.0.2.1", "--inventory", "inv/b"]) == 0
    assert _added_lines(original, spec.read_text()) == ["  b:", "    inventory: inv/b"]
    assert spec.read_text().endswith("    inventory: inv/b\n\n# the end\n")
    assert main(["target", "remove", "b", "-f", str(spec)]) == 0
    assert spec.read_text() == original
    assert (tmp_path / "inv/b/hosts.yml").is_file()  # kept without --delete-inventory


@pytest.mark.parametrize(("args", "message"), [
    (["staging", "--host", "app:x=192.0.2.1"], "target 'staging' already exists"),
    (["Bad_Name", "--host", "app:x=192.0.2.1"], "not a valid target name"),
    (["qa", "--host", "app:x=192.0.2.1", "--after", "nowhere"], "--after nowhere: no such target"),
    (["qa"], "needs at least one --host"),
    (["qa", "--host", "app-x=192.0.2.1"], "expected GROUP:HOST=ADDRESS"),
    (["qa", "--host", "app:x="], "expected GROUP:HOST=ADDRESS"),
    (["qa", "--host", "all:x=192.0.2.1"], "group 'all'"),
    (["qa", "--host", "app:x=192.0.2.1:99999"], "a port 1-65535"),
    (["qa", "--host", "app:x=192.0.2.1", "--host", "db:x=192.0.2.2"], "--host x is given twice"),
    (["qa", "--host", "app:x=192.0.2.1", "--var", "no-equals"], "--var 'no-equals'"),
    (["qa", "--host", "app:x=192.0.2.1", "--inventory", "inventories/staging"], "inventories/staging already exists"),
    (["qa", "--host", "app:x=192.0.2.1", "--inventory", "inventories/staging/hosts.yml"], "already exists"),
])
def test_add_refuses_and_writes_nothing(project: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                        message: str) -> None:
    before = _files(project.parent)
    assert main(["target", "add", *args, "-f", str(project)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert _files(project.parent) == before
    assert not (project.parent / "inventories/qa").exists()


def test_a_spec_that_would_not_load_is_put_back_with_the_inventory(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    calls = []

    def load_then_refuse(path: Path, **options: bool) -> object:
        calls.append(path)
        if len(calls) > 1:  # the check after writing
            assert "qa:" in Path(path).read_text()
            raise BadInput(f"{path}: 1 problem in the deploy spec")
        return load_spec(path, **options)

    monkeypatch.setattr(targets, "load_spec", load_then_refuse)
    before = _files(project.parent)
    assert main(["target", "add", "qa", "-f", str(project), "--host", "app:qa1=192.0.2.21"]) == 2
    assert "nothing was changed" in capsys.readouterr().err
    assert _files(project.parent) == before
    assert not (project.parent / "inventories/qa").exists()  # the folder it made is gone too


def test_update_edits_hosts_vars_and_flags_and_undoing_it_gives_back_both_files(project: Path) -> None:
    hosts = project.parent / "inventories/staging/hosts.yml"
    spec_before, hosts_before = project.read_text(), hosts.read_text()
    assert main(["target", "update", "staging", "-f", str(project), "--add-host", "app:app3=192.0.2.13",
                 "--add-host", "cache:cache1=192.0.2.5:6380", "--remove-host", "lb1", "--var", "ansible_port=2222",
                 "--production", "--read-only"]) == 0
    text = hosts.read_text()
    assert text.startswith("# Example staging inventory (documentation addresses, never contacted by tests).\n")
    assert "app3: {ansible_host: 192.0.2.13}\n" in text
    assert "cache1: {ansible_host: 192.0.2.5, ansible_port: 6380}" in text
    data = yaml.safe_load(text)["all"]
    assert list(data["children"]) == ["app", "db", "cache"]  # lb left empty, so it went; order kept
    assert list(data["children"]["app"]["hosts"]) == ["app1", "app2", "app3"]
    assert data["vars"] == {"ansible_user": "deploy", "ansible_port": 2222}
    assert list(data) == ["children", "vars"]
    assert _added_lines(spec_before, project.read_text()) == ["    production: true", "    read_only: true"]
    staging = load_spec(project).spec.targets["staging"]
    assert staging.production and staging.read_only

    assert main(["target", "update", "staging", "-f", str(project), "--remove-host", "app3", "--remove-host",
                 "cache1", "--add-host", "lb:lb1=192.0.2.2", "--unset-var", "ansible_port", "--no-production",
                 "--no-read-only"]) == 0
    assert project.read_text() == spec_before
    assert hosts.read_text().replace("    lb:\n      hosts:\n        lb1: {ansible_host: 192.0.2.2}\n", "") == \
        hosts_before.replace("    lb:\n      hosts:\n        lb1: {ansible_host: 192.0.2.2}\n", "")


def test_update_of_the_spec_alone_leaves_the_inventory_untouched(project: Path) -> None:
    hosts = project.parent / "inventories/production/hosts.yml"
    before, mtime = hosts.read_bytes(), hosts.stat().st_mtime_ns
    assert main(["target", "update", "production", "-f", str(project), "--no-after", "--no-become"]) == 0
    assert (hosts.read_bytes(), hosts.stat().st_mtime_ns) == (before, mtime)
    text = project.read_text()
    assert "  production:\n    inventory: 'inventories/production'  # quoted on purpose\n    production: true\n" in text
    assert main(["target", "update", "production", "-f", str(project), "--after", "staging", "--become"]) == 0
    assert "    after: staging\n    production: true\n    become: true\n" in project.read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["staging"], "nothing to change"),
    (["nowhere", "--production"], "no target 'nowhere'"),
    (["staging", "--remove-host", "nohost"], "no host nohost"),
    (["staging", "--add-host", "app:app1=192.0.2.11"], "app1 is already in group app"),
    (["staging", "--add-host", "db:app1=192.0.2.99"], "app1 already exists with another address"),
    (["staging", "--unset-var", "nothing_here"], "no variable nothing_here"),
    (["staging", "--after", "production"], "cannot come after 'production'"),
    (["staging", "--after", "staging"], "cannot come after 'staging'"),
    (["staging", "--remove-host", "app1", "--remove-host", "app2", "--remove-host", "lb1", "--remove-host", "db1"],
     "without hosts"),
    (["staging", "--production", "--add-host", "bad"], "expected GROUP:HOST=ADDRESS"),
])
def test_update_refuses_and_writes_nothing(project: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                           message: str) -> None:
    before = _files(project.parent)
    assert main(["target", "update", *args, "-f", str(project)]) == 2
    assert message in capsys.readouterr().err
    assert _files(project.parent) == before


def test_remove_refuses_a_target_another_comes_after(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(project.parent)
    assert main(["target", "remove", "staging", "-f", str(project)]) == 2
    assert "target production comes after 'staging'" in capsys.readouterr().err
    assert _files(project.parent) == before


def test_remove_keeps_or_deletes_the_inventory(project: Path, tmp_path: Path) -> None:
    spec_before = project.read_text()
    assert main(["target", "remove", "production", "-f", str(project)]) == 0
    assert (project.parent / "inventories/production/hosts.yml").is_file()
    text = project.read_text()
    assert "production" not in text.split("targets:")[1].split("required_env")[0]
    assert "  staging:\n    inventory: inventories/staging\n\nrequired_env" in text  # the blank line stays
    assert _added_lines(text, spec_before)[0] == "  production:"
    assert main(["target", "remove", "staging", "-f", str(project), "--delete-inventory"]) == 0
    assert not (project.parent / "inventories/staging").exists()
    assert load_spec(project).spec.targets == {}


def test_remove_never_deletes_an_inventory_outside_the_spec_folder(project: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = project.parent / "app" / "rollwright.yml"
    spec.parent.mkdir()
    spec.write_text(project.read_text().replace("inventories/", "../inventories/"))
    assert main(["target", "update", "production", "-f", str(spec), "--no-after"]) == 0
    before = _files(project.parent)
    assert main(["target", "remove", "staging", "-f", str(spec), "--delete-inventory"]) == 2
    assert "not inside the spec's folder" in capsys.readouterr().err
    assert _files(project.parent) == before


def test_list_shows_hosts_per_group_and_flags(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["target", "list", "-f", str(project)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "inventory", "hosts", "flags"]
    assert lines[1].split() == ["staging", "inventories/staging", "app:2", "lb:1", "db:1", "-"]
    assert lines[2].split()[:2] == ["production", "inventories/production"]
    assert lines[2].endswith("production, after staging, become")


def test_list_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["target", "add", "qa", "-f", str(project), "--host", "app:qa1=192.0.2.21", "--read-only",
                 "--inventory", "qa-hosts.yml"]) == 0
    capsys.readouterr()
    shutil.rmtree(project.parent / "inventories/production")
    assert main(["target", "list", "-f", str(project), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["staging", "production", "qa"]
    assert rows["staging"]["groups"] == {"app": 2, "lb": 1, "db": 1} and rows["staging"]["hosts"] == 4
    assert rows["production"]["problem"] == "missing" and rows["production"]["after"] == "staging"
    assert rows["qa"] == {
        "name": "qa", "inventory": "qa-hosts.yml", "path": str((project.parent / "qa-hosts.yml").resolve()),
        "hosts": 1, "groups": {"app": 1}, "problem": "", "production": False, "read_only": True, "after": None,
        "become": False, "become_user": "root", "flags": ["read-only"]}


def test_the_lab_inventory_style_is_kept(tmp_path: Path) -> None:
    """A block-style inventory (as `rollwright lab up` writes it) gets block-style hosts."""
    (tmp_path / "inv").mkdir()
    hosts = tmp_path / "inv/hosts.yml"
    hosts.write_text("all:\n  vars:\n    ansible_user: root\n  children:\n    app:\n      hosts:\n        app1:\n"
                     "          ansible_host: 10.0.0.2\n")
    spec = tmp_path / "rollwright.yml"
    spec.write_text("app: hello\ntargets:\n  lab:\n    inventory: inv/hosts.yml\n")
    assert main(["target", "update", "lab", "-f", str(spec), "--add-host", "app:app2=10.0.0.3:2222"]) == 0
    assert hosts.read_text().endswith("        app1:\n          ansible_host: 10.0.0.2\n        app2:\n"
                                      "          ansible_host: 10.0.0.3\n          ansible_port: 2222\n")


def test_splice_keeps_lines_ruamel_would_rewrite() -> None:
    original = "a: 1\nlong: one\n  two\nb:\n  c: 2\n"
    base = "a: 1\nlong: one two\nb:\n  c: 2\n"
    assert targets.splice(original, base, base.replace("  c: 2\n", "  c: 2\n  d: 3\n")) == original + "  d: 3\n"
    assert targets.splice(original, base, base.replace("a: 1", "a: 5")) == original.replace("a: 1", "a: 5")
    changed = base.replace("one two", "three")  # a change inside the rewritten lines: take ruamel's text
    assert targets.splice(original, base, changed) == changed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs an OpenSSH client")
def test_target_test_names_an_unreachable_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "rollwright.yml"
    spec.write_text("app: hello\n")
    assert main(["target", "add", "dead", "-f", str(spec), "--host", f"app:gone=127.0.0.1:{_free_port()}",
                 "--var", "ansible_user=nobody"]) == 0
    capsys.readouterr()
    assert main(["target", "test", "dead", "-f", str(spec)]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("gone "))
    assert row.split()[:5] == ["gone", "app", row.split()[2], "no", "(connection"]
    assert "refused" in row and row.split()[2].startswith("127.0.0.1:")
    assert "1 of 1 host(s) not ready: gone" in out
    assert main(["target", "test", "dead", "-f", str(spec), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    [host] = result["hosts"]
    assert (host["host"], host["reachable"], host["sudo"]) == ("gone", False, None)
    assert host["reachable_reason"] == "connection refused"
