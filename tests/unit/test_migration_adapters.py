"""Migration tools other than sql: the commands rendered per tool (no bare `python` on stock Debian), what their
output says is unapplied, and `migrations status`'s exit code."""

from __future__ import annotations

from typing import Any

import pytest

from rollwright.render.migrate import RELEASE_PYTHON, tool_commands
from rollwright.run.migrations import EXIT_PENDING, status_exit, tool_pending
from rollwright.spec.model import Migrations


def _commands(**fields: Any) -> dict[str, str]:
    return tool_commands(Migrations(**fields))


def test_python_tools_run_with_the_release_interpreter_or_the_spec_one() -> None:
    django = _commands(tool="django")
    assert django["apply"] == f"{RELEASE_PYTHON} manage.py migrate --noinput"
    assert django["plan"] == f"{RELEASE_PYTHON} manage.py migrate --plan"
    assert not any(command.startswith("python ") for command in django.values())
    assert ".venv/bin/python" in RELEASE_PYTHON and "python3" in RELEASE_PYTHON
    assert _commands(tool="django", python="/opt/py/bin/python3.11")["status"] == \
        "/opt/py/bin/python3.11 manage.py showmigrations"
    assert _commands(tool="alembic")["apply"] == f"{RELEASE_PYTHON} -m alembic upgrade head"  # no console script
    assert _commands(tool="flyway")["apply"] == "flyway migrate"


def test_status_command_does_not_replace_a_tool_s_own_plan() -> None:
    django = _commands(tool="django", status_command="bin/status")
    assert (django["status"], django["history"]) == ("bin/status", "bin/status")
    assert django["plan"] == f"{RELEASE_PYTHON} manage.py migrate --plan"
    assert _commands(tool="django", plan_command="bin/plan")["plan"] == "bin/plan"
    own = _commands(tool="command", command="bin/up", status_command="bin/status")
    assert (own["apply"], own["plan"]) == ("bin/up", "bin/status")  # it has no plan of its own: as before
    assert _commands(tool="command", command="bin/up")["plan"] == ""


def test_the_spec_refuses_an_interpreter_that_is_not_one_word() -> None:
    with pytest.raises(ValueError, match="python"):
        Migrations(tool="django", python="python3; rm -rf /")
    assert Migrations().lock_timeout_s == 5 and Migrations().statement_timeout_s == 600


DJANGO_STATUS = """auth
 [X] 0001_initial
 [ ] 0002_alter_permission_name_max_length
notes
 [ ] 0001_initial
sessions
 (no migrations)
"""
DJANGO_PLAN = """Planned operations:
notes.0001_initial
    Create model Note
notes.0002_note_title
    Add field title to note
"""
ALEMBIC_PLAN = """1975ea83b712 -> 27c6a30d7c24 (head), add title
<base> -> 1975ea83b712 (current), create note
"""
FLYWAY_INFO = """| Versioned | 1       | init       | SQL  | 2026-12-04 10:00:00 | Success |
| Versioned | 2       | add title  | SQL  |                     | Pending |
"""


def test_what_each_tool_says_is_unapplied() -> None:
    assert tool_pending("django", "status", DJANGO_STATUS) == ["auth.0002_alter_permission_name_max_length",
                                                              "notes.0001_initial"]
    assert tool_pending("django", "plan", DJANGO_PLAN) == ["notes.0001_initial", "notes.0002_note_title"]
    assert tool_pending("django", "plan", "Planned operations:\n  No planned migration operations.\n") == []
    assert tool_pending("alembic", "plan", ALEMBIC_PLAN) == ["27c6a30d7c24"]
    assert tool_pending("alembic", "status", "Rev: 27c6a30d7c24 (head)\n") == []
    assert tool_pending("alembic", "status", "Rev: 1975ea83b712\n") != []
    assert tool_pending("flyway", "status", FLYWAY_INFO) == ["Versioned 2 add title SQL Pending"]
    assert tool_pending("command", "status", "anything") is None


def test_status_exits_4_when_something_is_unapplied_and_1_on_a_problem() -> None:
    assert status_exit("sql", {"pending": [{"script": "V1__a.sql"}]}) == EXIT_PENDING == 4
    assert status_exit("sql", {"pending": [{"script": "V1__a.sql"}], "problems": ["changed"]}) == 1
    assert status_exit("sql", {"pending": []}) == 0
    assert status_exit("django", {"output": DJANGO_STATUS}) == 4
    assert status_exit("django", {"output": "notes\n [X] 0001_initial\n"}) == 0
    assert status_exit("command", {"output": "whatever it prints"}) == 0  # rollwright cannot tell


def test_staging_for_the_plan_unpacks_the_release_and_leaves_a_running_service_alone() -> None:
    """`plan --migrations` stages the release the tool reads, never the unit or env file a running service
    restarts with, nor the build or hooks (a deploy's); the account only where the app never ran."""
    from rollwright.render import playbooks
    from rollwright.spec.model import Spec

    spec = Spec.model_validate({
        "app": "shop", "artifact": {"path": "dist/shop.tgz", "version": "2.0.0", "sha256": "a" * 64},
        "release": {"root": "/srv/shop", "build": ["python3 manage.py collectstatic --noinput"]},
        "service": {"exec": "gunicorn shop.wsgi", "user": "shop"}, "health": {"path": "/health", "port": 8000},
        "hooks": {"after_stage": ["./notify"]},
        "database": {"name": "shop", "migrations": {"tool": "django"}}})
    stage = playbooks.migrations_plays(spec)[0]["tasks"][0]
    assert stage["when"] == playbooks.STAGED
    names = [task["name"] for task in stage["block"]]
    assert names == ["Find the account the release runs as", "Install the account, unit and env file (no restart yet)",
                     "Stage the release (upload, verify sha256, unpack, link shared)"]
    assert stage["block"][1]["when"] == "rollwright_runner_account.rc != 0"
