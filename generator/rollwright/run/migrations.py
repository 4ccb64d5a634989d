"""`rollwright migrations status|history|apply|mark-applied|baseline`: one action of migrations.yml.
Tool sql: the embedded sql_migrations module on the target's first database host, reported as a
table. Other tools: their own status/history/plan/apply command, run from the deployed release."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from rollwright.errors import EXIT_FAILED, BadInput
from rollwright.render.playbooks import tool_commands
from rollwright.render.project import read_migrations, resolve_target
from rollwright.run.deploy import prepare_workspace
from rollwright.run.engine import Interrupts, run_playbook
from rollwright.run.preflight import refuse_read_only
from rollwright.run.progress import Progress
from rollwright.spec.loader import LoadedSpec

Write = Callable[[str], None]
ACTIONS = {"status": "status", "history": "status", "apply": "apply", "mark-applied": "mark_applied",
           "baseline": "baseline"}


def migrations(loaded: LoadedSpec, target: str | None, command: str, write: Write, *, script: str | None = None,
               version: str | None = None, dry_run: bool = False, limit: int = 20, as_json: bool = False) -> int:
    """Run one action and print what the database's history and the local files say."""
    database = loaded.spec.database
    if not (database and database.migrations):
        raise BadInput(f"{loaded.path}: `rollwright migrations` needs database.migrations in the spec")
    tool = database.migrations.tool
    action = ACTIONS[command]
    if tool != "sql":
        if command in ("mark-applied", "baseline"):
            raise BadInput(f"`migrations {command}` is for tool: sql; {tool} keeps its own history "
                           "(alembic stamp, flyway baseline, migrate --fake)")
        action = {"history": "history", "apply": "plan" if dry_run else "apply"}.get(command, action)
        if action != "apply" and not tool_commands(database.migrations)[action]:
            raise BadInput(f"{loaded.path}: tool {tool} has no {action} command: "
                           "set database.migrations.status_command")
    elif command == "mark-applied" and script not in read_migrations(loaded):
        raise BadInput(f"no migration file {script!r} in {loaded.base_dir / database.migrations.path}")
    if command in ("apply", "mark-applied", "baseline") and not dry_run:
        refuse_read_only(*resolve_target(loaded, target), f"migrations {command}")
    workspace = prepare_workspace(loaded, target)
    extravars = {"rollwright_migrations_action": action, "rollwright_migrations_script": script or "",
                 "rollwright_migrations_version": version or ""}
    lines: list[str] = []
    with Interrupts() as interrupts:
        run = run_playbook(workspace.project, "migrations.yml", workspace.runs, Progress(lines.append),
                           extravars=extravars, check=dry_run, cancel=interrupts.after(1))
    result: dict[str, Any] = run.custom_stats.get("rollwright_migrations") or {}
    if as_json:
        write(json.dumps({"ok": run.ok, **result}, indent=2, default=str))
    elif not run.ok:
        for line in lines:
            write(line)
    elif tool != "sql":
        write(f"$ {result.get('command', '')}")
        for line in str(result.get("output", "")).splitlines():
            write(f"  {line}")
    elif command == "status":
        _status(write, loaded, result)
    elif command == "history":
        _history(write, result.get("history") or [], limit)
    else:
        applied = [m["script"] for m in result.get("applied") or []]
        verb = "would apply" if dry_run else "applied"
        if command == "apply":
            write(f"{verb}: {', '.join(applied)}" if applied else "nothing to apply")
        else:
            write(f"{'would record' if dry_run else 'recorded'} {script or 'baseline ' + str(version)}")
    if not run.ok:
        write(f"✗ migrations {command} failed; details: {run.artifact_dir / 'stdout'}")
        return EXIT_FAILED
    return EXIT_FAILED if command == "status" and result.get("problems") else 0


def _status(write: Write, loaded: LoadedSpec, result: dict[str, Any]) -> None:
    local = {name: hashlib.sha256(data).hexdigest() for name, data in read_migrations(loaded).items()}
    rows: dict[str, tuple[str, str]] = {}
    for row in result.get("history") or []:
        if not row.get("success"):
            continue
        if row.get("type") == "baseline":
            rows[row["script"]] = ("baseline", str(row.get("applied_at", "")))
        elif row["script"] not in local:
            rows[row["script"]] = ("missing", str(row.get("applied_at", "")))
        elif local[row["script"]] != row.get("checksum") and row.get("type") != "repeatable":
            rows[row["script"]] = ("changed", str(row.get("applied_at", "")))
        else:
            rows[row["script"]] = ("applied", str(row.get("applied_at", "")))
    for pending in result.get("pending") or []:
        rows[pending["script"]] = ("pending", "")
    write(f"{'state':<9} {'migration':<40} applied at")
    for script, (state, when) in rows.items():
        write(f"{state:<9} {script:<40} {when}")
    for item in result.get("destructive") or []:
        write(f"destructive: {item['script']} ({', '.join(item['statements'])})")
    for problem in result.get("problems") or []:
        write(f"✗ {problem}")


def _history(write: Write, history: list[dict[str, Any]], limit: int) -> None:
    write(f"{'version':<9} {'script':<36} {'ok':<3} {'ms':>6}  {'applied by':<16} applied at")
    for row in history[-limit:]:
        ok = "yes" if row.get("success") else "NO"
        write(f"{row.get('version') or '-':<9} {row['script']:<36} {ok:<3} {row.get('execution_time_ms') or 0:>6}  "
              f"{row.get('applied_by', ''):<16} {row.get('applied_at', '')}")
        if row.get("error"):
            write(f"          error: {' '.join(str(row['error']).split())[:300]}")
