"""After the migrate role ran twice (converge and idempotence): every fixture migration is recorded
once, successfully, in the history table on db1, and its effect is in the database."""

from __future__ import annotations

import json

testinfra_hosts = ["db"]

DATABASE = "app"  # the lab's database (lab_db_name)
TABLE = "rollwright_schema_history"


def psql(host, sql):
    """Run one query as postgres on the lab's database; rows as text (unaligned, tuples only)."""
    return host.check_output(f"runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d {DATABASE} -c \"{sql}\"")


def history(host):
    rows = psql(host, f"SELECT coalesce(json_agg(h ORDER BY installed_rank), '[]') FROM {TABLE} h")
    return json.loads(rows)


def test_history_lists_each_migration_once_as_successful(host):
    rows = history(host)
    assert [(r["script"], r["version"], r["success"]) for r in rows] == [
        ("V1__create_widget.sql", "1", True),
        ("V2__seed_widget.sql", "2", True),
        ("R__widget_count.sql", None, True),
    ]
    assert {r["applied_by"] for r in rows} == {"molecule"}
    assert all(len(r["checksum"]) == 64 for r in rows)


def test_migrations_took_effect_once(host):
    assert psql(host, "SELECT string_agg(name, ',' ORDER BY id) FROM widget") == "sprocket,gear"
    assert psql(host, "SELECT n FROM widget_count") == "2"
