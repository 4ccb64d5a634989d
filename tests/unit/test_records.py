"""Deploy records and their SQLite history; the checklist and rollback plan written for each deploy."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rollwright.cli import main
from rollwright.render.documents import checklist, rollback_plan
from rollwright.render.plan import build_plan
from rollwright.render.project import expand_groups
from rollwright.run.progress import tool_migrations
from rollwright.run.records import History, Record, markdown, write_record
from rollwright.spec.loader import load_spec

HELLO = Path(__file__).resolve().parents[2] / "examples/hello/rollwright.yml"


def _record(target: str, status: str, sha: str = "ab" * 32, verified: bool = True,
            started: str = "2026-11-21T10:00:00Z") -> Record:
    return Record("hello", target, "deploy", "1.0.0", sha, "rolling [1]", started, status=status, verified=verified,
                  steps=[{"name": "Stage", "batch": 0, "status": "ok", "seconds": 1.5, "changed": 3}],
                  migrations={"applied": [{"script": "V3__drop_b.sql", "execution_time_ms": 4}]},
                  cannot_roll_back=["destructive migration V3__drop_b.sql (DROP COLUMN): only the backup restores"],
                  hosts=[{"name": "app1", "current": "1.0.0", "previous": "0.9.0", "healthy": True,
                          "health_status": 200}])


def test_history_lists_newest_first_and_finds_by_prefix(tmp_path: Path) -> None:
    history = History(tmp_path / "state")
    older = _record("staging", "succeeded", started="2026-11-21T09:00:00Z")
    newer = _record("staging", "failed", verified=False)
    other = _record("production", "succeeded", started="2026-11-21T11:00:00Z")
    for record in (older, newer, other):
        write_record(tmp_path / "records", record, {"checklist.md": "- [ ] x\n"}, history)
    assert [row["id"] for row in history.list("staging")] == [newer.id, older.id]
    assert [row["target"] for row in history.list()] == ["production", "staging", "staging"]
    assert history.get("20261121T10")["id"] == newer.id  # a unique prefix
    assert history.get("20261121T") is None  # an ambiguous one
    assert history.get(newer.id)["status"] == "failed"
    assert history.get("nope") is None
    assert (tmp_path / "records" / older.id / "checklist.md").read_text() == "- [ ] x\n"
    assert json.loads((tmp_path / "records" / older.id / "record.json").read_text())["version"] == "1.0.0"


def test_promotion_needs_a_verified_success_of_the_same_artifact(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.add(_record("staging", "failed", sha="11" * 32, verified=False), tmp_path / "a.json")
    history.add(_record("staging", "succeeded", sha="22" * 32, verified=False), tmp_path / "b.json")
    history.add(_record("staging", "succeeded", sha="33" * 32), tmp_path / "c.json")
    assert history.verified_deploy("staging", "11" * 32) is None
    assert history.verified_deploy("staging", "22" * 32) is None
    assert history.verified_deploy("staging", "33" * 32)["status"] == "succeeded"
    assert history.verified_deploy("production", "33" * 32) is None


def test_the_history_knows_which_migrations_a_rollback_to_a_version_leaves_in_the_database(tmp_path: Path) -> None:
    history = History(tmp_path / "state")

    def deploy(version: str, started: str, applied: list[str], status: str = "succeeded") -> None:
        record = _record("staging", status, started=started)
        record.version, record.migrations = version, {"applied": [{"script": name} for name in applied]}
        write_record(tmp_path / "records", record, {}, history)

    deploy("1.0.0", "2026-11-21T09:00:00Z", ["V1__a.sql"])
    deploy("2.0.0", "2026-11-21T10:00:00Z", ["V2__b.sql"], status="failed")  # applied, then its rollout failed
    deploy("2.0.1", "2026-11-21T11:00:00Z", ["V3__c.sql", "V4__d.sql"])
    assert history.applied_since("staging", "1.0.0") == ["V2__b.sql", "V3__c.sql", "V4__d.sql"]
    assert history.applied_since("staging", "2.0.1") == []
    assert history.applied_since("staging", "2.0.0") is None  # never deployed successfully here: unknown
    assert history.applied_since("production", "1.0.0") is None


def test_markdown_log_names_steps_migrations_and_what_cannot_be_undone() -> None:
    text = markdown(_record("staging", "succeeded"))
    assert text.startswith("# Deploy hello 1.0.0 to staging: succeeded\n")
    assert "| Stage |  | ok | 1.5 | 3 |" in text
    assert "- applied V3__drop_b.sql (4 ms)" in text
    assert "## Cannot be rolled back\n\n- destructive migration V3__drop_b.sql" in text
    assert "| app1 | 1.0.0 | 0.9.0 | healthy |" in text


def test_checklist_and_rollback_plan_follow_the_spec() -> None:
    loaded = load_spec(HELLO)
    inventory = {"app": ["app1", "app2"], "db": ["db1"], "lb": ["lb1"], "all": ["app1", "app2", "db1", "lb1"]}
    steps = build_plan(loaded.spec, expand_groups(loaded), inventory, {})
    listed = checklist(loaded.spec, "staging", steps)
    assert listed.startswith(f"# Deployment checklist: hello {loaded.spec.artifact.version} to staging\n")
    assert listed.count("- [ ] ") == len(steps)
    plan = rollback_plan(loaded.spec, "staging", {"V3__drop_b.sql": ["DROP COLUMN"]})
    assert "`rollwright rollback -f SPEC -t staging`" in plan
    assert "`rollwright restore FILE -f SPEC -t staging`" in plan
    assert "- Destructive migration V3__drop_b.sql (DROP COLUMN)" in plan


def test_history_and_show_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "rollwright.yml"
    spec.write_text("app: hello\n")
    record = _record("staging", "succeeded")
    write_record(tmp_path / ".rollwright" / "staging" / "records", record, {}, History(tmp_path / ".rollwright"))
    assert main(["history", "-f", str(spec)]) == 0
    assert record.id in capsys.readouterr().out
    assert main(["show", record.id, "-f", str(spec)]) == 0
    assert capsys.readouterr().out == markdown(record)
    assert main(["show", "20991231", "-f", str(spec)]) == 2
    assert "no single deploy record" in capsys.readouterr().err


def test_a_closed_stdout_ends_history_and_dry_run_quietly(
        tmp_path: Path, closed_stdout: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """`history --limit 3000 | head -2` and `deploy --dry-run | head -2`: the reader is gone, the command
    ends with its own exit code and no traceback."""
    spec = tmp_path / "rollwright.yml"
    spec.write_text("app: hello\ngroups:\n  - {name: one, order: 1, build_command: 'true'}\n")
    history = History(tmp_path / ".rollwright")
    for minute in range(60):
        history.add(_record("staging", "succeeded", started=f"2026-11-21T10:{minute:02d}:00Z"), tmp_path / "r.json")
    rollwright = str(Path(sys.executable).parent / "rollwright")
    for args in (["history", "--limit", "3000"], ["history", "--json"], ["deploy", "--dry-run"]):
        proc = closed_stdout([rollwright, *args], tmp_path)
        assert (proc.returncode, proc.stderr) == (0, ""), args
    assert not (tmp_path / ".rollwright" / "local").exists()  # the dry run touched nothing


def test_a_groups_only_deploy_records_no_release_strategy_or_verification() -> None:
    record = Record("hello", "staging", "deploy", "", "", "", "2026-11-21T10:00:00Z", status="succeeded")
    text = markdown(record)
    assert text.startswith("# Deploy hello to staging: succeeded\n")
    assert "| artifact |" not in text and "| strategy |" not in text
    assert "| verified | no: verify did not run |" in text
    record.verification, record.verified = {"ok": True, "passed": 9}, True
    assert "| verified | yes: every app host serves it healthy; verify passed |" in markdown(record)


def test_tool_migrations_are_read_from_what_each_tool_prints() -> None:
    django = ["Operations to perform:", "  Apply all migrations: admin, shop", "Running migrations:",
              "  Applying shop.0001_initial... OK", "  Applying shop.0002_price... OK"]
    alembic = ["INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.",
               "INFO  [alembic.runtime.migration] Running upgrade  -> 1975ea83b712, create account table",
               "INFO  [alembic.runtime.migration] Running upgrade 1975ea83b712 -> ae1027a6acf, add a column"]
    flyway = ['Current version of schema "public": << Empty Schema >>',
              'Migrating schema "public" to version "1 - Create person table"',
              'Migrating schema "public" with repeatable migration "views"',
              'Successfully applied 2 migrations to schema "public"']
    assert [m["script"] for m in tool_migrations("django", django)["applied"]] == ["shop.0001_initial",
                                                                                   "shop.0002_price"]
    assert [m["script"] for m in tool_migrations("alembic", alembic)["applied"]] == [
        "1975ea83b712, create account table", "ae1027a6acf, add a column"]
    assert [m["script"] for m in tool_migrations("flyway", flyway)["applied"]] == ["1 - Create person table",
                                                                                   "views"]
    assert tool_migrations("django", ["No migrations to apply."])["applied"] == []
    said = [f"step {n}" for n in range(30)]
    command = tool_migrations("command", said)
    assert command == {"tool": "command", "output": said[-20:]}  # what it did is only what it printed
    record = _record("staging", "succeeded")
    record.migrations = command
    assert "- ran the command migrations; its last lines:\n\n  ```\n  step 10\n" in markdown(record)
    record.migrations = tool_migrations("django", django)
    assert "## Migrations\n\n- applied shop.0001_initial\n- applied shop.0002_price\n" in markdown(record)


def test_a_failed_command_shows_its_last_lines_in_the_log() -> None:
    record = _record("staging", "failed")
    record.failures = ["app1: Apply: exit 1: ^\nProgrammingError: relation \"t\" does not exist\n    ^"]
    assert ("- app1: Apply: exit 1: ^\n\n  ```\n  ProgrammingError: relation \"t\" does not exist\n      ^\n  ```\n"
            in markdown(record))
