"""`rollwright lock status|release`: the target's deploy lock, seen and broken by hand."""

from __future__ import annotations

import argparse

from rollwright.cli.common import (
    Subparsers,
    actions,
    command,
    json_arg,
    print_json,
    say,
    spec_arg,
    target_arg,
)
from rollwright.errors import BadInput
from rollwright.spec.loader import load_spec


def cmd_lock(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import prepare_workspace
    from rollwright.run.lock import DeployLock, describe, holder_alive

    workspace = prepare_workspace(load_spec(args.spec), args.target)
    lock = DeployLock(workspace.project, workspace.runs, "", "", "", say)
    ok, result = lock.call("status")
    if not ok:
        raise BadInput(f"could not read the deploy lock: {result.get('msg', 'failed')}")
    holder = result.get("holder") or {}
    if args.action == "status":
        if args.json:
            print_json({"held": bool(holder), "holder": holder})
        else:
            say(f"locked by {describe(holder)}" if holder else "not locked")
        return 1 if holder else 0
    if not holder:
        say("not locked; nothing to release")
        return 0
    alive = holder_alive(holder)
    if alive:
        raise BadInput(f"the lock belongs to a deploy still running on this machine: {describe(holder)}; "
                       "stop it with Ctrl-C instead (it releases the lock)")
    if not args.force and alive is None:
        raise BadInput(f"the target is locked by {describe(holder)}; if that deploy is gone, add --force")
    say(f"warning: breaking the deploy lock of {describe(holder)}")
    ok, result = lock.call("release", force=True)
    if not ok:
        raise BadInput(f"could not release the deploy lock: {result.get('msg', 'failed')}")
    say("released")
    return 0


def register(sub: Subparsers) -> None:
    p = command(sub, "lock", "the target's deploy lock: who holds it, or break a stale one",
                ["rollwright lock status -t production", "rollwright lock release -t production --force"])
    locks = actions(p)
    a = command(locks, "status", "who holds the lock, since when, for which version (exit 1 when held)",
                "rollwright lock status -t production --json")
    spec_arg(a)
    target_arg(a)
    json_arg(a, '{"held": true|false, "holder": {...}}')
    a.set_defaults(func=cmd_lock)
    a = command(locks, "release", "break a lock whose deploy is gone (--force for a holder on another machine)",
                "rollwright lock release -t production")
    spec_arg(a)
    target_arg(a)
    a.add_argument("--force", action="store_true", help="break it although its holder may be alive elsewhere")
    a.set_defaults(func=cmd_lock)
