"""Preflight gates on the control node: read-only targets, freeze windows, promotion, gate files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollwright.errors import BadInput
from rollwright.run.preflight import Overrides, target_gates
from rollwright.run.records import History, Record
from rollwright.spec.loader import load_spec

SHA = "ab" * 32
NOW = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)


def _spec(tmp_path: Path, production: str) -> Path:
    spec = tmp_path / "rollwright.yml"
    spec.write_text(
        "app: hello\ntargets:\n  staging: {inventory: hosts.yml}\n  production:\n    inventory: hosts.yml\n"
        f"{production}")
    (tmp_path / "hosts.yml").write_text("all: {}\n")
    return spec


def _gates(tmp_path: Path, production: str, overrides: Overrides | None = None) -> list[str]:
    overrides = overrides or Overrides()
    loaded = load_spec(_spec(tmp_path, production))
    target = loaded.spec.targets["production"]
    return target_gates(loaded, "production", target, SHA, overrides, History(tmp_path / "state"), NOW)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    (tmp_path / "review.json").write_text('{"status": "FAIL", "by": "alice"}')
    problems = _gates(tmp_path, "    after: staging\n    read_only: true\n    gates: [review.json, scan.txt]\n"
                                "    freeze: [{start: 2026-12-20T00:00:00Z, end: 2027-01-02T00:00:00Z,\n"
                                "              reason: holidays}]\n")
    assert problems[0] == "target production is read-only: plan, --check, drift, status and history only"
    assert problems[1].startswith("change freeze on production from 2026-12-20T00:00:00+00:00")
    assert "(holidays)" in problems[1]
    assert problems[2].startswith(f"artifact sha256 {SHA[:12]}… has no successful, verified deploy on staging")
    assert problems[3] == "gate review.json says status 'FAIL', not PASS"
    assert problems[4] == f"gate file {tmp_path / 'scan.txt'} does not exist"


def test_overrides_need_a_reason_and_then_pass(tmp_path: Path) -> None:
    spec = "    after: staging\n    freeze: [{start: 2026-12-20T00:00:00, end: 2027-01-02T00:00:00}]\n"
    with pytest.raises(BadInput, match="need --reason"):
        _gates(tmp_path, spec, Overrides(override_freeze=True))
    assert _gates(tmp_path, spec, Overrides(override_freeze=True, force=True, reason="hotfix INC-42")) == []


def test_a_verified_deploy_on_the_earlier_target_promotes_the_artifact(tmp_path: Path) -> None:
    (tmp_path / "tests.txt").write_text("suite: unit\nstatus: pass\n")
    spec = ("    after: staging\n    gates: [tests.txt]\n"
            "    freeze: [{start: 2026-01-01T00:00:00Z, end: 2026-01-02T00:00:00Z}]\n")
    assert len(_gates(tmp_path, spec)) == 1  # only the promotion; the freeze is over and the gate passes
    record = Record("hello", "staging", "deploy", "1.0.0", SHA, "rolling", "2026-12-01T00:00:00Z",
                    status="succeeded", verified=True)
    History(tmp_path / "state").add(record, tmp_path / "record.json")
    assert _gates(tmp_path, spec) == []


READ_ONLY_SPEC = """\
app: hello
artifact: {path: dist/hello.tar.gz, version: 1.0.0, sha256: "SHA"}
release: {root: /srv/hello}
service: {exec: /usr/bin/true, user: hello}
health: {path: /health, port: 8080}
database: {name: app, backup: {dir: /var/backups/hello}, migrations: {tool: sql, path: migrations}}
targets:
  production: {inventory: hosts.yml, read_only: true, production: true}
""".replace("SHA", SHA)


@pytest.mark.parametrize("command", [
    ["deploy"], ["rollback"], ["restore", "app-1.dump", "--yes"], ["migrations", "apply"],
    ["migrations", "mark-applied", "V1__a.sql"], ["migrations", "baseline", "1"],
])
def test_a_read_only_target_refuses_every_change(tmp_path: Path, command: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from rollwright.cli import main

    (tmp_path / "rollwright.yml").write_text(READ_ONLY_SPEC)
    (tmp_path / "hosts.yml").write_text("all:\n  children:\n    app: {hosts: {app1: {ansible_host: 192.0.2.1}}}\n"
                                        "    db: {hosts: {db1: {ansible_host: 192.0.2.2}}}\n")
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "V1__a.sql").write_text("select 1;\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main([*command, "-f", str(tmp_path / "rollwright.yml"), "-t", "production"]) == 2
    assert "target production is read-only" in capsys.readouterr().err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing ran, nothing written
