"""`rollwright lab up|down|status|stop|start|ssh`: the command line over `rollwright.lab.fleet.Lab`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import NoReturn

from rich.console import Console
from rich.table import Table

from rollwright.cli.common import Subparsers, actions, command
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
    remote = args.remote_command[1:] if args.remote_command[:1] == ["--"] else args.remote_command
    argv = [*_lab(args).ssh_args(args.host), *remote]
    os.execv(argv[0], argv)


def register(sub: Subparsers) -> None:
    """`lab` and its actions."""
    lab = command(sub, "lab", "a fleet of real Debian hosts (systemd, sshd, HAProxy, PostgreSQL) on this machine; "
                              "needs root",
                  ["sudo rollwright lab up --app-hosts 3", "sudo rollwright lab ssh app1 -- systemctl status hello"],
                  more="Each host is a systemd-nspawn machine in its own network namespace, reachable over SSH "
                       "from here.")
    lab_actions = actions(lab)

    def action(name: str, help_text: str, example: str, func: object) -> argparse.ArgumentParser:
        parser = command(lab_actions, name, help_text, example)
        parser.add_argument("--name", default=DEFAULT_NAME, help=f"lab name (default: {DEFAULT_NAME})")
        parser.set_defaults(func=func)
        return parser

    up = action("up", "build the image if needed, boot the hosts, write the inventory (idempotent)",
                "sudo rollwright lab up --app-hosts 6", cmd_up)
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

    action("down", "stop every host and remove namespaces, links, overlays and state (idempotent)",
           "sudo rollwright lab down", cmd_down)
    status = action("status", "hosts, addresses, up/down, SSH reachability (exit 1 if any is not ok)",
                    "sudo rollwright lab status --json", cmd_status)
    status.add_argument("--json", action="store_true", help="print JSON: one array, an object per host")
    for name, help_text, func in (
        ("stop", "power one host off and unplug it (for fault tests)", cmd_stop),
        ("start", "boot a stopped host again", cmd_start),
    ):
        host = action(name, help_text, f"sudo rollwright lab {name} app2", func)
        host.add_argument("host", help="host name, e.g. app2")
    ssh = action("ssh", "open a root shell on a host, or run a command", "sudo rollwright lab ssh app1 -- uptime",
                 cmd_ssh)
    ssh.add_argument("host", help="host name, e.g. app1")
    ssh.add_argument("remote_command", metavar="command", nargs=argparse.REMAINDER, help="command to run (after --)")
