"""Tracked SQL migrations against the lab's real PostgreSQL (issue 5): applied once, in order, checksummed,
one transaction each, refused when history and files disagree, locked against a concurrent deploy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fleets import table_lock_held

from rollwright.lab.fleet import Lab
from rollwright.render.yamlout import dump_yaml

VENV_BIN = Path(sys.executable).parent
TABLE = "rollwright_schema_history"


class Project:
    """A spec with only a database section, its migrations folder and a database of its own on db1."""

    def __init__(self, lab: Lab, folder: Path, database: str, backup_dir: str | None = None,
                 verify: str = "list") -> None:
        self.lab, self.folder, self.database = lab, folder, database
        (folder / "migrations").mkdir(parents=True)
        db: dict[str, object] = {"hosts": "db", "name": database, "migrations": {"tool": "sql", "path": "migrations"}}
        if backup_dir:
            db["backup"] = {"dir": backup_dir, "keep": 5, "verify": verify}
        spec = {"app": "mig", "database": db, "targets": {"lab": {"inventory": str(lab.inventory_path)}}}
        self.spec = folder / "rollwright.yml"
        self.spec.write_bytes(dump_yaml(spec))
        proc = lab.run("db1", f"runuser -u postgres -- dropdb --if-exists {database} && "
                              f"runuser -u postgres -- createdb {database}")
        assert proc.returncode == 0, proc.stderr

    def add(self, name: str, sql: str) -> None:
        (self.folder / "migrations" / name).write_text(sql)

    def command(self, *args: str) -> list[str]:
        """`rollwright ARGS` for this spec and the lab target."""
        return [str(VENV_BIN / "rollwright"), *args, "-f", str(self.spec), "-t", "lab"]

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.command(*args), cwd=self.folder, input=stdin, capture_output=True, text=True,
                              timeout=600, check=False)
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return proc

    def deploy(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("deploy", *args)

    def query(self, sql: str) -> list[dict[str, object]]:
        wrapped = f"SELECT coalesce(json_agg(row_to_json(q)), '[]') FROM ({sql}) q"
        proc = self.lab.run("db1", f"runuser -u postgres -- psql -X -A -t -d {self.database}", stdin=wrapped)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip())

    def history(self) -> list[dict[str, object]]:
        return self.query(f"SELECT version, script, checksum, applied_by, execution_time_ms, success, error "
                          f"FROM {TABLE} ORDER BY installed_rank")


def _database(request: pytest.FixtureRequest) -> str:
    return f"mig_{request.node.name[5:25]}".lower().replace("-", "_")


@pytest.fixture
def project(lab: Lab, tmp_path: Path, request: pytest.FixtureRequest) -> Project:
    return Project(lab, tmp_path, _database(request))


def test_backup_is_taken_only_when_migrations_are_pending(lab: Lab, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    backups = f"/var/backups/{_database(request)}"
    project = Project(lab, tmp_path, _database(request), backup_dir=backups)
    lab.run("db1", f"rm -rf {backups}")
    project.add("V1__a.sql", "CREATE TABLE a (id int);\n")
    checked = project.deploy("--check")  # V1 is pending, so a dump would be taken: check mode says what would change
    assert checked.returncode == 1 and "did not finish" not in checked.stdout, checked.stdout + checked.stderr
    assert f"Create the backup folder: {backups}" in checked.stdout and "apply" in checked.stdout
    assert lab.run("db1", f"ls {backups}").stdout.split() == []
    assert project.deploy().returncode == 0
    assert project.deploy().returncode == 0  # nothing pending: no dump, nothing changed
    project.add("V2__broken.sql", "INSERT INTO nowhere VALUES (1);\n")
    assert project.deploy().returncode == 1
    dumps = lab.run("db1", f"ls {backups}").stdout.split()
    assert len(dumps) == 2, dumps  # one before V1, one before the failed V2
    listing = lab.run("db1", f"runuser -u postgres -- pg_restore --list {backups}/{sorted(dumps)[-1]}").stdout
    assert "TABLE public a " in listing  # the dump before V2 holds the schema V2 started from

    listed = project.cli("backups", "list")
    assert listed.returncode == 0 and [line.split()[0] for line in listed.stdout.splitlines()[1:]] == \
        sorted(dumps, reverse=True)
    insert = lab.run("db1", f"runuser -u postgres -- psql -X -d {project.database} -c 'INSERT INTO a VALUES (42)'")
    assert insert.returncode == 0, insert.stderr  # written after the dump: a restore loses it
    refused = project.cli("restore", sorted(dumps)[-1], stdin="not-the-name\n")
    assert refused.returncode == 1 and "nothing was restored" in refused.stdout
    assert project.query("SELECT count(*) AS n FROM a") == [{"n": 1}]
    restored = project.cli("restore", sorted(dumps)[-1], stdin=f"{project.database}\n")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert project.query("SELECT count(*) AS n FROM a") == [{"n": 0}]  # back to the schema and data before V2


def test_versions_apply_once_in_order_and_a_new_one_next_time(project: Project) -> None:
    project.add("V1__create.sql", "CREATE TABLE greeting (id serial PRIMARY KEY, text text NOT NULL);\n")
    project.add("V2__seed.sql", "INSERT INTO greeting (text) VALUES ('hello');\n")
    project.add("V10__index.sql", "CREATE INDEX greeting_text ON greeting (text);\n")
    assert project.deploy().returncode == 0
    history = project.history()
    assert [row["script"] for row in history] == ["V1__create.sql", "V2__seed.sql", "V10__index.sql"]
    assert all(row["success"] and len(str(row["checksum"])) == 64 and row["applied_by"] for row in history)
    assert all(isinstance(row["execution_time_ms"], int) for row in history)
    assert project.deploy().returncode == 0
    assert len(project.history()) == 3  # nothing applied twice
    project.add("V11__more.sql", "INSERT INTO greeting (text) VALUES ('again');\n")
    assert project.deploy().returncode == 0
    assert [row["script"] for row in project.history()][-1] == "V11__more.sql"
    assert project.query("SELECT count(*) AS n FROM greeting") == [{"n": 2}]
    verified = project.cli("verify")  # the generated testinfra check of the history table
    assert verified.returncode == 0 and "verified: 1 checks passed" in verified.stdout, verified.stdout


def test_a_failing_migration_is_rolled_back_and_recorded(project: Project) -> None:
    project.add("V1__ok.sql", "CREATE TABLE a (id int);\n")
    project.add("V2__broken.sql", "CREATE TABLE b (id int);\nINSERT INTO nowhere VALUES (1);\n")
    proc = project.deploy()
    assert proc.returncode == 1
    assert "V2__broken.sql failed and was rolled back" in proc.stdout
    history = project.history()
    assert [(row["script"], row["success"]) for row in history] == [("V1__ok.sql", True), ("V2__broken.sql", False)]
    assert "nowhere" in str(history[1]["error"])
    assert project.query("SELECT to_regclass('b')::text AS b") == [{"b": None}]  # its transaction was rolled back
    verified = project.cli("verify")
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert "db1          no failed or pending migration: failed migrations in rollwright_schema_history: " \
           "V2__broken.sql" in verified.stdout, verified.stdout


def test_an_edited_applied_migration_is_refused_before_anything_runs(project: Project) -> None:
    project.add("V1__ok.sql", "CREATE TABLE a (id int);\n")
    assert project.deploy().returncode == 0
    project.add("V1__ok.sql", "CREATE TABLE a (id bigint);\n")
    project.add("V2__next.sql", "CREATE TABLE c (id int);\n")
    proc = project.deploy()
    assert proc.returncode == 1
    assert "V1__ok.sql was changed: applied checksum" in proc.stdout
    assert len(project.history()) == 1 and project.query("SELECT to_regclass('c')::text AS c") == [{"c": None}]


def test_destructive_migration_needs_acknowledgement(project: Project) -> None:
    project.add("V1__ok.sql", "CREATE TABLE a (id int, old text);\n")
    project.add("V2__drop.sql", "ALTER TABLE a DROP COLUMN old;\n")
    proc = project.deploy()
    assert proc.returncode == 1 and "V2__drop.sql is destructive (DROP COLUMN)" in proc.stdout
    assert project.query(f"SELECT to_regclass('{TABLE}')::text AS t") == [{"t": None}]  # nothing at all ran
    assert project.deploy("--acknowledge-destructive", "V2__drop.sql").returncode == 0
    assert [row["script"] for row in project.history()] == ["V1__ok.sql", "V2__drop.sql"]
    newest = json.loads(project.cli("history", "--json").stdout.splitlines()[0])
    record = json.loads(Path(newest["record"]).read_text())
    assert [m["script"] for m in record["migrations"]["applied"]] == ["V1__ok.sql", "V2__drop.sql"]
    assert record["cannot_roll_back"][0].startswith("destructive migration V2__drop.sql (DROP COLUMN)")
    assert "V2__drop.sql (DROP COLUMN)" in (Path(newest["record"]).parent / "rollback-plan.md").read_text()


def _explain(out: str, err: str) -> str:
    """What a CLI run printed, and the end of the ansible output its `details:` line points to."""
    found = re.search(r"details: (\S+)", out)
    details = Path(found.group(1)) if found else None
    return out[-1000:] + err[-1000:] + (details.read_text()[-1500:] if details and details.is_file() else "")


def test_two_migrations_apply_at_once_apply_each_migration_once(project: Project) -> None:
    """Two `rollwright migrations apply` started together (two operators, one spec folder): both share the
    workspace, the advisory lock holds one until the other has committed, and it then applies nothing."""
    project.add("V1__slow.sql", "SELECT pg_sleep(4);\nCREATE TABLE slow (id int);\n")
    project.add("V2__after.sql", "INSERT INTO slow VALUES (1);\n")
    procs = [subprocess.Popen(project.command("migrations", "apply", "--json"), cwd=project.folder,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    print(*(out + err for out, err in outs), sep="\n", file=sys.stderr)
    assert [p.returncode for p in procs] == [0, 0], "\n".join(_explain(out, err) for out, err in outs)
    reports = [json.loads(out) for out, _ in outs]
    both = ["V1__slow.sql", "V2__after.sql"]
    assert sorted([m["script"] for m in r["applied"]] for r in reports) == [[], both]
    waiter = next(r for r in reports if not r["applied"])
    assert [m["script"] for m in waiter["pending"]] == both  # it found them pending, then waited for the lock
    history = project.history()
    assert [(row["script"], row["success"]) for row in history] == [(name, True) for name in both]
    assert int(str(history[0]["execution_time_ms"])) >= 4000
    assert project.query("SELECT count(*) AS n FROM slow") == [{"n": 1}]  # V2 ran once


def test_migrations_commands_status_dry_run_apply_mark_and_history(project: Project) -> None:
    def rw(*args: str) -> subprocess.CompletedProcess[str]:
        return project.cli("migrations", *args)

    project.add("V1__a.sql", "CREATE TABLE a (id int);\n")
    project.add("V2__b.sql", "CREATE TABLE b (id int);\n")
    status = rw("status")
    assert status.returncode == 4 and "pending   V1__a.sql" in status.stdout and "pending   V2__b.sql" in status.stdout
    dry = rw("apply", "--dry-run")
    assert dry.returncode == 0 and "would apply: V1__a.sql, V2__b.sql" in dry.stdout
    assert project.query(f"SELECT to_regclass('{TABLE}')::text AS t") == [{"t": None}]  # nothing happened
    assert "applied: V1__a.sql, V2__b.sql" in rw("apply").stdout
    project.add("V3__c.sql", "CREATE TABLE c (id int);\n")
    assert rw("mark-applied", "V3__c.sql").returncode == 0
    assert project.query("SELECT to_regclass('c')::text AS c") == [{"c": None}]  # recorded, never run
    status = rw("status")
    assert [line.split()[:2] for line in status.stdout.splitlines()[1:4]] == [
        ["applied", "V1__a.sql"], ["applied", "V2__b.sql"], ["applied", "V3__c.sql"]]
    project.add("V1__a.sql", "CREATE TABLE a (id bigint);\n")
    changed = rw("status")
    assert changed.returncode == 1 and "changed   V1__a.sql" in changed.stdout
    history = json.loads(rw("history", "--json").stdout)["history"]
    assert [row["script"] for row in history] == ["V1__a.sql", "V2__b.sql", "V3__c.sql"]
    assert [row["type"] for row in history] == ["versioned", "versioned", "marked"]


def test_a_failing_migration_stops_the_deploy_before_any_switch(lab: Lab, tmp_path: Path,
                                                                request: pytest.FixtureRequest) -> None:
    from rollwright.lab import sample

    project = Project(lab, tmp_path, _database(request))
    artifact, sha = sample.build("0.9.0", tmp_path / "dist")
    spec = sample.write_spec(tmp_path, lab.inventory_path, artifact, sha, "0.9.0", name="app.yml")
    text = spec.read_text() + f"database:\n  hosts: db\n  name: {project.database}\n" \
                              "  migrations: {tool: sql, path: migrations}\n"
    spec.write_text(text)
    project.add("V1__bad.sql", "INSERT INTO nowhere VALUES (1);\n")
    before = {h: lab.run(h, "readlink /srv/hello/current").stdout.strip() for h in ("app1", "app2", "app3")}
    proc = subprocess.run([str(VENV_BIN / "rollwright"), "deploy", "-f", str(spec), "-t", "lab"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode in (1, 3), proc.stdout + proc.stderr
    assert "V1__bad.sql failed and was rolled back" in proc.stdout
    assert "Roll out in batches" not in proc.stdout  # the rollout never started
    after = {h: lab.run(h, "readlink /srv/hello/current").stdout.strip() for h in ("app1", "app2", "app3")}
    assert after == before


def test_a_failed_backup_stops_the_deploy_before_migrations(lab: Lab, tmp_path: Path,
                                                            request: pytest.FixtureRequest) -> None:
    blocked = f"/var/backups/{_database(request)}"
    project = Project(lab, tmp_path, _database(request), backup_dir=blocked)
    lab.run("db1", f"rm -rf {blocked} && touch {blocked}")  # a file where the backup folder must be
    project.add("V1__a.sql", "CREATE TABLE a (id int);\n")
    try:
        proc = project.deploy()
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Dump and verify" in proc.stdout or "backup folder" in proc.stdout
        assert "Migrate the database" not in proc.stdout
        assert project.query("SELECT to_regclass('a')::text AS a") == [{"a": None}]
    finally:
        lab.run("db1", f"rm -f {blocked}")


def _verify_database(project: Project) -> list[dict[str, object]]:
    return project.query(f"SELECT datname FROM pg_database WHERE datname = '{project.database}_rollwright_verify'")


def _restored_into_scratch(project: Project) -> list[str]:
    """Dumps the backup role restored into its scratch database, from the runs' own records (job events)."""
    restored = []
    for path in (project.folder / ".rollwright" / "lab" / "runs" / "artifacts").glob("*/job_events/*.json"):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and data.get("task") == "Restore into the scratch database":
            restored.append(data["res"]["cmd"][-1])
    return sorted(restored)


