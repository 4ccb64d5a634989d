"""`rollwright exec`: a command on the app hosts, in a release folder, as the service user with its env."""

from __future__ import annotations

import argparse

from rollwright.cli.common import Subparsers, command, host_arg, on_target, say, say_err
from rollwright.spec.loader import load_spec


def cmd_exec(args: argparse.Namespace) -> int:
    from rollwright.run.hostexec import ExecOptions, execute

    remote = args.remote_command[1:] if args.remote_command[:1] == ["--"] else args.remote_command
    options = ExecOptions(command=tuple(remote), hosts=tuple(args.host), every=args.all, release=args.release,
                          interactive=args.interactive, read_only_safe=args.read_only_safe)
    options.check()
    return execute(load_spec(args.spec), args.target, options, say, say_err)


def register(sub: Subparsers) -> None:
    p = command(sub, "exec", "run a command on the app hosts in the current (or a staged) release, as the service "
                             "user with the service's environment; exit 1 naming each host where it failed",
                ["rollwright exec -t staging -- python3 manage.py showmigrations",
                 "rollwright exec -t production --all -- cat REVISION",
                 "rollwright exec -t staging -i -- python3 manage.py shell",
                 "rollwright exec -t production --read-only-safe -- python3 manage.py check"],
                more="It runs as a transient systemd unit (systemd-run --uid --gid -p EnvironmentFile "
                     "--working-directory), so the env file's values never pass through this machine; every run "
                     "appends a line to the host's audit log (/var/log/rollwright/audit.log) with the command's "
                     "name and exit code, never its arguments. One host's output is printed as it is; several "
                     "hosts' lines are prefixed by host. Ctrl-C stops the command on every host (exit 130).")
    on_target(p)
    host_arg(p, "the first app host")
    p.add_argument("--all", action="store_true", help="every app host, at once")
    p.add_argument("--release", metavar="VERSION", help="run in this staged release (default: the current one)")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="a terminal session on one host (ssh -t, systemd-run --pty), e.g. a shell")
    p.add_argument("--read-only-safe", action="store_true",
                   help="on a read-only target: you vouch the command changes nothing (the audit line says so)")
    p.add_argument("remote_command", metavar="-- COMMAND", nargs=argparse.REMAINDER,
                   help="the command and its arguments, after --")
    p.set_defaults(func=cmd_exec)
