"""`rollwright audit`: what was done to a target, from every host's audit log, merged by time."""

from __future__ import annotations

import argparse
import sys

from rollwright.cli.common import Subparsers, command, host_arg, json_arg, on_target, print_json_lines, say
from rollwright.errors import EXIT_FAILED
from rollwright.spec.loader import load_spec

DEFAULT_LINES = 50


def cmd_audit(args: argparse.Namespace) -> int:
    from rollwright.render.project import resolve_target
    from rollwright.run.audit import check_count, read_audit
    from rollwright.run.deploy import target_inventory
    from rollwright.run.remote import pick_hosts
    from rollwright.run.workspace import prepare_workspace

    check_count(args.lines)
    loaded = load_spec(args.spec)
    name, target = resolve_target(loaded, args.target)
    known = target_inventory(loaded, name, target).get("all", [])
    hosts = pick_hosts(known, args.host, f"hosts of target {name}")
    found = read_audit(prepare_workspace(loaded, name), args.lines, ",".join(hosts) if args.host else None)
    if args.json:
        print_json_lines(line.as_dict() for line in found.lines)
    else:
        width = max((len(line.host) for line in found.lines), default=0)
        for line in found.lines:
            say(f"{line.host:<{width}}  {line.text}")
        if not found.lines and not found.failed:
            say("no audit log lines")
    for host, count in sorted(found.unreadable.items()):
        print(f"warning: {host}: {count} line(s) not starting with a time were left out", file=sys.stderr)
    for host, why in sorted(found.failed.items()):
        print(f"error: {host}: {why}", file=sys.stderr)
    return EXIT_FAILED if found.failed else 0


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of lines, got {value!r}")
    return int(value)


def register(sub: Subparsers) -> None:
    p = command(sub, "audit", "the audit log of every host of a target (deploys, rollbacks, app actions, exec), "
                              "merged by time, newest last",
                ["rollwright audit -t production", "rollwright audit -t production --host app2 -n 200",
                 "rollwright audit -t production --json | jq -c 'select(.action == \"deploy\")'"],
                more="Each line is prefixed with its host. An unreachable host is named on stderr (exit 1); the "
                     "other hosts' lines are still printed.")
    on_target(p)
    host_arg(p, "every host of the target", only="only this host's log")
    p.add_argument("-n", "--lines", type=_count, default=DEFAULT_LINES, metavar="N",
                   help=f"the newest N lines of all hosts together (default {DEFAULT_LINES})")
    json_arg(p, "one object per line (JSON Lines): host, time, id, action, app, version, status, user, an exec "
                "line's command and exit, line")
    p.set_defaults(func=cmd_audit)
