"""The ordered steps a deploy would run, per group and per host batch, without touching anything."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any

from rollwright.render.batches import split_batches
from rollwright.render.commands import GroupCommand
from rollwright.render.project import ROLES_DIR
from rollwright.spec.model import CommandGroup, Spec


@dataclass(frozen=True)
class Step:
    """One step of the plan: what runs, where, and (for groups) the exact commands."""

    phase: str
    title: str
    hosts: list[str]
    commands: list[str] = field(default_factory=list)


def hosts_of(pattern: str, inventory: dict[str, list[str]]) -> list[str]:
    """Hosts an Ansible host pattern of group/host names (joined by ':') selects, in order."""
    if pattern == "localhost":
        return ["localhost"]
    selected: list[str] = []
    for part in pattern.split(":"):
        selected += inventory.get(part, [part] if part in inventory.get("all", []) else [])
    return list(dict.fromkeys(selected))


def destructive_files(migrations: dict[str, bytes]) -> dict[str, list[str]]:
    """File -> destructive statements, judged by the very code the deploy runs (the embedded module)."""
    if not migrations:
        return {}
    path = ROLES_DIR / "migrate" / "library" / "sql_migrations.py"
    loader = importlib.util.spec_from_file_location("rollwright_sql_migrations", path)
    assert loader and loader.loader, path
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    found = {name: module.Migration(name, data.decode("utf-8", "replace")).destructive()
             for name, data in migrations.items()}
    return {name: statements for name, statements in found.items() if statements}


def build_plan(spec: Spec, groups: list[tuple[CommandGroup, list[GroupCommand]]],
               inventory: dict[str, list[str]], migrations: dict[str, bytes] | None = None) -> list[Step]:
    """Steps in run order; mirrors the plays of the generated site.yml."""
    app_hosts = hosts_of(spec.rollout.hosts, inventory)
    db_hosts = hosts_of(spec.database.hosts, inventory)[:1] if spec.database else []
    problems = []
    checks = ["required env vars: " + (", ".join(spec.all_required_env) or "none")]
    if spec.artifact:
        checks.append(f"artifact {spec.artifact.path or spec.artifact.url} sha256 {spec.artifact.sha256[:12]}…")
    steps = [Step("preflight", "Check on the control node: " + "; ".join(checks), ["localhost"])]
    if spec.artifact:
        if not app_hosts:
            problems.append(f"inventory has no hosts in group '{spec.rollout.hosts}'")
        steps.append(Step("preflight", "Check every host answers", app_hosts))
    for group, commands in groups:
        hosts = hosts_of(group.hosts, inventory)
        steps.append(Step("group", f"Group {group.name} (order {group.order})", hosts,
                          [f"{c.step}: {c.command}" for c in commands]))
    if spec.database and spec.database.backup and spec.database.backup.enabled:
        backup = spec.database.backup
        tracked = spec.database.migrations is not None and spec.database.migrations.tool == "sql"
        when = " when migrations are pending" if tracked else ""
        steps.append(Step("backup", f"pg_dump -Fc {spec.database.name} into {backup.dir}{when}, verify "
                          f"({backup.verify}), keep {backup.keep}", db_hosts))
    if spec.artifact:
        steps.append(Step("stage", f"Stage {spec.artifact.version} on all app hosts at once (upload, verify "
                          "sha256, unpack, link shared, unit and env file)", app_hosts))
    if spec.database and spec.database.migrations:
        acknowledged = spec.database.migrations.acknowledge_destructive
        flagged = [f"DESTRUCTIVE ({', '.join(statements)}): {name} — "
                   + ("acknowledged in the spec" if name in acknowledged else
                      "blocks the deploy if pending, unless acknowledged (--acknowledge-destructive)")
                   for name, statements in destructive_files(migrations or {}).items()]
        steps.append(Step("migrate", f"Apply migrations once ({spec.database.migrations.tool})",
                          db_hosts if spec.database.migrations.tool == "sql" else app_hosts[:1], flagged))
    if spec.artifact:
        lb = spec.rollout.load_balancer
        around = f"drain in {lb.backend} on {lb.hosts}, " if lb else ""
        back = ", undrain" if lb else ""
        for number, batch in enumerate(split_batches(app_hosts, spec.rollout.batches), 1):
            steps.append(Step("rollout", f"Batch {number}: {around}switch current, restart, health gate{back}", batch))
    if spec.health and spec.health.url:
        steps.append(Step("health", f"Site health: {spec.health.url} answers {spec.health.status}", ["localhost"]))
    steps += [Step("smoke", f"Smoke check: {check.label} (up to {check.attempts}x); a failure rolls every host "
                            "back", ["localhost"]) for check in spec.smoke]
    if problems:
        steps.append(Step("problem", "; ".join(problems), []))
    return steps


def plan_as_json(steps: list[Step]) -> list[dict[str, Any]]:
    return [asdict(step) for step in steps]


def plan_as_text(steps: list[Step]) -> str:
    lines = []
    for number, step in enumerate(steps, 1):
        hosts = ", ".join(step.hosts) or "(no hosts)"
        lines.append(f"{number:>2}. [{step.phase}] {step.title}  @ {hosts}")
        lines += [f"      $ {command}" for command in step.commands]
    return "\n".join(lines)
