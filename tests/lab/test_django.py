"""A real Django app (examples/django: a model and its migration, Django's contrib apps, gunicorn, psycopg2) on the
lab with `tool: django` and no workaround: `plan --migrations` names what the new release would apply before the
deploy, the deploy applies it once and records it; then a migration that waits on a table lock gives up after its
lock_timeout, the deploy stops before any switch, and the load balancer kept answering meanwhile; a rollback
names the migration the database keeps beyond the release it goes back to."""

from __future__ import annotations

import json
import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleets import APP_HOSTS, Fleet, psql, table_lock_held

from rollwright.lab.fleet import Lab
from rollwright.lab.sample import DATABASE_URL, REPO
from rollwright.render.yamlout import dump_yaml

# The session lab's app hosts serve the service `hello` on port 8080 behind lb1's backend `app`: this app takes
# the same name, so the modules that run after this one find the service they expect.
ROOT = "/srv/hello"
BUILD = REPO / "examples" / "django" / "build.py"
DATABASE = "app"  # the lab's database, which DATABASE_URL names
ADD_TITLE = b'''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]
    operations = [migrations.AddField("note", "title", models.CharField(max_length=50, default=""))]
'''


def _spec(fleet: Fleet, version: str, extra: dict[str, bytes] | None = None) -> Path:
    artifact, sha = runpy.run_path(str(BUILD))["build"](version, fleet.folder / "dist", extra)
    spec = {
        "app": "hello",
        "artifact": {"path": str(artifact.relative_to(fleet.folder)), "version": version, "sha256": sha},
        "release": {"root": ROOT, "keep": 5, "shared": ["log"]},
        "service": {"exec": "/usr/bin/gunicorn --bind 0.0.0.0:8080 --workers 2 shop.wsgi", "user": "hello",
                    "env": {"DATABASE_URL": DATABASE_URL}},
        "health": {"path": "/health", "port": 8080, "status": 200, "timeout_s": 30, "interval_s": 1},
        "rollout": {"strategy": "rolling", "batches": [1, "100%"], "max_fail_percentage": 0,
                    "load_balancer": {"hosts": "lb", "backend": "app"}},
        "database": {"hosts": "db", "name": DATABASE,
                     "migrations": {"tool": "django", "lock_timeout_s": 2, "lock_retries": 1}},
        "targets": {"lab": {"inventory": str(fleet.inventory)}},
    }
    path = fleet.folder / f"shop-{version}.yml"
    path.write_bytes(dump_yaml(spec, "The Django example on the lab (written by tests/lab/test_django.py)."))
    return path


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield Fleet.beside(lab, tmp_path_factory.mktemp("django"))


def test_django_migrations_are_planned_before_the_deploy_applied_once_and_recorded(fleet: Fleet) -> None:
    spec = _spec(fleet, "dj-1.0.0")
    plan = fleet.rollwright("plan", "--migrations", "-f", str(spec), "-t", "lab")
    assert plan.returncode == 0, plan.stderr
    assert "would apply: notes.0001_initial" in plan.stdout and "would apply: auth.0001_initial" in plan.stdout
    assert psql(fleet.lab, DATABASE, "SELECT to_regclass('notes_note') IS NULL") == "t"  # the plan applied nothing
    status = fleet.rollwright("migrations", "status", "-f", str(spec), "-t", "lab")
    assert status.returncode == 4 and "[ ] 0001_initial" in status.stdout, status.stdout  # 4: something unapplied

    deployed = fleet.deploy(spec)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "dj-1.0.0")
    health = json.loads(fleet.lab.run("app1", "curl -sf http://127.0.0.1:8080/health").stdout)
    assert health["version"] == "dj-1.0.0"
    assert psql(fleet.lab, DATABASE, "SELECT count(*) FROM django_migrations WHERE app = 'notes'") == "1"
    row = json.loads(fleet.rollwright("history", "-f", str(spec), "--json").stdout.splitlines()[0])
    applied = [m["script"] for m in json.loads(Path(row["record"]).read_text())["migrations"]["applied"]]
    assert "notes.0001_initial" in applied and "contenttypes.0001_initial" in applied, applied

    after = fleet.rollwright("migrations", "status", "-f", str(spec), "-t", "lab")
    assert after.returncode == 0 and "[X] 0001_initial" in after.stdout, after.stdout
    replan = fleet.rollwright("plan", "--migrations", "-f", str(spec), "-t", "lab")
    assert replan.returncode == 0 and "nothing to apply" in replan.stdout, replan.stdout


def test_a_migration_waiting_on_a_held_lock_gives_up_before_any_switch_under_load(fleet: Fleet) -> None:
    spec = _spec(fleet, "dj-2.0.0", {"notes/migrations/0002_note_title.py": ADD_TITLE})
    with table_lock_held(fleet.lab, DATABASE, "notes_note"):  # 0002's ALTER TABLE waits behind it
        proc, load = fleet.under_load("deploy", "-f", str(spec), "-t", "lab")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "gave up" in proc.stdout and "waited 2 s for a lock" in proc.stdout, proc.stdout
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "dj-1.0.0")  # nothing switched
    assert load.failed == 0 and load.sent > 0, load.summary()
    assert psql(fleet.lab, DATABASE, "SELECT count(*) FROM django_migrations WHERE app = 'notes'") == "1"


def test_a_rollback_names_the_migrations_the_database_keeps_beyond_its_release(fleet: Fleet) -> None:
    spec = _spec(fleet, "dj-2.0.0", {"notes/migrations/0002_note_title.py": ADD_TITLE})  # the table is free now
    deployed = fleet.deploy(spec)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    rolled = fleet.rollwright("rollback", "-f", str(spec), "-t", "lab")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "dj-1.0.0")
    assert "the database keeps the migrations applied after dj-1.0.0 was deployed: notes.0002_note_title" in \
        rolled.stdout, rolled.stdout
    row = json.loads(fleet.rollwright("history", "-f", str(spec), "--json").stdout.splitlines()[0])
    assert row["action"] == "rollback"
    assert any("notes.0002_note_title" in item for item in json.loads(Path(row["record"]).read_text())[
        "cannot_roll_back"])
