"""`rollwright app start|stop|restart`: the app's service acted on between deploys, as a deploy would.

app.yml goes batch by batch (the spec's rollout batches) behind the load balancer: each host is drained, then
its service stopped, or (re)started and health-gated, then put back. A failed gate stops the run at that host,
which stays drained: the hosts before it are back in service, the batches after it untouched. It runs under
the deploy lock and is recorded as a deploy is (a history row, an audit line on every host).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rollwright.errors import EXIT_FAILED, EXIT_UNSAFE, BadInput
from rollwright.render.batches import split_batches
from rollwright.render.plan import hosts_of
from rollwright.render.playbooks import APP_ACTIONS
from rollwright.render.project import resolve_target
from rollwright.run.deploy import (
    Told,
    ara_labels,
    finish_run,
    plan_line,
    run_status,
    secret_values,
    starting_phase,
    states_after,
    target_inventory,
)
from rollwright.run.engine import Interrupts, PlaybookRun, labelled, run_playbook
from rollwright.run.lock import DeployLock
from rollwright.run.output import Output
from rollwright.run.preflight import refuse_read_only
from rollwright.run.progress import Progress
from rollwright.run.records import Record, now
from rollwright.run.remote import pick_hosts
from rollwright.run.status import HostState, Workspace, host_states, print_states
from rollwright.run.workspace import prepare_workspace
from rollwright.spec.loader import LoadedSpec


@dataclass(frozen=True)
class AppPlan:
    """What an app action will act on, decided (and refused) before anything runs."""

    action: str
    target: str
    production: bool
    hosts: list[str]  # the app hosts acted on, in inventory order
    limited: bool  # --host chose them (else every app host)
    batches: list[list[str]]

    @property
    def asks_first(self) -> bool:
        """Stopping hosts of a production target is confirmed first (`--yes` says so beforehand)."""
        return self.action == "stop" and self.production


def plan_app(loaded: LoadedSpec, target_name: str | None, action: str, hosts: list[str]) -> AppPlan:
    """The app hosts `action` acts on (all, or those `hosts` names: names or comma-separated lists), batched
    as a rollout is; BadInput for what it cannot do."""
    spec = loaded.spec
    if action not in APP_ACTIONS:
        raise BadInput(f"unknown app action {action!r} (start, stop or restart)")
    if not spec.artifact:
        raise BadInput(f"{loaded.path}: the spec deploys no release, so it runs no app service to {action}")
    if not spec.service:
        raise BadInput(f"{loaded.path}: the spec runs no service (its release is files only), so there is nothing to "
                       f"{action}")
    if spec.rollout.strategy == "blue_green":
        raise BadInput(f"{loaded.path}: app {action} is not for blue/green yet: putting the idle colour's hosts "
                       "back in the load balancer would give them traffic")
    name, target = resolve_target(loaded, target_name)
    refuse_read_only(name, target, f"app {action}")
    every = hosts_of(spec.rollout.hosts, target_inventory(loaded, name, target))
    if not every:
        raise BadInput(f"target {name} has no host in group {spec.rollout.hosts!r}")
    chosen = pick_hosts(every, hosts)
    return AppPlan(action, name, target.production, chosen, chosen != every, split_batches(chosen, spec.rollout.steps))


def run_app(loaded: LoadedSpec, plan: AppPlan, write: Output, *, lock_wait_s: float = 0.0, message: str = "") -> int:
    """Run app.yml under the deploy lock, then account for the hosts and record it; exit 0 when every host acted
    on is as asked (stopped and drained, or healthy and in service), 1 when the run failed but they are, else 3."""
    spec = loaded.spec
    tell = Told(write)  # the plan line is the record's first line
    doing = {"start": "starting", "stop": "stopping", "restart": "restarting"}[plan.action]
    line, fields = plan_line(f"{doing} {spec.app} on {plan.target}, each host out of the load balancer meanwhile",
                             spec, None, plan.batches)
    tell.event("plan", line, action=plan.action, target=plan.target, version="", **fields)
    write.phase("preparing the Ansible project (the playbooks, the roles)")
    workspace = prepare_workspace(loaded, plan.target)
    record = Record(spec.app, plan.target, plan.action, "", "", f"{plan.action} in batches {spec.rollout.steps}",
                    now())
    limit = ",".join(plan.hosts) if plan.limited else None
    lock = DeployLock(workspace.project, workspace.runs, record.id, "", message, write)
    lock.on_taken = lambda: write.phase("deploy lock taken")
    if limit:
        write.phase("taking the deploy lock (lock.yml)")
    # app.yml's first play takes the lock, except for a --host run (its hosts may not hold the lock's)
    with labelled(*ara_labels(record)), lock.holding(lock_wait_s, deferred=limit is None):
        write.phase(starting_phase("app.yml", lock, plan.hosts))
        # a failed gate shows the unit's journal, where the app may print its env: the target's secrets are masked
        progress = Progress(write, batches=len(plan.batches), secrets=secret_values(loaded, plan.target))
        with Interrupts() as interrupts:
            def app_run() -> PlaybookRun:
                return run_playbook(workspace.project, "app.yml", workspace.runs, lock.watch(progress), limit=limit,
                                    extravars={"rollwright_app_action": plan.action, **lock.ask()},
                                    tags=["lock", plan.action, "status"], cancel=interrupts.after(1))

            run = lock.run_taking_it(app_run, lock_wait_s, interrupts.after(1), write.phase,
                                     lambda: starting_phase("app.yml", lock, []))
            progress.close()
            if run.status == "canceled" and plan.action != "stop" and progress.left_out:
                _put_back(workspace, progress.left_out, tell, interrupts.after(2))
            if not run.ok:
                write.phase("asking every app host what it runs now (status.yml)")
            states = states_after(run, workspace, limit) if run.ok else host_states(workspace, limit)
        code = _account(plan, run, progress, states, tell)
        record.version = ",".join(sorted({s.current for s in states if s.name in plan.hosts and s.current}))
        record.status = run_status(run, code)
        finish_run(workspace, record, {}, progress, [run], states, [], code, tell, lock)
    return code


def _put_back(workspace: Workspace, hosts: list[str], tell: Told, cancel: Callable[[], bool]) -> None:
    """After a Ctrl-C: the hosts the run left drained go back in (HAProxy's own check keeps a sick one out)."""
    tell(f"interrupted; putting back in the load balancer: {', '.join(hosts)} (interrupt again to stop that too)")
    if not run_playbook(workspace.project, "undrain.yml", workspace.runs, Progress(tell.write), limit=",".join(hosts),
                        cancel=cancel).ok:
        tell("✗ some of them are not UP in the load balancer (see below)")


def _as_asked(plan: AppPlan, state: HostState) -> bool:
    """The host is what the action makes it: stopped (and out of the load balancer), or settled in service."""
    if plan.action == "stop":
        return state.reachable and not state.active and not (state.lb and state.in_service)
    return state.settled


def _account(plan: AppPlan, run: PlaybookRun, progress: Progress, states: list[HostState], tell: Told) -> int:
    """Say where every host stands, which host stopped the run and which were not reached."""
    print_states(tell, states)
    found = {state.name: state for state in states}
    off = [host for host in plan.hosts if host not in found or not _as_asked(plan, found[host])]
    if run.ok and not off:
        if plan.action == "stop":
            tell(f"stopped and left out of the load balancer: {', '.join(plan.hosts)}; "
                 f"`rollwright app start -t {plan.target}` brings them back")
        else:
            done = "started" if plan.action == "start" else "restarted"
            tell(f"{done}: {', '.join(plan.hosts)} healthy and in service")
        return 0
    failed = sorted(h.name for h in progress.failed)
    reached = max((progress.hosts[h].batch for h in failed if h in progress.hosts), default=0)
    untouched = [host for batch in plan.batches[reached:] for host in batch] if reached else []
    if run.status == "canceled":
        tell(f"✗ app {plan.action} on {plan.target} interrupted")
    else:
        tell(f"✗ app {plan.action} on {plan.target} failed at {', '.join(failed) or 'an unknown host'}"
             + (" (left out of the load balancer)" if failed and plan.action != "stop" else ""))
    if untouched:
        tell(f"not touched (later batches): {', '.join(untouched)}")
    if off:
        tell(f"ATTENTION, not as asked: {', '.join(off)}; details: {run.artifact_dir / 'stdout'}")
        return EXIT_UNSAFE
    return EXIT_FAILED
