"""Which rollout strategy a deploy may use: what the spec and the flags decide before any host is
contacted, and the rule the database decides (pending migrations), checked before any change."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rollwright.errors import BadInput
from rollwright.spec.loader import LoadedSpec
from rollwright.spec.model import Spec, Target

SAFE_FOR_DESTRUCTIVE = ("canary", "blue_green")  # a bad schema change shows on a few hosts, or on none


@dataclass(frozen=True)
class PendingRule:
    """A refusal the deploy checks against the migrations status (`migrate_sql`), before any change."""

    when: str  # a condition on migrate_sql
    reason: str  # the refusal, a Jinja template over migrate_sql
    summary: str  # the same, for `plan`


def allowed(loaded: LoadedSpec, target_name: str, target: Target, direct: bool) -> LoadedSpec:
    """The spec this deploy runs (`--direct` makes it direct), or BadInput with every reason it may not."""
    found = refusals(loaded.spec, target_name, target, direct)
    if found:
        raise BadInput(f"{loaded.path}: a deploy to {target_name} is refused by the strategy policy; nothing was "
                       "changed:\n" + "\n".join(f"  - {reason}" for reason in found))
    spec = loaded.spec
    if not direct or spec.rollout.strategy == "direct":
        return loaded
    rollout = spec.rollout.model_copy(update={"strategy": "direct", "canary": None})
    return replace(loaded, spec=spec.model_copy(update={"rollout": rollout}))


def refusals(spec: Spec, target_name: str, target: Target, direct: bool) -> list[str]:
    """Why this spec may not deploy to this target with these flags; [] when it may."""
    if not spec.artifact:
        return ["--direct: the spec deploys no release"] if direct else []
    strategy = "direct" if direct and spec.rollout.strategy != "blue_green" else spec.rollout.strategy
    found = []
    if direct and spec.rollout.strategy == "blue_green":
        found.append("--direct with strategy blue_green: the idle colour is deployed at once already; "
                     "switch with `rollwright promote`")
    if strategy == "direct" and target.production and not direct:
        found.append(f"strategy direct restarts every app host at once; on production target '{target_name}' "
                     "that needs --direct (a hotfix, said out loud)")
    migrations = spec.database.migrations if spec.database else None
    if strategy == "direct" and migrations and migrations.tool != "sql":
        found.append("a deploy with pending migrations is never direct, and rollwright cannot tell what "
                     f"{migrations.tool} has pending before it runs: use rolling, canary or blue_green")
    return found


def pending_rule(spec: Spec) -> PendingRule | None:
    """The strategy's rule on pending tracked migrations, or None when it has none."""
    if not (spec.artifact and spec.database and spec.database.migrations and spec.database.migrations.tool == "sql"):
        return None
    scripts = "{{ %s | map(attribute='script') | join(', ') }}"
    if spec.rollout.strategy == "direct":
        return PendingRule("migrate_sql.pending | length > 0",
                           f"a deploy with pending migrations ({scripts % 'migrate_sql.pending'}) is never "
                           "direct: use rolling, canary or blue_green",
                           "refused if any migration is pending (a deploy with pending migrations is never direct)")
    if spec.rollout.strategy not in SAFE_FOR_DESTRUCTIVE:
        return PendingRule("migrate_sql.destructive | length > 0",
                           f"destructive migrations ({scripts % 'migrate_sql.destructive'}) need strategy canary "
                           f"or blue_green, and an acknowledgement (this deploy is {spec.rollout.strategy})",
                           "refused if a destructive migration is pending (they need canary or blue_green)")
    return None
