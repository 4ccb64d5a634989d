"""The validation of the embedded `sql_migrations` module: what is pending and every reason to refuse."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from role_files import load_role_file


def _module() -> ModuleType:
    return load_role_file("migrate/library/sql_migrations.py")


SQL = _module()


def files(**named: str) -> list[Any]:
    return [SQL.Migration(name, sql) for name, sql in named.items()]


def row(script: str, sql: str, success: bool = True, kind: str = "versioned") -> dict[str, Any]:
    m = SQL.Migration(script, sql)
    return {"script": script, "version": m.version, "checksum": m.checksum, "success": success, "type": kind}


LOCAL = {"V1__init.sql": "create table a (id int);", "V2__more.sql": "create table b (id int);",
         "V10__late.sql": "create table c (id int);", "R__view.sql": "create or replace view v as select 1;"}


def names(pending: list[Any]) -> list[str]:
    return [m.name for m in pending]


def test_fresh_database_applies_versions_in_natural_order_then_repeatables() -> None:
    pending, destructive, _, problems = SQL.plan(files(**LOCAL), [], False, [])
    assert names(pending) == ["V1__init.sql", "V2__more.sql", "V10__late.sql", "R__view.sql"]
    assert (destructive, problems) == ([], [])


def test_applied_ones_are_skipped_and_a_changed_repeatable_reapplies() -> None:
    history = [row("V1__init.sql", LOCAL["V1__init.sql"]), row("V2__more.sql", LOCAL["V2__more.sql"]),
               row("R__view.sql", "old view", kind="repeatable"), row("V10__late.sql", "x", success=False)]
    pending, _, _, problems = SQL.plan(files(**LOCAL), history, False, [])
    assert names(pending) == ["V10__late.sql", "R__view.sql"] and problems == []


def test_changed_missing_and_out_of_order_are_all_refused_at_once() -> None:
    history = [row("V1__init.sql", "the old text"), row("V3__gone.sql", "x"),
               row("V10__late.sql", LOCAL["V10__late.sql"])]
    _, _, _, problems = SQL.plan(files(**LOCAL), history, False, [])
    assert any("V1__init.sql was changed: applied checksum" in p for p in problems)
    assert any("V3__gone.sql (version 3) is missing locally" in p for p in problems)
    assert any(p.startswith("V2__more.sql is older than the newest applied version (10)") for p in problems)
    history = [row(n, LOCAL[n]) for n in ("V1__init.sql", "V10__late.sql")]
    assert SQL.plan(files(**LOCAL), history, True, [])[3] == []


@pytest.mark.parametrize("statement", ["DROP TABLE a;", "alter table a drop column x;", "TRUNCATE a;",
                                       "ALTER TABLE a RENAME TO b;", "ALTER TABLE a ALTER COLUMN x TYPE bigint;"])
def test_destructive_needs_acknowledgement(statement: str) -> None:
    local = [SQL.Migration("V4__risky.sql", statement)]
    _, destructive, _, problems = SQL.plan(local, [], False, [])
    assert destructive[0]["script"] == "V4__risky.sql"
    assert "V4__risky.sql is destructive" in problems[0]
    assert SQL.plan(local, [], False, ["V4__risky.sql"])[3] == []


def test_comments_are_not_destructive_and_baseline_covers_older_versions() -> None:
    local = [SQL.Migration("V1__a.sql", "-- DROP TABLE a\nselect 1; /* truncate */"),
             SQL.Migration("V5__b.sql", "select 2;")]
    assert SQL.plan(local, [], False, [])[1] == []
    baseline = {"script": "V3__baseline.sql", "version": "3", "checksum": None, "success": True, "type": "baseline"}
    pending, _, _, problems = SQL.plan(local, [baseline], False, [])
    assert names(pending) == ["V5__b.sql"] and problems == []


@pytest.mark.parametrize(("sql", "label"), [
    ("CREATE INDEX i ON a (id);", "CREATE INDEX without CONCURRENTLY"),
    ("create unique index i on a (id);", "CREATE INDEX without CONCURRENTLY"),
    ("ALTER TABLE a ALTER COLUMN id SET NOT NULL;", "SET NOT NULL"),
    ("ALTER TABLE a ALTER COLUMN id TYPE bigint;", "a column type change (ALTER ... TYPE)"),
    ("ALTER TABLE a ADD COLUMN u uuid DEFAULT gen_random_uuid();", "ADD COLUMN with a volatile default"),
    ("ALTER TABLE a ADD COLUMN n bigserial;", "ADD COLUMN with a volatile default"),
    ("ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (id) REFERENCES b (id);",
     "ADD FOREIGN KEY or CHECK without NOT VALID"),
    ("ALTER TABLE a ADD PRIMARY KEY (id);", "ADD PRIMARY KEY or UNIQUE (builds an index)"),
    ("VACUUM FULL a;", "VACUUM FULL"),
])
def test_statements_that_lock_a_busy_table_are_flagged(sql: str, label: str) -> None:
    assert SQL.Migration("V5__x.sql", sql).locking() == [label]
    _, _, locking, _ = SQL.plan([SQL.Migration("V5__x.sql", sql)], [], False, ["*"])
    assert locking == [{"script": "V5__x.sql", "statements": SQL.Migration("V5__x.sql", sql).locking()}]


@pytest.mark.parametrize("sql", [
    "CREATE INDEX CONCURRENTLY i ON a (id);",
    "ALTER TABLE a ADD COLUMN n int DEFAULT 0;",
    "ALTER TABLE a ADD COLUMN t timestamptz DEFAULT now();",  # stable, not volatile: no rewrite since PostgreSQL 11
    "ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (id) REFERENCES b (id) NOT VALID; ALTER TABLE a VALIDATE CONSTRAINT f;",
    "-- CREATE INDEX i ON a (id);\nSELECT 1;",
    "CREATE TABLE c (id int); INSERT INTO c VALUES (1);",
])
def test_statements_safe_on_a_busy_table_are_not_flagged(sql: str) -> None:
    assert SQL.Migration("V5__x.sql", sql).locking() == []


def test_a_no_transaction_first_line_runs_the_file_outside_a_transaction() -> None:
    concurrent = SQL.Migration("V6__index.sql",
                               "-- rollwright:no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);\n")
    plain = SQL.Migration("V7__plain.sql", "CREATE TABLE d (id int);\n-- rollwright:no-transaction\n")
    assert (concurrent.transactional, plain.transactional) == (False, True)
    assert SQL.Migration("V8__x.sql", "\n  -- ROLLWRIGHT:no-transaction  \nSELECT 1;").transactional is False

    class Db:
        table = "h"

        def lock(self, timeout_s: int) -> str:
            return f"-- lock {timeout_s}\n"

        def create_sql(self) -> str:
            return "-- create\n"

    script = SQL.apply_script(Db(), [concurrent, plain], "me", 120, (7, 90))
    first, second = script.split("rollwright-start 1")
    assert "BEGIN;" not in first and "COMMIT;" not in first and "CREATE INDEX CONCURRENTLY" in first
    assert "BEGIN;" in second and "COMMIT;" in second
    assert "SET lock_timeout = '7s';\nSET statement_timeout = '90s';" in first  # every statement runs under them
