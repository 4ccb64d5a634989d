"""`rollwright app start|stop|restart`: the app's service between deploys, batch by batch behind the load
balancer, under the deploy lock."""

from __future__ import annotations

import argparse
import sys

from rollwright.cli.common import (
    Subparsers,
    actions,
    command,
    host_arg,
    lock_args,
    on_target,
    output_args,
    say,
    with_output,
)
from rollwright.errors import EXIT_FAILED, BadInput
from rollwright.spec.loader import load_spec

ACTIONS = (
    ("start", "start the service where it is not running: drain, start, health gate, back in the load balancer",
     "rollwright app start -t production --host app2"),
    ("stop", "stop the service, batch by batch; its hosts stay out of the load balancer (asks on production)",
     "rollwright app stop -t staging --host app2"),
    ("restart", "restart the service batch by batch: drain, restart, health gate, back in the load balancer",
     "rollwright app restart -t production"),
)


def cmd_app(args: argparse.Namespace) -> int:
    from rollwright.run.app import plan_app, run_app

    if args.lock_wait < 0:
        raise BadInput(f"--lock-wait must be 0 or more seconds, got {args.lock_wait:g}")
    loaded = load_spec(args.spec)
    plan = plan_app(loaded, args.target, args.action, args.host)
    if plan.asks_first and not args.yes:
        if not sys.stdin.isatty():
            raise BadInput(f"target {plan.target} is marked production: `app stop` asks first, and there is no "
                           "terminal to ask; add --yes")
        print(f"stop the app on {', '.join(plan.hosts)} of production target {plan.target}? They stay out of the "
              "load balancer until `app start`. Type the target name to go on: ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip() != plan.target:
            say("not confirmed; nothing was stopped")
            return EXIT_FAILED
    return with_output(args, lambda out: run_app(loaded, plan, out, lock_wait_s=args.lock_wait,
                                                 message=args.message))


def register(sub: Subparsers) -> None:
    p = command(sub, "app", "start, stop or restart the app's service between deploys, batch by batch behind the "
                            "load balancer", [example for _, _, example in ACTIONS],
                more="Each host is drained first, then acted on; start and restart pass its health gate before it "
                     "goes back. A failed gate stops the run there: that host stays drained, later batches are not "
                     "touched. Under the deploy lock; recorded in history and in every host's audit log.")
    acts = actions(p)
    for name, summary, example in ACTIONS:
        a = command(acts, name, summary, example)
        on_target(a)
        host_arg(a, "every app host")
        if name == "stop":
            a.add_argument("--yes", action="store_true",
                           help="do not ask (a target marked production asks; without a terminal it needs --yes)")
        lock_args(a)
        output_args(a)
        a.set_defaults(func=cmd_app, yes=False)
