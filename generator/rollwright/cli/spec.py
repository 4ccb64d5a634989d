"""Commands on the spec itself, which touch no host: init, validate, schema, plan, generate (`plan --migrations`
alone asks the target what its migrations would apply)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from rollwright.cli.common import (
    DEFAULT_SPEC,
    Subparsers,
    artifact_args,
    command,
    direct_arg,
    json_arg,
    load_with_artifact,
    on_target,
    print_json,
    spec_arg,
)
from rollwright.errors import EXIT_BAD_INPUT, EXIT_FAILED, BadInput
from rollwright.spec.loader import LoadedSpec, SpecError, load_spec
from rollwright.spec.model import NAME_RE


def cmd_init(args: argparse.Namespace) -> int:
    from rollwright.spec.schema import spec_schema
    from rollwright.spec.starter import SCHEMA_FILE, app_name, detect_stack, starter_spec

    folder = Path(args.dir)
    path, schema_path = folder / DEFAULT_SPEC, folder / SCHEMA_FILE
    existing = [str(p) for p in (path, schema_path) if p.exists()]
    if existing and not args.force:
        raise BadInput(f"{' and '.join(existing)} exist{'s' if len(existing) == 1 else ''}; "
                       "use --force to overwrite (both the spec and its schema)")
    if not folder.is_dir():
        raise BadInput(f"{folder}: no such folder")
    if args.app is not None and (not re.fullmatch(NAME_RE, args.app) or len(args.app) > 63):
        raise BadInput(f"--app {args.app!r}: expected a lowercase name of letters, digits, '-' or '_', starting "
                       "with a letter (at most 63 characters)")
    stack = detect_stack(folder)
    app, source = (args.app, "--app") if args.app else app_name(folder)
    schema_path.write_text(json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    path.write_text(starter_spec(app, stack), encoding="utf-8")
    load_spec(path)  # the starter must always be valid
    print(f"wrote {path} (app {app}, from {source}; stack: {stack.name}) and {schema_path} (its JSON Schema, for "
          f"editors); edit the CHANGE ME values, then `rollwright validate -f {path}`")
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

    loaded = load_with_artifact(args)
    name, target = resolve_target(loaded, args.target)
    loaded = allowed(loaded, name, target, args.direct)
    path = inventory_path(loaded, name, target)
    inventory = inventory_groups(path) if path else {"all": ["localhost"]}
    pending = None
    if args.migrations:
        from rollwright.run.migrations import pending_migrations

        pending = pending_migrations(loaded, name)
    steps = build_plan(loaded.spec, expand_groups(loaded), inventory, read_migrations(loaded), pending)
    if args.json:
        print_json({"app": loaded.spec.app, "target": name, "steps": plan_as_json(steps)})
    else:
        touched = " (asked the target what the migrations would apply; nothing switched)" if pending else \
            " (nothing is touched)"
        print(f"plan for {loaded.spec.app} on target {name}{touched}:")
        print(plan_as_text(steps))
    if any(step.phase == "problem" for step in steps):  # scripts that gate on the plan must see it
        print("the plan has problems (see [problem]): fix them before a deploy", file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from rollwright.render.project import prepare, render, resolve_target, write_project
    from rollwright.run.provenance import Unverified, check_artifact

    start = time.perf_counter()
    loaded = _with_execution_environment(load_with_artifact(args), args.ee_base_image, args.ee_package_manager)
    name, target = resolve_target(loaded, args.target)
    try:  # the project carries the artifact: a signature that does not hold makes none
        check_artifact(loaded, name, target)
    except Unverified as exc:
        raise BadInput(f"generate refused: {exc}") from None
    out = Path(args.output) if args.output else Path("build") / (args.target or "local")
    files = render(prepare(loaded, args.target))
    write_project(files, out)
    took = time.perf_counter() - start
    if args.json:
        print_json({"output": str(out), "files": len(files), "seconds": round(took, 3)})
    else:
        print(f"wrote {len(files)} files to {out} in {took:.2f}s; run: cd {out} && ansible-playbook site.yml")
    return 0


def _with_execution_environment(loaded: LoadedSpec, image: str | None, package_manager: str | None) -> LoadedSpec:
    """`loaded` with the EE's base image (and package manager) given on the command line, for this run only."""
    from dataclasses import replace

    from pydantic import ValidationError

    from rollwright.spec.model import ExecutionEnvironment

    if image is None and package_manager is None:
        return loaded
    spec_ee = loaded.spec.execution_environment
    try:
        ee = ExecutionEnvironment(base_image=image or spec_ee.base_image,
                                  package_manager_path=package_manager or spec_ee.package_manager_path)
    except ValidationError:
        raise BadInput(f"--ee-base-image {image!r}: expected a fully qualified image, registry/path:tag or "
                       "registry/path@sha256:digest (e.g. quay.io/centos/centos:stream10)") from None
    return replace(loaded, spec=loaded.spec.model_copy(update={"execution_environment": ee}))


def register(sub: Subparsers) -> None:
    p = command(sub, "init", "write a commented starter spec for the project in DIR, and its JSON Schema beside it",
                ["rollwright init", "rollwright init ../shop --app shop"])
    p.add_argument("dir", nargs="?", default=".", help="project folder (default: .)")
    p.add_argument("--app", help="app name (default: from pyproject.toml or package.json, else the folder's name)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing rollwright.yml and rollwright.schema.json")
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
                ["rollwright plan -t staging", "rollwright plan -t production --json | jq '.steps[].phase'",
                 "rollwright plan -t staging --artifact dist/hello-1.4.0.tar.gz"])
    on_target(p)
    direct_arg(p)
    artifact_args(p)
    p.add_argument("--migrations", action="store_true",
                   help="also ask the target what the migrations would apply: the sql tool's pending files, or the "
                        "tool's plan run from the new release, staged on the first app host first (no switch, no "
                        "traffic moves)")
    json_arg(p, '{"app": ..., "target": ..., "steps": [...]}')
    p.set_defaults(func=cmd_plan)

    p = command(sub, "generate", "write the plain Ansible project for a target",
                ["rollwright generate -t staging", "rollwright generate -t staging -o /tmp/hello-staging"])
    on_target(p)
    p.add_argument("-o", "--output", help="output folder (default: build/<target>)")
    p.add_argument("--ee-base-image", metavar="IMAGE",
                   help="the base image execution-environment.yml builds on, over the spec's "
                        "execution_environment.base_image (fully qualified)")
    p.add_argument("--ee-package-manager", choices=["/usr/bin/dnf", "/usr/bin/microdnf"],
                   help="that image's package manager (default: the spec's, /usr/bin/dnf)")
    artifact_args(p)
    json_arg(p, '{"output": ..., "files": N, "seconds": S}')
    p.set_defaults(func=cmd_generate)