def test_backup_verified_by_restore_leaves_no_scratch_database(lab: Lab, tmp_path: Path,
                                                               request: pytest.FixtureRequest) -> None:
    """verify: restore proves each dump restores (pg_restore --list cannot), in <db>_rollwright_verify,
    which is dropped again; the verified dumps are the ones `backups list` offers."""
    backups = f"/var/backups/{_database(request)}"
    project = Project(lab, tmp_path, _database(request), backup_dir=backups, verify="restore")
    lab.run("db1", f"rm -rf {backups}")
    project.add("V1__a.sql", "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1), (2);\n")
    assert project.deploy().returncode == 0
    project.add("V2__b.sql", "CREATE TABLE b (id int);\n")
    assert project.deploy().returncode == 0  # its dump holds table a and its rows
    dumps = sorted(lab.run("db1", f"ls {backups}").stdout.split())
    assert len(dumps) == 2, dumps
    assert _restored_into_scratch(project) == [f"{backups}/{name}" for name in dumps]
    assert _verify_database(project) == []
    listed = project.cli("backups", "list")
    assert listed.returncode == 0 and sorted(line.split()[0] for line in listed.stdout.splitlines()[1:]) == dumps
    assert [row["script"] for row in project.history()] == ["V1__a.sql", "V2__b.sql"]
    newest = json.loads(project.cli("history", "--json").stdout.splitlines()[0])
    record = json.loads(Path(newest["record"]).read_text())
    assert record["backup"]["file"] == f"{backups}/{dumps[-1]}" and record["backup"]["verify"] == "restore"


