"""`rollwright env set|get|list|delete`: the target's environment for the app, plain values and vault secrets."""

from __future__ import annotations

import argparse

from rollwright.cli.common import (
    Subparsers,
    actions,
    command,
    json_arg,
    on_target,
    print_json,
    say,
    stdin_value,
)
from rollwright.errors import BadInput
from rollwright.spec.loader import load_spec


def cmd_env(args: argparse.Namespace) -> int:
    from rollwright.render.project import inventory_path, resolve_target
    from rollwright.targetenv import TargetEnv

    loaded = load_spec(args.spec)
    name, target = resolve_target(loaded, args.target)
    path = inventory_path(loaded, name, target)
    if path is None:
        raise BadInput(f"{loaded.path}: the built-in local target has no inventory to keep an environment in")
    store = TargetEnv(path, name)
    if args.action == "set":
        store.set(args.name, _env_value(args), secret=args.secret)
        say(f"{name}: {args.name} set ({'secret, in the vault' if args.secret else 'plain'}); "
            "it reaches the hosts with the next deploy")
    elif args.action == "get":
        value = store.get(args.name)
        if value.secret and not args.reveal:
            raise BadInput(f"{args.name} is a secret of target '{name}'; add --reveal to print it")
        print(value.value)
    elif args.action == "delete":
        if not store.delete(args.name):
            raise BadInput(f"target '{name}' has no env value {args.name}")
        say(f"{name}: {args.name} deleted; the hosts drop it with the next deploy")
    elif args.json:
        print_json([{"name": v.name, "secret": v.secret, "value": None if v.secret else v.value}
                    for v in store.list()])
    else:
        for value in store.list():
            say(f"{value.name}=<secret>" if value.secret else f"{value.name}={value.value}")
    return 0


def _env_value(args: argparse.Namespace) -> str:
    """The value to set: the argument for a plain value; for a secret, stdin or a prompt (never argv,
    which shell history and `ps` show)."""
    if args.value is not None:
        if args.secret:
            raise BadInput("a secret is never taken from the command line (shell history and `ps` show it): "
                           "pipe it on stdin or type it at the prompt")
        return str(args.value)
    return stdin_value(f"{args.name}: ", args.secret)


ENV_ACTIONS = (
    ("set", "set NAME (a secret is read from stdin or a prompt; vault password from "
            "ROLLWRIGHT_VAULT_PASSWORD_FILE or ROLLWRIGHT_VAULT_PASSWORD)",
     ["rollwright env set -t staging LOG_LEVEL debug", "rollwright env set -t staging API_TOKEN --secret < token.txt"]),
    ("get", "print NAME's value (a secret only with --reveal)", "rollwright env get -t staging LOG_LEVEL"),
    ("list", "every NAME, secrets masked", "rollwright env list -t staging"),
    ("delete", "remove NAME", "rollwright env delete -t staging LOG_LEVEL"),
)


def register(sub: Subparsers) -> None:
    p = command(sub, "env", "the target's environment for the app: plain values and vault secrets",
                ["rollwright env list -t staging", "rollwright env set -t staging API_TOKEN --secret"])
    env_actions = actions(p)
    for name, text, example in ENV_ACTIONS:
        a = command(env_actions, name, text, example)
        if name != "list":
            a.add_argument("name", metavar="NAME", help="environment variable name, e.g. API_TOKEN")
        if name == "set":
            a.add_argument("value", metavar="VALUE", nargs="?", help="a plain value (default: read stdin)")
            a.add_argument("--secret", action="store_true", help="keep it in the target's ansible-vault file")
        if name == "get":
            a.add_argument("--reveal", action="store_true", help="print it although it is a secret")
        if name == "list":
            json_arg(a, '[{"name": ..., "secret": true|false, "value": ... (null for a secret)}, ...]')
        on_target(a)
        a.set_defaults(func=cmd_env)
