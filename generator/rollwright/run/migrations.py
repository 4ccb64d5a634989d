"""`rollwright migrations status|history|apply|mark-applied|baseline`: one action of migrations.yml.
Tool sql: the embedded sql_migrations module on the target's first database host, reported as a
table. Other tools: their own status/history/plan/apply command; status and the plan (`apply --dry-run`,
`plan --migrations`) run from the spec's release, staged first on the first app host (no switch, no traffic
moves), so they say what the NEW release would apply; history runs from the deployed release.

`status` exits 4 (EXIT_PENDING) when a migration is not applied yet, 1 on a problem, else 0."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from rollwright.errors import EXIT_FAILED, BadInput
from rollwright.render.migrate import tool_commands
from rollwright.render.plan import Pending
from rollwright.render.project import read_migrations, resolve_target
from rollwright.run.engine import Interrupts, PlaybookRun, run_playbook
from rollwright.run.preflight import refuse_read_only
from rollwright.run.progress import Progress
from rollwright.run.provenance import Unverified, check_artifact
from rollwright.run.workspace import prepare_workspace
from rollwright.spec.loader import LoadedSpec

Write = Callable[[str], None]
ACTIONS = {"status": "status", "history": "status", "apply": "apply", "mark-applied": "mark_applied",
           "baseline": "baseline"}
EXIT_PENDING = 4  # `migrations status`: nothing is wrong, but some migration is not applied yet
STAGED_ACTIONS = ("status", "plan")  # a tool's actions that read the spec's (new) release, staged first
DJANGO_APP = re.compile(r"^([A-Za-z_]\w*)$")  # showmigrations: an app's name, its migrations indented below
DJANGO_UNAPPLIED = re.compile(r"^\s+\[ \]\s+(\S+)")
DJANGO_PLANNED = re.compile(r"^([A-Za-z_]\w*\.\w+)$")  # migrate --plan: `app.0002_name`, operations indented
ALEMBIC_STEP = re.compile(r"->\s*(\w+)")


def tool_pending(tool: str, action: str, output: str) -> list[str] | None:
    """The migrations a tool's status or plan output says are not applied; None when it cannot be told."""
    lines = output.splitlines()
    if tool == "django" and action == "status":
        app, found = "", []
        for line in lines:
            if DJANGO_APP.match(line):
                app = line
            elif unapplied := DJANGO_UNAPPLIED.match(line):
                found.append(f"{app}.{unapplied.group(1)}")
        return found
    if tool == "django" and action == "plan":
        return [line for line in lines if DJANGO_PLANNED.match(line)]
    if tool == "alembic" and action == "status":
        return [] if "(head)" in output else ["(the database is not at the release's head)"]
    if tool == "alembic" and action == "plan":
        return [step.group(1) for line in lines if "(current)" not in line and (step := ALEMBIC_STEP.search(line))]
    if tool == "flyway":
        return [" ".join(line.replace("|", " ").split()) for line in lines if "| Pending" in line]
    return None


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
    lines: list[str] = []
    run, result = _run(loaded, target, action, lines, check=dry_run and tool == "sql",
                       script=script or "", version=version or "")
    if as_json:
        write(json.dumps({"ok": run.ok, **result}, indent=2, default=str))
    elif not run.ok:
        for line in lines:
            write(line)
    elif tool != "sql":
        if action in STAGED_ACTIONS and loaded.spec.artifact:
            write(f"(from release {loaded.spec.artifact.version}, staged on the first app host: no switch)")
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
    return status_exit(tool, result) if command == "status" else 0


def status_exit(tool: str, result: dict[str, Any]) -> int:
    """`migrations status`'s exit code from what the action published: 1 on a problem, 4 when a migration is not
    applied yet (tool command: rollwright cannot tell, 0), else 0."""
    if result.get("problems"):
        return EXIT_FAILED
    unapplied = result.get("pending") if tool == "sql" else tool_pending(tool, "status", str(result.get("output", "")))
    return EXIT_PENDING if unapplied else 0


def pending_migrations(loaded: LoadedSpec, target: str | None) -> Pending:
    """What a deploy of this spec would apply, asked of the target before the deploy (`plan --migrations`): the
    sql tool's pending files, or the tool's plan command run from the spec's release, staged for it."""
    database = loaded.spec.database
    if not (database and database.migrations):
        return Pending()
    tool = database.migrations.tool
    lines: list[str] = []
    run, result = _run(loaded, target, "status" if tool == "sql" else "plan", lines, check=False)
    if not run.ok:
        raise BadInput("could not read what the migrations would apply:\n" + "\n".join(lines[-15:]))
    if tool == "sql":
        return Pending([m["script"] for m in result.get("pending") or []], list(result.get("locking") or []))
    output = str(result.get("output", ""))
    names = tool_pending(tool, "plan", output)
    return Pending(names or [], [], output.splitlines(), str(result.get("command", "")), names is not None)


def _run(loaded: LoadedSpec, target: str | None, action: str, lines: list[str], *, check: bool, script: str = "",
         version: str = "") -> tuple[PlaybookRun, dict[str, Any]]:
    """migrations.yml with one action (a tool's status and plan in the staged release); its published result."""
    migrations = loaded.spec.database.migrations if loaded.spec.database else None
    if action in STAGED_ACTIONS and migrations and migrations.tool != "sql":  # the release goes to an app host
        try:
            check_artifact(loaded, *resolve_target(loaded, target))
        except Unverified as exc:
            raise BadInput(f"migrations {action} refused before any host was contacted: {exc}") from None
    workspace = prepare_workspace(loaded, target)
    extravars = {"rollwright_migrations_action": action, "rollwright_migrations_script": script,
                 "rollwright_migrations_version": version, "rollwright_migrations_stage": action in STAGED_ACTIONS}
    with Interrupts() as interrupts:
        run = run_playbook(workspace.project, "migrations.yml", workspace.runs, Progress(lines.append),
                           extravars=extravars, check=check, cancel=interrupts.after(1))
    return run, run.custom_stats.get("rollwright_migrations") or {}


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
    for item in result.get("locking") or []:
        write(f"locks a busy table: {item['script']} ({', '.join(item['statements'])}); it waits at most "
              f"lock_timeout_s for its lock")
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
