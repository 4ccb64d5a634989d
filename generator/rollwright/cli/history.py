"""The control node's records: history (a row per deploy or rollback) and show (one deployment log)."""

from __future__ import annotations

import argparse
import json

from rollwright.cli.common import Subparsers, command, json_arg, print_json_lines, say, spec_arg
from rollwright.errors import BadInput
from rollwright.spec.loader import load_spec


def cmd_history(args: argparse.Namespace) -> int:
    from rollwright.run.records import History
    from rollwright.run.workspace import STATE_DIR

    loaded = load_spec(args.spec)
    rows = History(loaded.base_dir / STATE_DIR).list(args.target, args.limit)
    if args.json:
        print_json_lines(rows)
        return 0
    say(f"{'id':<22} {'target':<12} {'action':<9} {'version':<12} {'status':<12} {'verified':<9} {'seconds':>8}  by")
    for row in rows:
        say(f"{row['id']:<22} {row['target']:<12} {row['action']:<9} {row['version'] or '-':<12} {row['status']:<12} "
            f"{'yes' if row['verified'] else 'no':<9} {row['seconds']:>8.1f}  {row['user']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rollwright.run.records import History, Record, markdown
    from rollwright.run.workspace import STATE_DIR

    loaded = load_spec(args.spec)
    found = History(loaded.base_dir / STATE_DIR).get(args.deploy_id)
    if found is None:
        raise BadInput(f"no single deploy record with id {args.deploy_id!r} beside {loaded.path} "
                       "(see `rollwright history`)")
    print(json.dumps(found, indent=2) if args.json else markdown(Record(**found)), end="" if not args.json else "\n")
    return 0


def register(sub: Subparsers) -> None:
    p = command(sub, "history", "past deploys and rollbacks of this spec, newest first (from the records)",
                ["rollwright history -t production",
                 "rollwright history --json | jq -r 'select(.status != \"succeeded\") | .id'"])
    spec_arg(p)
    p.add_argument("-t", "--target", help="only this target")
    p.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
    json_arg(p, "one object per line, newest first (JSON Lines)")
    p.set_defaults(func=cmd_history)

    p = command(sub, "show", "one deploy record: the deployment log (or --json)",
                ["rollwright show 20261204T101500Z-3f2a", "rollwright show 20261204T1015 --json"])
    p.add_argument("deploy_id", metavar="DEPLOY_ID", help="its id from `rollwright history` (a unique prefix will do)")
    spec_arg(p)
    json_arg(p, "the whole record, one document")
    p.set_defaults(func=cmd_show)
