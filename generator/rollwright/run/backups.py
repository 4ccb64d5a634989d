"""`rollwright backups list` and `rollwright restore BACKUP`: the dumps the deploy takes, and putting one back.

A restore replaces what is in the database, so it asks first (type the database name), and on a target
marked production it needs `--yes` as well: an unattended restore there must be a deliberate choice.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import PurePosixPath

from rollwright.errors import EXIT_FAILED, BadInput
from rollwright.render.project import resolve_target
from rollwright.run.engine import Interrupts, run_playbook
from rollwright.run.preflight import refuse_read_only
from rollwright.run.progress import Progress
from rollwright.run.workspace import prepare_workspace
from rollwright.spec.loader import LoadedSpec

Write = Callable[[str], None]
DUMP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.dump$")


def _database(loaded: LoadedSpec) -> tuple[str, str]:
    database = loaded.spec.database
    if not (database and database.backup):
        raise BadInput(f"{loaded.path}: the spec has no database.backup")
    return database.name, database.backup.dir


def list_backups(loaded: LoadedSpec, target: str | None, write: Write, as_json: bool = False) -> int:
    """The dumps on the database host, newest first."""
    _database(loaded)
    workspace = prepare_workspace(loaded, target)
    lines: list[str] = []
    run = run_playbook(workspace.project, "backups.yml", workspace.runs, Progress(lines.append))
    if not run.ok:
        for line in lines:
            write(line)
        write(f"✗ could not list the backups; details: {run.artifact_dir / 'stdout'}")
        return EXIT_FAILED
    dumps = run.custom_stats.get("rollwright_backups") or []
    if as_json:
        write(json.dumps(dumps, indent=2))
        return 0
    write(f"{'backup':<60} {'size':>10}  taken")
    for dump in dumps:
        taken = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(dump["mtime"])))
        write(f"{PurePosixPath(dump['path']).name:<60} {int(dump['size']):>10}  {taken} UTC")
    if not dumps:
        write("(no backups yet)")
    return 0


def restore(loaded: LoadedSpec, target: str | None, backup: str, write: Write, *, yes: bool,
            ask: Callable[[str], str] = input) -> int:
    """Restore one dump (a file name from `backups list`) over the target's database."""
    name, folder = _database(loaded)
    target_name, target_spec = resolve_target(loaded, target)
    refuse_read_only(target_name, target_spec, "restore")
    if not DUMP_NAME.match(backup):
        raise BadInput(f"{backup!r} is not a backup file name (see `rollwright backups list`)")
    if target_spec.production and not yes:
        raise BadInput(f"target '{target_name}' is marked production: restoring there needs --yes")
    if not yes:
        answer = ask(f"restore {backup} over database {name} on {target_name}? Everything written since is lost. "
                     f"Type the database name to go on: ")
        if answer.strip() != name:
            write("not confirmed; nothing was restored")
            return EXIT_FAILED
    workspace = prepare_workspace(loaded, target)
    write(f"restoring {folder}/{backup} into {name} on {target_name}")
    with Interrupts() as interrupts:
        run = run_playbook(workspace.project, "backups.yml", workspace.runs, Progress(write),
                           extravars={"rollwright_backups_action": "restore", "rollwright_backup": backup},
                           cancel=interrupts.after(1))
    if not run.ok:
        write(f"✗ restore failed (pg_restore runs in one transaction: the database is as it was); "
              f"details: {run.artifact_dir / 'stdout'}")
        return EXIT_FAILED
    write(f"restored {backup} into {name}")
    return 0