UNRESTORABLE = """-- pg_dump writes this schema and pg_restore --list reads the dump, but restoring it fails: a restore
-- runs with an empty search_path, and the index calls a function that calls another one unqualified.
CREATE FUNCTION double_it(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT i * 2';
CREATE FUNCTION quadruple(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT double_it(double_it(i))';
CREATE TABLE t (i int);
INSERT INTO t VALUES (1);
CREATE INDEX t_quadruple ON t (quadruple(i));
"""


def test_unrestorable_backup_stops_the_deploy_and_is_removed(lab: Lab, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    """A dump that does not restore is no backup: the deploy stops before migrations, and the dump is
    removed, so `backups list` and `restore` never offer it as a good one."""
    backups = f"/var/backups/{_database(request)}"
    project = Project(lab, tmp_path, _database(request), backup_dir=backups, verify="restore")
    lab.run("db1", f"rm -rf {backups}")
    project.add("V1__quadruple.sql", UNRESTORABLE)
    assert project.deploy().returncode == 0  # its dump, taken before V1, is of an empty database
    good = lab.run("db1", f"ls {backups}").stdout.split()
    assert len(good) == 1, good
    project.add("V2__b.sql", "CREATE TABLE b (id int);\n")
    proc = project.deploy()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Migrate the database" not in proc.stdout
    assert lab.run("db1", f"ls {backups}").stdout.split() == good  # the unverified dump is gone
    assert 'failed at "Restore into the scratch database" and was removed' in proc.stdout
    assert "function double_it(integer) does not exist" in proc.stdout
    assert [line.split()[0] for line in project.cli("backups", "list").stdout.splitlines()[1:]] == good
    assert _verify_database(project) == []
    assert [row["script"] for row in project.history()] == ["V1__quadruple.sql"]
    assert project.query("SELECT to_regclass('b')::text AS b") == [{"b": None}]


def test_a_no_transaction_file_and_a_migration_that_gives_up_on_a_held_lock(project: Project) -> None:
    spec = yaml.safe_load(project.spec.read_text())
    spec["database"]["migrations"].update(lock_timeout_s=1, lock_retries=1)
    project.spec.write_bytes(dump_yaml(spec))
    project.add("V1__a.sql", "CREATE TABLE a (id int);\n")
    project.add("V2__index.sql", "-- rollwright:no-transaction\nCREATE INDEX CONCURRENTLY a_id ON a (id);\n")
    applied = project.cli("migrations", "apply")
    assert "applied: V1__a.sql, V2__index.sql" in applied.stdout, applied.stdout + applied.stderr
    assert project.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'a_id'::regclass") == [
        {"indisvalid": True}]  # CONCURRENTLY, which PostgreSQL refuses inside a transaction

    project.add("V3__b.sql", "ALTER TABLE a ADD COLUMN b int;\n")
    with table_lock_held(project.lab, project.database, "a"):
        gave_up = project.cli("migrations", "apply")
    assert gave_up.returncode == 1
    assert "V3__b.sql gave up: a statement waited 1 s for a lock" in gave_up.stdout and "(2 tries)" in gave_up.stdout
    assert project.query("SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'a' AND "
                         "column_name = 'b'") == [{"n": 0}]  # rolled back
    failed = [row for row in project.history() if row["script"] == "V3__b.sql"]
    assert [row["success"] for row in failed] == [False] and "lock timeout" in str(failed[0]["error"])
    assert "applied: V3__b.sql" in project.cli("migrations", "apply").stdout  # the table is free again
