"""`rollwright target add|list|update|remove|test`: the spec's targets and their inventories."""

from __future__ import annotations

import argparse

from rollwright.cli.common import Subparsers, actions, command, json_arg, say, spec_arg

SIGNATURE_HELP = "deploy only a signed artifact here (artifact.signature, verified on the control node)"
HOST_HELP = "a host as GROUP:HOST=ADDRESS[:PORT], e.g. app:app1=192.0.2.11 (repeatable)"


def cmd_target(args: argparse.Namespace) -> int:
    from rollwright import targets

    if args.action == "list":
        return targets.list_targets(args.spec, say, as_json=args.json)
    if args.action == "test":
        return targets.check_target(args.spec, args.name, say, as_json=args.json)
    if args.action == "add":
        return targets.add_target(args.spec, args.name, hosts=args.host, variables=args.var, inventory=args.inventory,
                                  after=args.after, production=args.production, read_only=args.read_only,
                                  become=args.become, require_signature=args.require_signature, write=say)
    if args.action == "remove":
        return targets.remove_target(args.spec, args.name, delete_inventory=args.delete_inventory, write=say)
    changes = targets.Changes(add_hosts=args.add_host, remove_hosts=args.remove_host, set_vars=args.var,
                              unset_vars=args.unset_var, after=args.after, no_after=args.no_after,
                              production=args.production, read_only=args.read_only, become=args.become,
                              require_signature=args.require_signature)
    return targets.update_target(args.spec, args.name, changes, say)


def register(sub: Subparsers) -> None:
    p = command(sub, "target", "the spec's targets: add, list, update or remove one (spec and inventory), "
                               "test its hosts' SSH and sudo",
                ["rollwright target list", "rollwright target add staging --host app:app1=192.0.2.11"])
    target_actions = actions(p)
    a = command(target_actions, "add", "a new target in the spec: with --host, writes its inventory (hosts.yml); "
                                       "without, adopts the inventory already there (never rewritten)",
                ["rollwright target add staging --host app:app1=192.0.2.11 --host lb:lb1=192.0.2.2 "
                 "--var ansible_user=deploy",
                 "rollwright target add production --inventory inventories/production --production",
                 "rollwright target add lab --inventory inventories/lab/hosts.yml"])
    a.add_argument("name", metavar="NAME", help="target name, e.g. staging")
    spec_arg(a)
    a.add_argument("--inventory", metavar="PATH",
                   help="inventory folder (or .yml file), relative to the spec's folder (default: inventories/NAME); "
                        "one that exists is adopted as it is, and then --host and --var are refused")
    a.add_argument("--host", action="append", default=[], metavar="GROUP:HOST=ADDRESS", help=HOST_HELP)
    a.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                   help="an inventory variable for every host (all: vars), e.g. ansible_user=deploy (repeatable)")
    a.add_argument("--after", metavar="TARGET", help="deploys here need the artifact verified on TARGET first")
    a.add_argument("--production", action="store_true",
                   help="mark it production (no --no-health-check; restore needs --yes)")
    a.add_argument("--read-only", action="store_true",
                   help="mark it read-only (plan, --check, drift, status and history only)")
    a.add_argument("--require-signature", action="store_true", help=SIGNATURE_HELP)
    a.add_argument("--become", action="store_true", help="deploy with privilege escalation (sudo)")
    a.set_defaults(func=cmd_target)

    a = command(target_actions, "list", "every target: inventory, hosts per group, flags",
                ["rollwright target list", "rollwright target list --json"])
    spec_arg(a)
    json_arg(a, "one array, an object per target")
    a.set_defaults(func=cmd_target)

    a = command(target_actions, "update", "change a target's hosts, inventory variables or settings",
                ["rollwright target update staging --add-host app:app3=192.0.2.13",
                 "rollwright target update staging --remove-host app3 --no-become"])
    a.add_argument("name", metavar="NAME", help="target name")
    spec_arg(a)
    a.add_argument("--add-host", action="append", default=[], metavar="GROUP:HOST=ADDRESS", help=HOST_HELP)
    a.add_argument("--remove-host", action="append", default=[], metavar="HOST",
                   help="take HOST out of the inventory, from every group (repeatable)")
    a.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="set an all: vars variable")
    a.add_argument("--unset-var", action="append", default=[], metavar="KEY", help="remove an all: vars variable")
    after = a.add_mutually_exclusive_group()
    after.add_argument("--after", metavar="TARGET", help="deploys here need the artifact verified on TARGET first")
    after.add_argument("--no-after", action="store_true", help="drop the target's `after`")
    for flag, text in (("production", "mark it production (or not)"), ("read-only", "mark it read-only (or not)"),
                       ("require-signature", SIGNATURE_HELP), ("become", "deploy with privilege escalation")):
        a.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None, help=text)
    a.set_defaults(func=cmd_target)

    a = command(target_actions, "remove", "take a target out of the spec (refused while another comes after it)",
                "rollwright target remove staging --delete-inventory")
    a.add_argument("name", metavar="NAME", help="target name")
    spec_arg(a)
    a.add_argument("--delete-inventory", action="store_true",
                   help="delete its inventory too (only inside the spec's folder; kept by default)")
    a.set_defaults(func=cmd_target)

    a = command(target_actions, "test", "can Ansible reach every host (SSH) and become root there (sudo)? "
                                        "exit 1 when not", "rollwright target test staging")
    a.add_argument("name", metavar="NAME", help="target name")
    spec_arg(a)
    json_arg(a, '{"target": ..., "ok": true|false, "hosts": [...]}')
    a.set_defaults(func=cmd_target)
