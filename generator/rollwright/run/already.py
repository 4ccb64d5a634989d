"""A deploy of what already runs everywhere: one read-only run (current.yml) says so, instead of a whole deploy.

Already deployed means: nobody holds the deploy lock, no migration is pending (tool sql), the stage would
change nothing on any app host (check mode: release staged, unit and env file as the spec makes them), and
every app host runs the spec's release from its folder, active, healthy, answering as it, in service in every
load balancer. Anything else, or any doubt (a host that does not answer, a failed check), takes the normal path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rollwright.run.changes import WouldChange
from rollwright.run.engine import Event, run_playbook
from rollwright.run.lock import lock_answer
from rollwright.run.status import HostState, Workspace, states_of
from rollwright.spec.model import Spec


@dataclass
class Current:
    """What current.yml found: whether the deploy has nothing to do, and every app host's state."""

    deployed: bool
    states: list[HostState] = field(default_factory=list)


def may_be_current(spec: Spec, newest: dict[str, Any] | None, *, limited: bool, groups_chosen: bool, direct: bool,
                   no_switch: bool) -> bool:
    """Whether a deploy can end at the check: the target's newest record (`newest`, from this control node's
    history) is a successful deploy of this very artifact, so the check is worth its run (a new release goes
    straight to the normal path), and the deploy is a whole-fleet rolling or canary one with nothing else to
    run (no command groups, no hooks) and migrations whose pending ones can be read (tool sql)."""
    if not spec.artifact or not newest or (newest.get("action"), newest.get("status"), newest.get("version"),
                                           newest.get("sha256")) != ("deploy", "succeeded", spec.artifact.version,
                                                                     spec.artifact.sha256):
        return False
    migrations = spec.database.migrations if spec.database else None
    return spec.rollout.strategy in ("rolling", "canary") and not (
        limited or groups_chosen or direct or no_switch or spec.groups or spec.hooks.before_deploy
        or spec.hooks.after_stage or spec.hooks.after_deploy or (migrations and migrations.tool != "sql"))


def check_current(workspace: Workspace, version: str, app_hosts: list[str]) -> Current:
    """Run current.yml (changes nothing) and judge what it found."""
    changes, lock = WouldChange(), dict[str, Any]()

    def on_event(event: Event) -> None:
        changes(event)
        lock.update(lock_answer(event) or {})

    run = run_playbook(workspace.project, "current.yml", workspace.runs, on_event)
    states = states_of(run)
    pending = int(run.custom_stats.get("rollwright_pending_migrations") or 0)
    deployed = (run.ok and not lock.get("failed") and not lock.get("holder") and not pending
                and not changes.found and sorted(s.name for s in states) == sorted(app_hosts)
                and all(_runs(state, version) for state in states))
    return Current(deployed, states)


def _runs(state: HostState, version: str) -> bool:
    """The host runs `version` from its release folder, settled: active, healthy, answering as it, in service."""
    return (state.reachable and state.current == state.running == version and state.settled
            and state.answers in ("", version))
