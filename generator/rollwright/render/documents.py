"""The deployment checklist and the rollback plan, written from the spec and its plan (pure text).

Both go into every deploy record, so the people on call read what this very deploy was going to do,
what triggers a rollback, and what a rollback cannot undo.
"""

from __future__ import annotations

from rollwright.render.plan import Step
from rollwright.spec.model import Spec


def checklist(spec: Spec, target: str, steps: list[Step]) -> str:
    """Every step of the deploy in order, as a checklist with its hosts and commands."""
    version = spec.artifact.version if spec.artifact else "-"
    lines = [f"# Deployment checklist: {spec.app} {version} to {target}", ""]
    for step in steps:
        lines.append(f"- [ ] **{step.phase}**: {step.title} @ {', '.join(step.hosts) or '(no hosts)'}")
        lines += [f"      - `{command}`" for command in step.commands]
    return "\n".join(lines) + "\n"


def rollback_plan(spec: Spec, target: str, destructive: dict[str, list[str]]) -> str:
    """When rollwright rolls back on its own, how to roll back by hand, and what no rollback undoes."""
    spec_file = "-f SPEC"
    lines = [f"# Rollback plan: {spec.app} on {target}", "", "## Automatic triggers", ""]
    if spec.artifact:
        lines += [
            f"- A host whose health gate fails ({spec.health.path if spec.health and spec.health.path else 'health'}"
            " not answering in time, or answering with another version) is rolled back by its own rescue and put"
            " back in the load balancer." if spec.service else
            "- A host whose switch fails is switched back by its own rescue (no service: nothing to restart).",
            *(["- A host whose after_switch hook fails is rolled back the same way."] if spec.hooks.after_switch
              else []),
            f"- Any failure after that host (max_fail_percentage {spec.rollout.max_fail_percentage}) stops the"
            " rollout; the runner rolls back every host this deploy had switched and puts drained hosts back.",
            "- Ctrl-C or SIGTERM: the running playbook stops and the same restore runs (a second signal stops it).",
        ]
        lines += [f"- Smoke check failing after the rollout (whole fleet rolled back): {check.label}"
                  for check in spec.smoke]
    if spec.database and spec.database.migrations:
        lines.append("- A failing migration is rolled back in its own transaction and stops the deploy before any"
                     " host is switched.")
    lines += ["", "## By hand", ""]
    if spec.artifact:
        lines += [f"- Whole fleet one release back: `rollwright rollback {spec_file} -t {target}`",
                  f"- To a named release: `rollwright rollback {spec_file} -t {target} --to VERSION`",
                  f"- Check: `rollwright status {spec_file} -t {target}`"]
    if spec.database and spec.database.backup and spec.database.backup.enabled:
        lines += [f"- Database to the dump taken before the migrations: `rollwright backups list {spec_file} -t "
                  f"{target}`, then `rollwright restore FILE {spec_file} -t {target}` (writes made since are lost)"]
    if spec.hooks.on_failure:
        lines.append("- After a failed or interrupted deploy, once the fleet is restored, rollwright runs the "
                     "on_failure hooks: " + "; ".join(f"`{c}`" for c in spec.hooks.on_failure))
    lines += ["", "## What a rollback cannot undo", ""]
    undo = []
    if spec.database and spec.database.migrations:
        undo.append("- Applied migrations: rolling the code back leaves the schema as migrated; the previous release"
                    " must work with it, or the database is restored from the backup.")
    undo += [f"- Destructive migration {name} ({', '.join(statements)}): its data is gone unless restored from"
             " the backup." for name, statements in sorted(destructive.items())]
    if spec.hooks.after_deploy:
        undo.append("- What the after_deploy hooks did: " + "; ".join(f"`{c}`" for c in spec.hooks.after_deploy))
    if spec.hooks.on_hosts:
        undo.append("- What the host hooks did outside the release (shared files, caches, notifications): "
                    + "; ".join(f"`{c}`" for c in [*spec.hooks.before_switch, *spec.hooks.after_switch]))
    lines += undo or ["- Nothing outside the release folders, the unit and the env file."]
    return "\n".join(lines) + "\n"
