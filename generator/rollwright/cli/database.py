"""The target's database: tracked migrations, the dumps deploys took, and restoring one."""

from __future__ import annotations

import argparse

from rollwright.cli.common import Subparsers, actions, command, on_target, say
from rollwright.spec.loader import load_spec


def cmd_migrations(args: argparse.Namespace) -> int:
    from rollwright.run.migrations import migrations

    return migrations(load_spec(args.spec), args.target, args.action, say, script=getattr(args, "file", None),
                      version=getattr(args, "version", None), dry_run=getattr(args, "dry_run", False),
                      limit=getattr(args, "limit", 20), as_json=args.json)


def cmd_backups(args: argparse.Namespace) -> int:
    from rollwright.run.backups import list_backups

    return list_backups(load_spec(args.spec), args.target, say, as_json=args.json)


def cmd_restore(args: argparse.Namespace) -> int:
    from rollwright.run.backups import restore

    return restore(load_spec(args.spec), args.target, args.backup, say, yes=args.yes)


MIGRATION_ACTIONS = (
    ("status", "applied / pending / changed / missing, and every problem; changes nothing; exit 1 on a problem, "
               "4 when some migration is not applied yet",
     "rollwright migrations status -t staging"),
    ("history", "the history table, newest last", "rollwright migrations history -t production --limit 5"),
    ("apply", "apply what is pending (as a deploy would, without the release)",
     "rollwright migrations apply -t staging --dry-run"),
    ("mark-applied", "record FILE as applied without running it",
     "rollwright migrations mark-applied -t staging V3__add_index.sql"),
    ("baseline", "record VERSION as the starting point: older files are never run",
     "rollwright migrations baseline -t production 3"),
)


def register(sub: Subparsers) -> None:
    p = command(sub, "migrations", "tracked SQL migrations on the target's database (status, history, ...)",
                ["rollwright migrations status -t staging", "rollwright migrations apply -t staging"])
    migration_actions = actions(p)
    for name, text, example in MIGRATION_ACTIONS:
        a = command(migration_actions, name, text, example)
        on_target(a, cmd_migrations, json="one document")
        if name == "history":
            a.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
        if name in ("apply", "mark-applied", "baseline"):
            a.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
        if name == "mark-applied":
            a.add_argument("file", help="migration file name, e.g. V3__add_index.sql")
        if name == "baseline":
            a.add_argument("version", help="version, e.g. 3 or 1.2")

    p = command(sub, "backups", "the database dumps deploys took", "rollwright backups list -t production")
    a = command(actions(p), "list", "the dumps on the database host, newest first",
                "rollwright backups list -t production --json")
    on_target(a, cmd_backups, json="one array, an object per dump, newest first")

    p = command(sub, "restore", "restore a dump over the target's database (asks first)",
                "rollwright restore -t staging hello-20261204T101500Z-1.4.0.dump")
    p.add_argument("backup", help="file name from `rollwright backups list`")
    on_target(p)
    p.add_argument("--yes", action="store_true", help="do not ask; required on a target marked production")
    p.set_defaults(func=cmd_restore)
