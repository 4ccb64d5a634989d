"""`rollwright logs`: the app service's journal on every app host at once, each line prefixed with its host."""

from __future__ import annotations

import argparse

from rollwright.cli.common import Subparsers, command, host_arg, say, say_err, spec_arg, target_arg
from rollwright.run.journal import DEFAULT_LINES, MAX_LINES
from rollwright.spec.loader import load_spec


def cmd_logs(args: argparse.Namespace) -> int:
    from rollwright.run.journal import LogsOptions, logs

    options = LogsOptions(follow=args.follow, since=args.since, grep=args.grep, lines=args.lines)
    options.check()  # before the spec is even read: a bad option never waits on anything
    return logs(load_spec(args.spec), args.target, args.host, options, say, say_err)


def register(sub: Subparsers) -> None:
    p = command(sub, "logs", "the app service's systemd journal on every app host at once, each line prefixed with "
                             "its host (exit 1 naming a host that cannot be reached; the others still stream)",
                ["rollwright logs -t production", "rollwright logs -t staging -f --host app1,app2",
                 "rollwright logs -t production --since 2h --grep 'error|timeout' -n 500"],
                more="Over SSH, connected as Ansible would (the inventory's host, port, user, key and ssh args, "
                     "host keys checked); a target with become reads the journal through `sudo -n`. --follow stops "
                     "on Ctrl-C or SIGTERM, ends every ssh it started and exits 0.")
    spec_arg(p, short=False)
    target_arg(p)
    host_arg(p, "every app host")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep streaming new lines until Ctrl-C or SIGTERM (here -f is --follow, as in journalctl; "
                        "the spec is --spec)")
    p.add_argument("--since", metavar="AGE", help="only lines newer than AGE: 30s, 10m, 2h, 1d, 1w")
    p.add_argument("--grep", metavar="REGEX",
                   help="only lines whose message matches (journalctl --grep: PCRE2, case-insensitive unless the "
                        "pattern has a capital letter)")
    p.add_argument("-n", "--lines", type=int, default=DEFAULT_LINES, metavar="N",
                   help=f"the last N lines per host (0 to {MAX_LINES}; default {DEFAULT_LINES})")
    p.set_defaults(func=cmd_logs)
