"""Commands that read the hosts and change nothing: status, verify, drift."""

from __future__ import annotations

import argparse

from rollwright.cli.common import (
    Subparsers,
    command,
    json_arg,
    limit_arg,
    on_target,
    print_json,
    say,
)
from rollwright.spec.loader import load_spec


def cmd_status(args: argparse.Namespace) -> int:
    from rollwright.run.status import Workspace, host_states, print_states
    from rollwright.run.workspace import prepare_workspace

    loaded = load_spec(args.spec)
    workspace: Workspace = prepare_workspace(loaded, args.target)
    states = host_states(workspace, args.limit)
    if args.json:
        print_json([vars(s) for s in states])
    else:
        print_states(say, states)
    return 0 if states and all(s.settled for s in states) else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from rollwright.run.verify import print_verification, run_verify
    from rollwright.run.workspace import prepare_workspace

    loaded = load_spec(args.spec)
    workspace = prepare_workspace(loaded, args.target)
    result = run_verify(workspace.project, workspace.runs)
    if args.json:
        print_json(result.as_dict())
    else:
        print_verification(say, result)
    return 0 if result.ok else 1


def cmd_drift(args: argparse.Namespace) -> int:
    from rollwright.run.drift import drift

    return drift(load_spec(args.spec), args.target, say, as_json=args.json)


def register(sub: Subparsers) -> None:
    p = command(sub, "status", "what every app host really runs (its process's release, the version its health "
                               "endpoint names), whether it is healthy and its load balancer state "
                               "(changes nothing; exit 1 when a host is not settled)",
                ["rollwright status -t production", "rollwright status -t staging --limit app1 --json"])
    on_target(p)
    limit_arg(p)
    json_arg(p, "one array, an object per host")
    p.set_defaults(func=cmd_status)

    p = command(sub, "verify", "prove the hosts are as the spec says: the generated testinfra suite "
                               "(unit, release, env file, port, health, load balancer, migrations); exit 1 "
                               "naming each host and check that fails",
                "rollwright verify -t staging")
    on_target(p, cmd_verify,
              json='{"ok": ..., "passed": N, "failures": [...], "seconds": S, "report": ..., "error": ...}')

    p = command(sub, "drift", "hosts whose files, unit, env file or current release differ from the spec "
                              "(check mode; exit 1 when some do)",
                "rollwright drift -t production")
    on_target(p, cmd_drift, json='{"ok": ..., "changes": {HOST: [what differs, ...]}}')
