"""What a migration tool other than sql runs.

Each command is one `/bin/sh -c` string run in the release's folder on the first app host. Python tools run
with the release's own interpreter: `.venv/bin/python` when the release has one, else `python3` (Debian has
no `python`), or the spec's `python`.
"""

from __future__ import annotations

import shlex

from rollwright.spec.model import Migrations

# The release's interpreter, chosen on the host when the command runs.
RELEASE_PYTHON = '"$(test -x .venv/bin/python && echo .venv/bin/python || echo python3)"'
ACTIONS = ("apply", "status", "history", "plan")


def _tool_commands(tool: str, python: str) -> dict[str, str]:
    """The tool's own commands for apply, status, history and plan ("" where it has none)."""
    if tool == "django":
        manage = f"{python} manage.py"
        return {"apply": f"{manage} migrate --noinput", "status": f"{manage} showmigrations",
                "history": f"{manage} showmigrations --verbosity 2", "plan": f"{manage} migrate --plan"}
    if tool == "alembic":
        alembic = f"{python} -m alembic"
        return {"apply": f"{alembic} upgrade head", "status": f"{alembic} current --verbose",
                "history": f"{alembic} history --indicate-current",
                "plan": f"{alembic} history --indicate-current -r current:"}
    if tool == "flyway":
        return {"apply": "flyway migrate", "status": "flyway info", "history": "flyway info", "plan": "flyway info"}
    return dict.fromkeys(ACTIONS, "")


def tool_commands(migrations: Migrations) -> dict[str, str]:
    """The commands a non-sql migration tool runs; "" where the tool has none (`command` without status_command).
    `command` replaces apply, `status_command` status and history, `plan_command` the plan (tool command, which
    has no plan of its own, falls back to its status_command)."""
    python = shlex.quote(migrations.python) if migrations.python else RELEASE_PYTHON
    commands = _tool_commands(migrations.tool, python)
    if migrations.command:
        commands["apply"] = migrations.command
    if migrations.status_command:
        commands.update(status=migrations.status_command, history=migrations.status_command)
        if migrations.tool == "command":
            commands["plan"] = migrations.status_command
    if migrations.plan_command:
        commands["plan"] = migrations.plan_command
    return commands

