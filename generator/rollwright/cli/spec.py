"""Commands on the spec itself, which touch no host: init, validate, schema, plan, generate."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rollwright.cli.common import (
    DEFAULT_SPEC,
    Subparsers,
    command,
    direct_arg,
    json_arg,
    print_json,
    spec_arg,
    target_arg,
)
from rollwright.errors import EXIT_BAD_INPUT, EXIT_FAILED, BadInput
from rollwright.spec.loader import SpecError, load_spec


def cmd_init(args: argparse.Namespace) -> int:
    from rollwright.spec.deployconfig import app_name_for
    from rollwright.spec.starter import detect_stack, starter_spec

    folder = Path(args.dir)
    path = folder / DEFAULT_SPEC
    if path.exists() and not args.force:
        raise BadInput(f"{path} exists; use --force to overwrite it")
    stack = detect_stack(folder)
    app = args.app or app_name_for(folder.resolve() / DEFAULT_SPEC)
    path.write_text(starter_spec(app, stack), encoding="utf-8")
    load_spec(path)  # the starter must always be valid
    print(f"wrote {path} (stack: {stack.name}); edit the CHANGE ME values, then `rollwright validate -f {path}`")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        loaded = load_spec(args.spec)
    except SpecError as exc:
        if args.json:
            print_json({"valid": False, "issues": [vars(i) for i in exc.issues]})
            return EXIT_BAD_INPUT
        raise
    if args.json:
        print_json({"valid": True, "app": loaded.spec.app, "targets": list(loaded.spec.targets)})
    else:
        print(f"{args.spec}: valid (app {loaded.spec.app}, targets: {', '.join(loaded.spec.targets) or 'local'})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from rollwright.spec.schema import deployment_config_schema, spec_schema

    schema = deployment_config_schema() if args.deployment_config else spec_schema()
    print(json.dumps(schema, indent=2, sort_keys=True))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from rollwright.inventory import inventory_groups
    from rollwright.render.plan import build_plan, plan_as_json, plan_as_text
    from rollwright.render.policy import allowed
    from rollwright.render.project import expand_groups, inventory_path, read_migrations, resolve_target

    loaded = load_spec(args.spec)
    name, target = resolve_target(loaded, args.target)
    loaded = allowed(loaded, name, target, args.direct)
    path = inventory_path(loaded, name, target)
    inventory = inventory_groups(path) if path else {"all": ["localhost"]}
    steps = build_plan(loaded.spec, expand_groups(loaded), inventory, read_migrations(loaded))
    if args.json:
        print_json({"app": loaded.spec.app, "target": name, "steps": plan_as_json(steps)})
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
        print_json({"output": str(out), "files": len(files), "seconds": round(took, 3)})
    else:
        print(f"wrote {len(files)} files to {out} in {took:.2f}s; run: cd {out} && ansible-playbook site.yml")
    return 0


def register(sub: Subparsers) -> None:
    p = command(sub, "init", "write a commented starter spec for the project in DIR",
                ["rollwright init", "rollwright init ../shop --app shop"])
    p.add_argument("dir", nargs="?", default=".", help="project folder (default: .)")
    p.add_argument("--app", help="app name (default: from package.json or pyproject.toml, else the folder's name)")
    p.add_argument("--force", action="store_true", help="overwrite an existing rollwright.yml")
    p.set_defaults(func=cmd_init)

    p = command(sub, "validate", "check a spec; every problem with file:line:column",
                ["rollwright validate", "rollwright validate -f deploy/rollwright.yml --json"])
    spec_arg(p)
    json_arg(p, '{"valid": true, "app": ..., "targets": [...]} or {"valid": false, "issues": [...]}')
    p.set_defaults(func=cmd_validate)

    p = command(sub, "schema", "print the spec's JSON Schema (for editors)",
                ["rollwright schema > rollwright.schema.json",
                 "rollwright schema --deployment-config > deployconfig.schema.json"])
    p.add_argument("--deployment-config", action="store_true",
                   help="the schema of the deployment-config JSON format instead of the YAML spec's")
    p.set_defaults(func=cmd_schema)

    p = command(sub, "plan", "the ordered steps a deploy would run, per group and batch; touches nothing",
                ["rollwright plan -t staging", "rollwright plan -t production --json | jq '.steps[].phase'"])
    spec_arg(p)
    target_arg(p)
    direct_arg(p)
    json_arg(p, '{"app": ..., "target": ..., "steps": [...]}')
    p.set_defaults(func=cmd_plan)

    p = command(sub, "generate", "write the plain Ansible project for a target",
                ["rollwright generate -t staging", "rollwright generate -t staging -o /tmp/hello-staging"])
    spec_arg(p)
    target_arg(p)
    p.add_argument("-o", "--output", help="output folder (default: build/<target>)")
    json_arg(p, '{"output": ..., "files": N, "seconds": S}')
    p.set_defaults(func=cmd_generate)
