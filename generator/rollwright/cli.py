"""The one entry point: `rollwright <command>`.

Exit codes: 0 ok, 1 the deploy (or a lab/run action) failed and the fleet is on one healthy version,
2 bad input (spec, arguments), 3 failed and the fleet is split or unhealthy (a human must look).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rollwright.errors import EXIT_BAD_INPUT, EXIT_FAILED, BadInput, RollwrightError
from rollwright.run.output import ClosedPipeSafe, Output
from rollwright.spec.loader import SpecError, load_spec

DEFAULT_SPEC = "rollwright.yml"


def _spec_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--spec", default=DEFAULT_SPEC, type=Path,
                        help=f"deploy spec: YAML, or a deployment-config JSON (default: {DEFAULT_SPEC})")


def _target_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--target", help="target name from the spec (default: the only one, or local)")


def _output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="progress as JSON events, one per line (for machines)")
    parser.add_argument("--no-color", action="store_true",
                        help="plain lines, no live view (also NO_COLOR=1, or when stdout is not a terminal)")


def _lock_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long for another deploy's lock (default: refuse at once)")
    parser.add_argument("--message", default="", help="why: kept in the lock and shown to whoever waits")


def _forks(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 500:
        raise argparse.ArgumentTypeError(f"expected a number of hosts from 1 to 500, got {value!r}")
    return int(value)


def _direct_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--direct", action="store_true",
                        help="every app host at once (a hotfix); required for strategy direct on production")


def _json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def cmd_init(args: argparse.Namespace) -> int:
    from rollwright.spec.starter import detect_stack, starter_spec

    folder = Path(args.dir)
    path = folder / DEFAULT_SPEC
    if path.exists() and not args.force:
        raise BadInput(f"{path} exists; use --force to overwrite it")
    stack = detect_stack(folder)
    app = args.app or _app_name(folder)
    path.write_text(starter_spec(app, stack), encoding="utf-8")
    load_spec(path)  # the starter must always be valid
    print(f"wrote {path} (stack: {stack.name}); edit the CHANGE ME values, then `rollwright validate -f {path}`")
    return 0


def _app_name(folder: Path) -> str:
    from rollwright.spec.deployconfig import app_name_for

    return app_name_for(folder.resolve() / DEFAULT_SPEC)


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        loaded = load_spec(args.spec)
    except SpecError as exc:
        if args.json:
            print(json.dumps({"valid": False, "issues": [vars(i) for i in exc.issues]}, indent=2))
            return EXIT_BAD_INPUT
        raise
    if args.json:
        print(json.dumps({"valid": True, "app": loaded.spec.app, "targets": list(loaded.spec.targets)}, indent=2))
    else:
        print(f"{args.spec}: valid (app {loaded.spec.app}, targets: {', '.join(loaded.spec.targets) or 'local'})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from rollwright.spec.schema import spec_schema

    print(json.dumps(spec_schema(), indent=2, sort_keys=True))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from rollwright.inventory import inventory_groups
    from rollwright.render.plan import build_plan, plan_as_json, plan_as_text
    from rollwright.render.policy import allowed
    from rollwright.render.project import (
        expand_groups,
        inventory_path,
        read_migrations,
        resolve_target,
    )

    loaded = load_spec(args.spec)
    name, target = resolve_target(loaded, args.target)
    loaded = allowed(loaded, name, target, args.direct)
    path = inventory_path(loaded, name, target)
    inventory = inventory_groups(path) if path else {"all": ["localhost"]}
    steps = build_plan(loaded.spec, expand_groups(loaded), inventory, read_migrations(loaded))
    if args.json:
        print(json.dumps({"app": loaded.spec.app, "target": name, "steps": plan_as_json(steps)}, indent=2))
    else:
        print(f"plan for {loaded.spec.app} on target {name} (nothing is touched):")
        print(plan_as_text(steps))
    if any(step.phase == "problem" for step in steps):  # scripts that gate on the plan must see it
        print("the plan has problems (see [problem]): fix them before a deploy", file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from rollwright.render.project import prepare, render, write_project

    start = time.perf_counter()
    loaded = load_spec(args.spec)
    out = Path(args.output) if args.output else Path("build") / (args.target or "local")
    files = render(prepare(loaded, args.target))
    write_project(files, out)
    took = time.perf_counter() - start
    if args.json:
        print(json.dumps({"output": str(out), "files": len(files), "seconds": round(took, 3)}))
    else:
        print(f"wrote {len(files)} files to {out} in {took:.2f}s; run: cd {out} && ansible-playbook site.yml")
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _with_output(args: argparse.Namespace, run: Callable[[Output], int]) -> int:
    """Run a deploy or rollback with the progress view the terminal, --no-color/NO_COLOR or --json asks for;
    in JSON the stream ends with a `result` event (or an `error` event for a refusal)."""
    from rollwright.run.output import choose_output

    with choose_output(as_json=args.json, no_color=args.no_color) as out:
        try:
            code = run(out)
        except RollwrightError as exc:
            if args.json:
                out.event("error", str(exc), exit_code=exc.exit_code)
            raise
        if args.json:
            out.event("result", f"exit {code}", exit_code=code)
    return code


def cmd_deploy(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import DeployOptions, deploy
    from rollwright.run.drift import check
    from rollwright.run.preflight import Overrides

    if args.check:
        return check(load_spec(args.spec), args.target, _say)

    options = DeployOptions(
        target=args.target, only_groups=tuple(args.group), skip_groups=tuple(args.skip_group), dry_run=args.dry_run,
        no_health_check=args.no_health_check, limit=args.limit, continue_on_failure=args.continue_on_failure,
        acknowledge_destructive=tuple(args.acknowledge_destructive), direct=args.direct, no_switch=args.no_switch,
        forks=args.forks,
        lock_wait_s=args.lock_wait,
        message=args.message, overrides=Overrides(args.override_freeze, args.force, args.reason))
    return _with_output(args, lambda out: deploy(load_spec(args.spec), options, out))


def cmd_rollback(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import rollback

    return _with_output(args, lambda out: rollback(load_spec(args.spec), args.target, args.to, args.limit, out,
                                                   lock_wait_s=args.lock_wait, message=args.message))


def cmd_promote(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import rollback

    return _with_output(args, lambda out: rollback(load_spec(args.spec), args.target, None, None, out,
                                                   lock_wait_s=args.lock_wait, message=args.message, action="promote"))


def cmd_recover(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import prepare_workspace
    from rollwright.run.recover import recover

    loaded = load_spec(args.spec)
    return _with_output(args, lambda out: recover(loaded, prepare_workspace(loaded, args.target), args.target, out,
                                                  lock_wait_s=args.lock_wait))


def cmd_status(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import prepare_workspace
    from rollwright.run.status import Workspace, host_states, print_states

    loaded = load_spec(args.spec)
    workspace: Workspace = prepare_workspace(loaded, args.target)
    states = host_states(workspace, args.limit)
    if args.json:
        print(json.dumps([vars(s) for s in states], indent=2))
    else:
        print_states(_say, states)
    return 0 if states and all(s.settled for s in states) else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import prepare_workspace
    from rollwright.run.verify import print_verification, run_verify

    loaded = load_spec(args.spec)
    workspace = prepare_workspace(loaded, args.target)
    result = run_verify(workspace.project, workspace.runs)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_verification(_say, result)
    return 0 if result.ok else 1


def cmd_drift(args: argparse.Namespace) -> int:
    from rollwright.run.drift import drift

    return drift(load_spec(args.spec), args.target, _say, as_json=args.json)


def cmd_lock(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import prepare_workspace
    from rollwright.run.lock import DeployLock, describe, holder_alive

    workspace = prepare_workspace(load_spec(args.spec), args.target)
    lock = DeployLock(workspace.project, workspace.runs, "", "", "", _say)
    ok, result = lock.call("status")
    if not ok:
        raise BadInput(f"could not read the deploy lock: {result.get('msg', 'failed')}")
    holder = result.get("holder") or {}
    if args.action == "status":
        if args.json:
            print(json.dumps({"held": bool(holder), "holder": holder}, indent=2))
        else:
            _say(f"locked by {describe(holder)}" if holder else "not locked")
        return 1 if holder else 0
    if not holder:
        _say("not locked; nothing to release")
        return 0
    alive = holder_alive(holder)
    if alive:
        raise BadInput(f"the lock belongs to a deploy still running on this machine: {describe(holder)}; "
                       "stop it with Ctrl-C instead (it releases the lock)")
    if not args.force and alive is None:
        raise BadInput(f"the target is locked by {describe(holder)}; if that deploy is gone, add --force")
    _say(f"warning: breaking the deploy lock of {describe(holder)}")
    ok, result = lock.call("release", force=True)
    if not ok:
        raise BadInput(f"could not release the deploy lock: {result.get('msg', 'failed')}")
    _say("released")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import STATE_DIR
    from rollwright.run.records import History

    loaded = load_spec(args.spec)
    rows = History(loaded.base_dir / STATE_DIR).list(args.target, args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _say(f"{'id':<22} {'target':<12} {'action':<9} {'version':<12} {'status':<12} {'verified':<9} {'seconds':>8}  by")
    for row in rows:
        _say(f"{row['id']:<22} {row['target']:<12} {row['action']:<9} {row['version'] or '-':<12} {row['status']:<12} "
             f"{'yes' if row['verified'] else 'no':<9} {row['seconds']:>8.1f}  {row['user']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rollwright.run.deploy import STATE_DIR
    from rollwright.run.records import History, Record, markdown

    loaded = load_spec(args.spec)
    found = History(loaded.base_dir / STATE_DIR).get(args.deploy_id)
    if found is None:
        raise BadInput(f"no single deploy record with id {args.deploy_id!r} beside {loaded.path} "
                       "(see `rollwright history`)")
    print(json.dumps(found, indent=2) if args.json else markdown(Record(**found)), end="" if not args.json else "\n")
    return 0


def cmd_migrations(args: argparse.Namespace) -> int:
    from rollwright.run.migrations import migrations

    return migrations(load_spec(args.spec), args.target, args.action, _say, script=getattr(args, "file", None),
                      version=getattr(args, "version", None), dry_run=getattr(args, "dry_run", False),
                      limit=getattr(args, "limit", 20), as_json=args.json)


def cmd_backups(args: argparse.Namespace) -> int:
    from rollwright.run.backups import list_backups

    return list_backups(load_spec(args.spec), args.target, _say, as_json=args.json)


def cmd_restore(args: argparse.Namespace) -> int:
    from rollwright.run.backups import restore

    return restore(load_spec(args.spec), args.target, args.backup, _say, yes=args.yes)


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
        _say(f"{name}: {args.name} set ({'secret, in the vault' if args.secret else 'plain'}); "
             "it reaches the hosts with the next deploy")
    elif args.action == "get":
        value = store.get(args.name)
        if value.secret and not args.reveal:
            raise BadInput(f"{args.name} is a secret of target '{name}'; add --reveal to print it")
        print(value.value)
    elif args.action == "delete":
        if not store.delete(args.name):
            raise BadInput(f"target '{name}' has no env value {args.name}")
        _say(f"{name}: {args.name} deleted; the hosts drop it with the next deploy")
    else:
        values = store.list()
        if args.json:
            print(json.dumps([{"name": v.name, "secret": v.secret, "value": None if v.secret else v.value}
                              for v in values], indent=2))
        for value in values if not args.json else []:
            _say(f"{value.name}=<secret>" if value.secret else f"{value.name}={value.value}")
    return 0


def _env_value(args: argparse.Namespace) -> str:
    """The value to set: the argument for a plain value; for a secret, stdin or a prompt (never argv,
    which shell history and `ps` show)."""
    if args.value is not None:
        if args.secret:
            raise BadInput("a secret is never taken from the command line (shell history and `ps` show it): "
                           "pipe it on stdin or type it at the prompt")
        return str(args.value)
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"{args.name}: ") if args.secret else input(f"{args.name}: ")
    value = sys.stdin.read()
    return value[:-1] if value.endswith("\n") else value


def cmd_target(args: argparse.Namespace) -> int:
    from rollwright import targets

    if args.action == "list":
        return targets.list_targets(args.spec, _say, as_json=args.json)
    if args.action == "test":
        return targets.check_target(args.spec, args.name, _say, as_json=args.json)
    if args.action == "add":
        return targets.add_target(args.spec, args.name, hosts=args.host, variables=args.var, inventory=args.inventory,
                                  after=args.after, production=args.production, read_only=args.read_only,
                                  become=args.become, write=_say)
    if args.action == "remove":
        return targets.remove_target(args.spec, args.name, delete_inventory=args.delete_inventory, write=_say)
    changes = targets.Changes(add_hosts=args.add_host, remove_hosts=args.remove_host, set_vars=args.var,
                              unset_vars=args.unset_var, after=args.after, no_after=args.no_after,
                              production=args.production, read_only=args.read_only, become=args.become)
    return targets.update_target(args.spec, args.name, changes, _say)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollwright",
        description="Deploy spec in, plain Ansible project out; safe rolling deploys.",
        epilog="Exit codes: 0 ok, 1 failed (the fleet is on one healthy version), 2 bad input (spec or arguments), "
               "3 failed and the fleet is split or unhealthy (a human must look).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help="write a commented starter spec for the project in DIR")
    p.add_argument("dir", nargs="?", default=".", help="project folder (default: .)")
    p.add_argument("--app", help="app name (default: the folder's name)")
    p.add_argument("--force", action="store_true", help="overwrite an existing rollwright.yml")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("validate", help="check a spec; every problem with file:line:column")
    _spec_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the spec's JSON Schema (for editors)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("plan", help="the ordered steps a deploy would run, per group and batch; touches nothing")
    _spec_arg(p)
    _target_arg(p)
    _direct_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("generate", help="write the plain Ansible project for a target")
    _spec_arg(p)
    _target_arg(p)
    p.add_argument("-o", "--output", help="output folder (default: build/<target>)")
    _json_arg(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("deploy", help="deploy the spec's release to a target (ansible-runner, progress, rollback)")
    _spec_arg(p)
    _target_arg(p)
    p.add_argument("--group", action="append", default=[], metavar="NAME",
                   help="run only this command group (repeatable); the release steps still run")
    p.add_argument("--skip-group", action="append", default=[], metavar="NAME", help="skip this command group")
    p.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
    p.add_argument("--check", action="store_true",
                   help="run site.yml in check+diff mode: what would change on each host (exit 1 if anything)")
    p.add_argument("--no-health-check", action="store_true",
                   help="skip the health gates (refused on a target marked production)")
    p.add_argument("--limit", metavar="HOSTS", help="Ansible host pattern to limit the deploy to")
    p.add_argument("--continue-on-failure", action="store_true",
                   help="a failing command group does not stop the deploy")
    p.add_argument("--acknowledge-destructive", action="append", default=[], metavar="FILE",
                   help="apply this migration although it drops, truncates, renames or retypes (repeatable)")
    _direct_arg(p)
    p.add_argument("--forks", type=_forks, metavar="N",
                   help="hosts Ansible works on in parallel, over the target's `forks` (1-500)")
    p.add_argument("--no-switch", action="store_true",
                   help="blue/green: deploy and check the idle colour, leave the traffic (`rollwright promote` later)")
    p.add_argument("--override-freeze", action="store_true",
                   help="deploy inside a change-freeze window (needs --reason)")
    p.add_argument("--force", action="store_true",
                   help="deploy an artifact the target's `after` target never verified (needs --reason)")
    p.add_argument("--reason", default="", help="why an override is needed; kept in the deploy record")
    _lock_args(p)
    _output_args(p)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("rollback", help="every app host back to its previous release (or --to VERSION)")
    _spec_arg(p)
    _target_arg(p)
    p.add_argument("--to", metavar="VERSION", help="a release staged on the hosts (default: each host's previous)")
    p.add_argument("--limit", metavar="HOSTS", help="Ansible host pattern to limit the rollback to")
    _lock_args(p)
    _output_args(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("recover", help="after a killed deploy: bring every app host back to one healthy version "
                                       "in service (hosts drained, current ahead of the process, a stale lock)")
    _spec_arg(p)
    _target_arg(p)
    p.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another deploy's lock (default: refuse at once)")
    _output_args(p)
    p.set_defaults(func=cmd_recover)

    p = sub.add_parser("promote", help="blue/green: the idle colour takes the traffic in one step")
    _spec_arg(p)
    _target_arg(p)
    _lock_args(p)
    _output_args(p)
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("verify", help="prove the hosts are as the spec says: the generated testinfra suite "
                                      "(unit, release, env file, port, health, load balancer, migrations); exit 1 "
                                      "naming each host and check that fails")
    _spec_arg(p)
    _target_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("drift", help="hosts whose files, unit, env file or current release differ from the spec "
                                     "(check mode; exit 1 when some do)")
    _spec_arg(p)
    _target_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_drift)

    p = sub.add_parser("lock", help="the target's deploy lock: who holds it, or break a stale one")
    locks = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("status", "who holds the lock, since when, for which version (exit 1 when held)"),
                       ("release", "break a lock whose deploy is gone (--force for a holder on another machine)")):
        a = locks.add_parser(name, help=text)
        _spec_arg(a)
        _target_arg(a)
        if name == "status":
            _json_arg(a)
        else:
            a.add_argument("--force", action="store_true", help="break it although its holder may be alive elsewhere")
        a.set_defaults(func=cmd_lock)

    p = sub.add_parser("status", help="what every app host really runs (its process's release, the version its health "
                                      "endpoint names), whether it is healthy and its load balancer state "
                                      "(changes nothing; exit 1 when a host is not settled)")
    _spec_arg(p)
    _target_arg(p)
    p.add_argument("--limit", metavar="HOSTS", help="Ansible host pattern")
    _json_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("history", help="past deploys and rollbacks of this spec, newest first (from the records)")
    _spec_arg(p)
    p.add_argument("-t", "--target", help="only this target")
    p.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
    _json_arg(p)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("show", help="one deploy record: the deployment log (or --json)")
    p.add_argument("deploy_id", metavar="DEPLOY_ID", help="its id from `rollwright history` (a unique prefix will do)")
    _spec_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("migrations", help="tracked SQL migrations on the target's database (status, history, ...)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("status", "applied / pending / changed / missing, and every problem; changes nothing"),
                       ("history", "the history table, newest last"),
                       ("apply", "apply what is pending (as a deploy would, without the release)"),
                       ("mark-applied", "record FILE as applied without running it"),
                       ("baseline", "record VERSION as the starting point: older files are never run")):
        a = actions.add_parser(name, help=text)
        _spec_arg(a)
        _target_arg(a)
        _json_arg(a)
        a.set_defaults(func=cmd_migrations)
        if name == "history":
            a.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
        if name in ("apply", "mark-applied", "baseline"):
            a.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
        if name == "mark-applied":
            a.add_argument("file", help="migration file name, e.g. V3__add_index.sql")
        if name == "baseline":
            a.add_argument("version", help="version, e.g. 3 or 1.2")

    p = sub.add_parser("backups", help="the database dumps deploys took")
    backups = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = backups.add_parser("list", help="the dumps on the database host, newest first")
    _spec_arg(a)
    _target_arg(a)
    _json_arg(a)
    a.set_defaults(func=cmd_backups)

    p = sub.add_parser("restore", help="restore a dump over the target's database (asks first)")
    p.add_argument("backup", help="file name from `rollwright backups list`")
    _spec_arg(p)
    _target_arg(p)
    p.add_argument("--yes", action="store_true", help="do not ask; required on a target marked production")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("env", help="the target's environment for the app: plain values and vault secrets")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("set", "set NAME (a secret is read from stdin or a prompt; vault password from "
                               "ROLLWRIGHT_VAULT_PASSWORD_FILE or ROLLWRIGHT_VAULT_PASSWORD)"),
                       ("get", "print NAME's value (a secret only with --reveal)"),
                       ("list", "every NAME, secrets masked"),
                       ("delete", "remove NAME")):
        a = actions.add_parser(name, help=text)
        if name != "list":
            a.add_argument("name", metavar="NAME", help="environment variable name, e.g. API_TOKEN")
        if name == "set":
            a.add_argument("value", metavar="VALUE", nargs="?", help="a plain value (default: read stdin)")
            a.add_argument("--secret", action="store_true", help="keep it in the target's ansible-vault file")
        if name == "get":
            a.add_argument("--reveal", action="store_true", help="print it although it is a secret")
        if name == "list":
            _json_arg(a)
        _spec_arg(a)
        _target_arg(a)
        a.set_defaults(func=cmd_env)

    p = sub.add_parser("target", help="the spec's targets: add, list, update or remove one (spec and inventory), "
                                      "test its hosts' SSH and sudo")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    host_help = "a host as GROUP:HOST=ADDRESS[:PORT], e.g. app:app1=192.0.2.11 (repeatable)"
    a = actions.add_parser("add", help="a new target: writes its inventory (hosts.yml) and adds it to the spec")
    a.add_argument("name", metavar="NAME", help="target name, e.g. staging")
    _spec_arg(a)
    a.add_argument("--inventory", metavar="PATH",
                   help="inventory folder (or .yml file), relative to the spec's folder (default: inventories/NAME)")
    a.add_argument("--host", action="append", default=[], metavar="GROUP:HOST=ADDRESS", help=host_help)
    a.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                   help="an inventory variable for every host (all: vars), e.g. ansible_user=deploy (repeatable)")
    a.add_argument("--after", metavar="TARGET", help="deploys here need the artifact verified on TARGET first")
    a.add_argument("--production", action="store_true",
                   help="mark it production (no --no-health-check; restore needs --yes)")
    a.add_argument("--read-only", action="store_true",
                   help="mark it read-only (plan, --check, drift, status and history only)")
    a.add_argument("--become", action="store_true", help="deploy with privilege escalation (sudo)")
    a.set_defaults(func=cmd_target)
    a = actions.add_parser("list", help="every target: inventory, hosts per group, flags")
    _spec_arg(a)
    _json_arg(a)
    a.set_defaults(func=cmd_target)
    a = actions.add_parser("update", help="change a target's hosts, inventory variables or settings")
    a.add_argument("name", metavar="NAME", help="target name")
    _spec_arg(a)
    a.add_argument("--add-host", action="append", default=[], metavar="GROUP:HOST=ADDRESS", help=host_help)
    a.add_argument("--remove-host", action="append", default=[], metavar="HOST",
                   help="take HOST out of the inventory, from every group (repeatable)")
    a.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="set an all: vars variable")
    a.add_argument("--unset-var", action="append", default=[], metavar="KEY", help="remove an all: vars variable")
    after = a.add_mutually_exclusive_group()
    after.add_argument("--after", metavar="TARGET", help="deploys here need the artifact verified on TARGET first")
    after.add_argument("--no-after", action="store_true", help="drop the target's `after`")
    for flag, text in (("production", "mark it production (or not)"), ("read-only", "mark it read-only (or not)"),
                       ("become", "deploy with privilege escalation")):
        a.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None, help=text)
    a.set_defaults(func=cmd_target)
    a = actions.add_parser("remove", help="take a target out of the spec (refused while another comes after it)")
    a.add_argument("name", metavar="NAME", help="target name")
    _spec_arg(a)
    a.add_argument("--delete-inventory", action="store_true",
                   help="delete its inventory too (only inside the spec's folder; kept by default)")
    a.set_defaults(func=cmd_target)
    a = actions.add_parser("test", help="can Ansible reach every host (SSH) and become root there (sudo)? "
                                        "exit 1 when not")
    a.add_argument("name", metavar="NAME", help="target name")
    _spec_arg(a)
    _json_arg(a)
    a.set_defaults(func=cmd_target)

    from rollwright.lab.cli import add_lab_parser

    add_lab_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A reader that closes stdout early (`| head`) only loses the rest of the output: the
    command runs to its end (a deploy still records) and exits with its own code, without a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    stdout = sys.stdout
    sys.stdout = ClosedPipeSafe(stdout)  # type: ignore[assignment]
    try:
        return int(args.func(args) or 0)
    except RollwrightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
