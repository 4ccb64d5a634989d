"""`rollwright lock status|acquire|release`: the target's deploy lock, seen, held for maintenance, broken by
hand."""

from __future__ import annotations

import argparse

from rollwright.cli.common import (
    Subparsers,
    actions,
    command,
    on_target,
    print_json,
    say,
)
from rollwright.errors import BadInput
from rollwright.spec.loader import load_spec


def cmd_lock(args: argparse.Namespace) -> int:
    from rollwright.run.lock import DeployLock, describe, holder_alive
    from rollwright.run.records import operator
    from rollwright.run.workspace import prepare_workspace

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
    if holder.get("hold"):  # no process behind it: its operator ends it, another one only with --force
        if holder.get("user") != operator() and not args.force:
            raise BadInput(f"the target is held for maintenance by {describe(holder)}; ask them, or add --force")
        say(f"ending the maintenance hold of {describe(holder)}")
        # released as its holder: the lock goes away whole (a forced break keeps it aside)
        ok, result = DeployLock(workspace.project, workspace.runs, str(holder.get("id")), "", "", say).call("release")
    else:
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


def cmd_lock_acquire(args: argparse.Namespace) -> int:
    """A maintenance hold: the lock with no process behind it, kept until `lock release`."""
    from rollwright.render.project import resolve_target
    from rollwright.run.lock import DeployLock, describe
    from rollwright.run.records import new_id, now
    from rollwright.run.workspace import prepare_workspace

    if not args.message.strip():
        raise BadInput("--message must say why the target is held (deploys show it when they refuse)")
    if args.wait < 0:
        raise BadInput(f"--wait must be 0 or more seconds, got {args.wait:g}")
    loaded = load_spec(args.spec)
    name, _ = resolve_target(loaded, args.target)
    workspace = prepare_workspace(loaded, name)
    lock = DeployLock(workspace.project, workspace.runs, new_id(now()), "", args.message.strip(), say, hold=True)
    lock.acquire(args.wait)  # refuses naming the holder
    say(f"held for maintenance: {describe(lock.holder)}")
    say(f"deploys, rollbacks and app actions on {name} refuse until `rollwright lock release -t {name}`")
    return 0


def register(sub: Subparsers) -> None:
    p = command(sub, "lock", "the target's deploy lock: who holds it, hold it for maintenance, or break a stale one",
                ["rollwright lock status -t production", "rollwright lock acquire -t production -m 'db upgrade'",
                 "rollwright lock release -t production --force"])
    locks = actions(p)
    a = command(locks, "status", "who holds the lock, since when, for which version (exit 1 when held)",
                "rollwright lock status -t production --json")
    on_target(a, cmd_lock, json='{"held": true|false, "holder": {...}}')
    a = command(locks, "acquire", "hold the target for maintenance: deploys refuse, naming you and the message, "
                                  "until `lock release`",
                "rollwright lock acquire -t production -m 'database upgrade, ticket 881'",
                more="A hold has no process behind it, so no deploy breaks it as stale. `lock release` ends it; "
                     "another operator's hold only with --force.")
    on_target(a)
    a.add_argument("-m", "--message", required=True, help="why: deploys that refuse name it")
    a.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for a lock someone holds (default: refuse at once, naming them)")
    a.set_defaults(func=cmd_lock_acquire)
    a = command(locks, "release", "end a maintenance hold, or break a lock whose deploy is gone (--force for a "
                                  "holder on another machine, or another operator's hold)",
                "rollwright lock release -t production")
    on_target(a)
    a.add_argument("--force", action="store_true",
                   help="break it although its holder may be alive elsewhere (or end another operator's hold)")
    a.set_defaults(func=cmd_lock)
