"""`rollwright lab up|down|status|stop|start|ssh`: the command line over `rollwright.lab.fleet.Lab`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import NoReturn

from rich.console import Console
from rich.table import Table

from rollwright.lab.fleet import DEFAULT_APP_HOSTS, DEFAULT_NAME, MAX_APP_HOSTS, Lab, UpResult


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(args.name)


def _print_up(result: UpResult) -> None:
    table = Table(title=None, show_edge=False)
    for column in ("host", "group", "address"):
        table.add_column(column)
    for host in result.hosts:
        table.add_row(host.name, host.group, host.address)
    console = Console()
    console.print(table)
    if result.already_up:
        console.print("already up: nothing changed")
    else:
        console.print(f"booted in {result.boot_seconds:.1f} s (image: {result.image_seconds:.1f} s)")
    console.print(f"inventory: {result.inventory}")


def cmd_up(args: argparse.Namespace) -> int:
    lab = Lab(
        args.name,
        args.app_hosts,
        subnet=args.subnet,
        inventory=args.inventory,
        app_port=args.app_port,
        backend=args.backend,
    )
    _print_up(lab.up())
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    _lab(args).down()
    print(f"lab {args.name} is down")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    hosts = _lab(args).status()
    if args.json:
        print(json.dumps([dataclasses.asdict(h) for h in hosts], indent=2))
        return 0
    table = Table(show_edge=False)
    for column in ("host", "group", "address", "state", "ssh", "pid", "memory"):
        table.add_column(column)
    for h in hosts:
        state = "[green]up[/]" if h.running else "[red]down[/]"
        ssh = "[green]ok[/]" if h.ssh else "[red]no[/]"
        memory = f"{h.memory_kib / 1024:.0f} MiB" if h.running else "-"
        table.add_row(h.name, h.group, h.address, state, ssh, str(h.pid or "-"), memory)
    Console().print(table)
    return 0 if all(h.running and h.ssh for h in hosts) else 1


def cmd_stop(args: argparse.Namespace) -> int:
    _lab(args).stop(args.host)
    print(f"{args.host} stopped")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    _lab(args).start(args.host)
    print(f"{args.host} is up")
    return 0


def cmd_ssh(args: argparse.Namespace) -> NoReturn:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    argv = [*_lab(args).ssh_args(args.host), *command]
    os.execv(argv[0], argv)


def add_lab_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `lab` and its actions to the top-level subcommands."""
    lab = sub.add_parser(
        "lab",
        help="a fleet of real Debian 12 hosts (systemd, sshd) on this machine; needs root",
        description="Local test fleet: app hosts, an HAProxy load balancer and a PostgreSQL host, each a "
        "systemd-nspawn machine in its own network namespace, reachable over SSH from here.",
    )
    actions = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str, func: object) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--name", default=DEFAULT_NAME, help=f"lab name (default: {DEFAULT_NAME})")
        parser.set_defaults(func=func)
        return parser

    up = action("up", "build the image if needed, boot the hosts, write the inventory (idempotent)", cmd_up)
    up.add_argument(
        "--app-hosts",
        type=int,
        default=DEFAULT_APP_HOSTS,
        metavar="N",
        help=f"number of app hosts, 1-{MAX_APP_HOSTS} (default: {DEFAULT_APP_HOSTS})",
    )
    up.add_argument("--subnet", help="IPv4 subnet for the lab bridge (default: a free 10.213.X.0/24)")
    up.add_argument(
        "--inventory", metavar="PATH", help="where to write the inventory (default: inventories/lab/hosts.yml)"
    )
    up.add_argument("--app-port", type=int, default=8080, help="app port behind HAProxy (default: 8080)")
    up.add_argument("--backend", default="app", help="HAProxy backend name (default: app)")

    action("down", "stop every host and remove namespaces, links, overlays and state (idempotent)", cmd_down)
    status = action("status", "hosts, addresses, up/down, SSH reachability (exit 1 if any is not ok)", cmd_status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for name, help_text, func in (
        ("stop", "power one host off and unplug it (for fault tests)", cmd_stop),
        ("start", "boot a stopped host again", cmd_start),
    ):
        action(name, help_text, func).add_argument("host", help="host name, e.g. app2")
    ssh = action("ssh", "open a root shell on a host, or run a command: lab ssh app1 -- uptime", cmd_ssh)
    ssh.add_argument("host", help="host name, e.g. app1")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="command to run (after --)")
