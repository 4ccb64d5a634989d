"""Commands that change what the app hosts run: deploy, rollback, promote, recover."""

from __future__ import annotations

import argparse

from rollwright.cli.common import (
    Subparsers,
    artifact_args,
    command,
    direct_arg,
    limit_arg,
    load_with_artifact,
    lock_args,
    on_target,
    output_args,
    say,
    with_output,
)
from rollwright.spec.loader import load_spec


def _forks(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 500:
        raise argparse.ArgumentTypeError(f"expected a number of hosts from 1 to 500, got {value!r}")
    return int(value)


def cmd_deploy(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import DeployOptions, deploy
    from rollwright.run.drift import check
    from rollwright.run.preflight import Overrides

    if args.check:
        return check(load_with_artifact(args), args.target, say)

    options = DeployOptions(
        target=args.target, only_groups=tuple(args.group), skip_groups=tuple(args.skip_group), dry_run=args.dry_run,
        no_health_check=args.no_health_check, limit=args.limit, continue_on_failure=args.continue_on_failure,
        acknowledge_destructive=tuple(args.acknowledge_destructive), direct=args.direct, no_switch=args.no_switch,
        forks=args.forks,
        lock_wait_s=args.lock_wait,
        message=args.message, overrides=Overrides(args.override_freeze, args.force, args.reason))
    return with_output(args, lambda out: deploy(load_with_artifact(args), options, out))


def cmd_rollback(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import rollback

    return with_output(args, lambda out: rollback(load_spec(args.spec), args.target, args.to, args.limit, out,
                                                  lock_wait_s=args.lock_wait, message=args.message))


def cmd_promote(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import rollback

    return with_output(args, lambda out: rollback(load_spec(args.spec), args.target, None, None, out,
                                                  lock_wait_s=args.lock_wait, message=args.message, action="promote"))


def cmd_recover(args: argparse.Namespace) -> int:
    from rollwright.run.recover import recover
    from rollwright.run.workspace import prepare_workspace

    loaded = load_spec(args.spec)
    return with_output(args, lambda out: recover(loaded, prepare_workspace(loaded, args.target), args.target, out,
                                                 lock_wait_s=args.lock_wait))


def register(sub: Subparsers) -> None:
    p = command(sub, "deploy", "deploy the spec's release to a target (ansible-runner, progress, rollback)",
                ["rollwright deploy -t staging", "rollwright deploy -t production --message 'ticket 4411'",
                 "rollwright deploy -t staging --artifact dist/hello-1.4.0.tar.gz",
                 "rollwright deploy -t staging --check"])
    on_target(p)
    artifact_args(p)
    p.add_argument("--group", action="append", default=[], metavar="NAME",
                   help="run only this command group (repeatable); the release steps still run")
    p.add_argument("--skip-group", action="append", default=[], metavar="NAME", help="skip this command group")
    p.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
    p.add_argument("--check", action="store_true",
                   help="run site.yml in check+diff mode: what would change on each host (exit 1 if anything)")
    p.add_argument("--no-health-check", action="store_true",
                   help="skip the health gates (refused on a target marked production)")
    limit_arg(p, " to limit the deploy to")
    p.add_argument("--continue-on-failure", action="store_true",
                   help="a failing command group does not stop the deploy")
    p.add_argument("--acknowledge-destructive", action="append", default=[], metavar="FILE",
                   help="apply this migration although it drops, truncates, renames or retypes (repeatable)")
    direct_arg(p)
    p.add_argument("--forks", type=_forks, metavar="N",
                   help="hosts Ansible works on in parallel, over the target's `forks` (1-500)")
    p.add_argument("--no-switch", action="store_true",
                   help="blue/green: deploy and check the idle colour, leave the traffic (`rollwright promote` later)")
    p.add_argument("--override-freeze", action="store_true",
                   help="deploy inside a change-freeze window (needs --reason)")
    p.add_argument("--force", action="store_true",
                   help="deploy an artifact the target's `after` target never verified (needs --reason)")
    p.add_argument("--reason", default="", help="why an override is needed; kept in the deploy record")
    lock_args(p)
    output_args(p)
    p.set_defaults(func=cmd_deploy)

    p = command(sub, "rollback", "every app host back to its previous release (or --to VERSION)",
                ["rollwright rollback -t production", "rollwright rollback -t staging --to 1.3.0"])
    on_target(p)
    p.add_argument("--to", metavar="VERSION", help="a release staged on the hosts (default: each host's previous)")
    limit_arg(p, " to limit the rollback to")
    lock_args(p)
    output_args(p)
    p.set_defaults(func=cmd_rollback)

    p = command(sub, "recover", "after a killed deploy: bring every app host back to one healthy version "
                                "in service (hosts drained, current ahead of the process, a stale lock)",
                "rollwright recover -t production")
    on_target(p)
    p.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another deploy's lock (default: refuse at once)")
    output_args(p)
    p.set_defaults(func=cmd_recover)

    p = command(sub, "promote", "blue/green: the idle colour takes the traffic in one step",
                "rollwright deploy -t production --no-switch && rollwright promote -t production")
    on_target(p)
    lock_args(p)
    output_args(p)
    p.set_defaults(func=cmd_promote)
