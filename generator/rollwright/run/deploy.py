"""`rollwright deploy` and `rollwright rollback`: what the generated playbooks cannot do alone.

The playbooks roll one host back when its own health gate fails. Only the runner sees the whole run,
so it rolls back the hosts that earlier batches already switched (a `rollback.yml` run limited to
them), then asks every app host what it runs (`status.yml`) and says so: the fleet must end on one
healthy version, and the exit code says whether it did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollwright.errors import EXIT_FAILED, BadInput
from rollwright.inventory import inventory_groups
from rollwright.render.batches import split_batches
from rollwright.render.plan import build_plan, hosts_of, plan_as_text
from rollwright.render.playbooks import AFTER_ROLLOUT_PLAYS
from rollwright.render.project import (
    expand_groups,
    inventory_path,
    prepare,
    read_migrations,
    render,
    resolve_target,
    write_project,
)
from rollwright.run.engine import Interrupts, PlaybookRun, run_playbook
from rollwright.run.progress import Progress
from rollwright.spec.loader import LoadedSpec
from rollwright.spec.model import Target

Write = Callable[[str], None]
EXIT_UNSAFE = 3  # failed, and the fleet is not on one healthy version: a human must look
STATE_DIR = ".rollwright"


@dataclass(frozen=True)
class DeployOptions:
    target: str | None = None
    only_groups: tuple[str, ...] = ()
    skip_groups: tuple[str, ...] = ()
    dry_run: bool = False
    no_health_check: bool = False
    limit: str | None = None
    continue_on_failure: bool = False
    acknowledge_destructive: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostState:
    """What an app host serves right now, as status.yml found it."""

    name: str
    current: str
    previous: str
    healthy: bool
    health_status: int


@dataclass(frozen=True)
class Workspace:
    """Where a target's generated project and its ansible-runner artifacts live, beside the spec."""

    root: Path

    @classmethod
    def of(cls, loaded: LoadedSpec, target: str) -> Workspace:
        return cls((loaded.base_dir / STATE_DIR / target).resolve())

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def runs(self) -> Path:
        return self.root / "runs"


def deploy(loaded: LoadedSpec, options: DeployOptions, write: Write) -> int:
    """Run site.yml for a target; on failure restore the whole fleet and account for every host."""
    spec = loaded.spec
    name, target = resolve_target(loaded, options.target)
    _check_options(loaded, name, target, options)
    groups = expand_groups(loaded)
    inventory = _inventory(loaded, name, target)
    if options.dry_run:
        write(f"dry run: plan for {spec.app} on target {name}; nothing is touched")
        write(plan_as_text(build_plan(spec, groups, inventory, read_migrations(loaded))))
        return 0
    app_hosts = hosts_of(spec.rollout.hosts, inventory) if spec.artifact else []
    batches = split_batches(app_hosts, spec.rollout.batches)
    what = f"{spec.app} {spec.artifact.version}" if spec.artifact else spec.app
    rollout = f": {len(app_hosts)} app host(s) in batches {[len(b) for b in batches]}" if spec.artifact else ""
    write(f"deploy {what} to {name}{rollout}")
    if spec.rollout.load_balancer and any(len(b) == len(app_hosts) > 1 for b in batches):
        write("warning: a batch takes every app host out of the load balancer at once; requests will fail meanwhile")
    workspace = prepare_workspace(loaded, name)
    progress = Progress(write, batches=len(batches))
    started = time.perf_counter()
    with Interrupts() as interrupts:
        site = run_playbook(workspace.project, "site.yml", workspace.runs, progress, limit=options.limit,
                            extravars=_extravars(options), skip_tags=_skip_tags(loaded, options),
                            cancel=interrupts.after(1))
        if site.ok:
            changed = sum(site.count("changed").values())
            write(f"deployed {what} to {name} in {time.perf_counter() - started:.1f}s ({changed} changes)")
            if progress.continued:
                write(f"failed but continued (--continue-on-failure): {'; '.join(progress.continued)}")
            return 0
        if site.status == "canceled":
            write(f"✗ deploy of {what} to {name} interrupted; restoring the fleet (interrupt again to stop that too)")
        else:
            write(f"✗ deploy of {what} to {name} failed ({site.status}, ansible rc {site.rc})")
        version = spec.artifact.version if spec.artifact else ""
        rolled_back = _restore(workspace, progress, version, write, interrupts.after(2))
        states = host_states(workspace, options.limit) if spec.artifact else []
    return _account(write, site, progress, rolled_back, states, version)


def _restore(workspace: Workspace, progress: Progress, version: str, write: Write,
             cancel: Callable[[], bool]) -> list[str]:
    """Roll back the hosts this run switched and left switched; put back in the load balancer the hosts
    a stopped rollout left drained. Returns the hosts rolled back."""
    only_after_rollout = bool(progress.failed_plays) and set(progress.failed_plays) <= set(AFTER_ROLLOUT_PLAYS)
    switched, left_out = list(progress.switched), list(progress.left_out)
    unsure = [h for h in left_out if progress.hosts[h].phase != "drain"]
    if unsure:  # stopped between switch and undrain: the switch may have happened without its event
        found = [s.name for s in host_states(workspace, ",".join(unsure)) if s.current == version]
        switched, left_out = sorted([*switched, *found]), [h for h in left_out if h not in found]
    rolled_back: list[str] = []
    if switched and not only_after_rollout:
        write(f"rolling back the hosts this deploy switched: {', '.join(switched)}")
        back = run_playbook(workspace.project, "rollback.yml", workspace.runs, Progress(write),
                            limit=",".join(switched), cancel=cancel)
        rolled_back = switched if back.ok else []
        if not back.ok:
            write("✗ the rollback of those hosts failed too")
    if left_out:
        write(f"putting back in the load balancer: {', '.join(left_out)}")
        undrain = run_playbook(workspace.project, "undrain.yml", workspace.runs, Progress(write),
                               limit=",".join(left_out), cancel=cancel)
        if not undrain.ok:
            write("✗ some of them are not UP in the load balancer (see below)")
    return rolled_back


def rollback(loaded: LoadedSpec, target_name: str | None, to_version: str | None, limit: str | None,
             write: Write) -> int:
    """Every app host (or --limit) back to its previous release, or to `to_version`; batch by batch."""
    spec = loaded.spec
    if not spec.artifact:
        raise BadInput(f"{loaded.path}: the spec deploys no release, so there is nothing to roll back")
    name, _ = resolve_target(loaded, target_name)
    workspace = prepare_workspace(loaded, name)
    where = f"to {to_version}" if to_version else "to each host's previous release"
    write(f"roll back {spec.app} on {name} {where}")
    extravars = {"rollwright_rollback_version": to_version} if to_version else None
    with Interrupts() as interrupts:
        run = run_playbook(workspace.project, "rollback.yml", workspace.runs, Progress(write), limit=limit,
                           extravars=extravars, cancel=interrupts.after(1))
        states = host_states(workspace, limit)
    print_states(write, states)
    serving = one_healthy_version(states)
    consistent = serving is not None
    if run.ok and consistent:
        write(f"rolled back: every host serves {serving} and is healthy")
        return 0
    write(f"✗ rollback did not finish cleanly; details: {run.artifact_dir / 'stdout'}")
    return EXIT_FAILED if consistent else EXIT_UNSAFE


def host_states(workspace: Workspace, limit: str | None = None) -> list[HostState]:
    """Ask every app host what it serves (status.yml changes nothing); unreachable hosts are missing."""
    run = run_playbook(workspace.project, "status.yml", workspace.runs, lambda event: None, limit=limit)
    found: dict[str, dict[str, Any]] = run.custom_stats.get("rollwright_hosts") or {}
    unreachable = sorted(run.count("dark"))
    states = [HostState(host, str(info.get("current") or ""), str(info.get("previous") or ""),
                        bool(info.get("healthy")), int(info.get("health_status") or -1))
              for host, info in sorted(found.items())]
    return states + [HostState(host, "", "", False, -1) for host in unreachable if host not in found]


def _check_options(loaded: LoadedSpec, name: str, target: Target, options: DeployOptions) -> None:
    if options.no_health_check and target.production:
        raise BadInput(f"--no-health-check is refused on target '{name}': it is marked production in {loaded.path}")
    known = [g.name for g in loaded.spec.groups]
    unknown = [g for g in (*options.only_groups, *options.skip_groups) if g not in known]
    if unknown:
        raise BadInput(f"no command group {', '.join(repr(g) for g in unknown)} in {loaded.path} "
                       f"(groups: {', '.join(known) or 'none'})")
    if options.only_groups and options.skip_groups:
        raise BadInput("use --group or --skip-group, not both")


def _inventory(loaded: LoadedSpec, name: str, target: Target) -> dict[str, list[str]]:
    path = inventory_path(loaded, name, target)
    return inventory_groups(path) if path else {"all": ["localhost"]}


def prepare_workspace(loaded: LoadedSpec, target: str | None) -> Workspace:
    """(Re)generate the target's project in its workspace; every run uses the spec as it is now."""
    name, _ = resolve_target(loaded, target)
    workspace = Workspace.of(loaded, name)
    write_project(render(prepare(loaded, name, workspace.project)), workspace.project)
    return workspace


def _extravars(options: DeployOptions) -> dict[str, Any] | None:
    extravars: dict[str, Any] = {}
    if options.continue_on_failure:
        extravars["rollwright_continue_on_failure"] = True
    if options.acknowledge_destructive:
        extravars["rollwright_acknowledge_destructive"] = list(options.acknowledge_destructive)
    return extravars or None


def _skip_tags(loaded: LoadedSpec, options: DeployOptions) -> list[str]:
    skipped = list(options.skip_groups)
    if options.only_groups:
        skipped = [g.name for g in loaded.spec.groups if g.name not in options.only_groups]
    tags = [f"group_{name}" for name in skipped]
    return [*tags, "health"] if options.no_health_check else tags


def one_healthy_version(states: list[HostState]) -> str | None:
    """The release every host serves when all of them serve the same one and are healthy, else None."""
    versions = {s.current for s in states}
    return versions.pop() if states and len(versions) == 1 and all(s.healthy for s in states) else None


def print_states(write: Write, states: list[HostState]) -> None:
    """One line per app host: the release it serves, the one before it, and its health."""
    write("hosts now:")
    for state in states:
        health = "healthy" if state.healthy else f"NOT healthy (health {state.health_status})"
        serving = state.current or "unknown (unreachable or never deployed)"
        write(f"    {state.name:<12} {serving:<16} previous {state.previous or '-':<16} {health}")


def _account(write: Write, site: PlaybookRun, progress: Progress, rolled_back: list[str],
             states: list[HostState], version: str) -> int:
    """The short story of a failed deploy; exit 1 when the fleet is on one healthy version, else 3."""
    write("what failed:")
    for record in progress.failed:
        for failure in record.failures or [record.unreachable]:
            write(f"    {record.name:<12} {failure}")
    if site.status == "canceled":
        write("    the deploy was interrupted (Ctrl-C or SIGTERM)")
    elif not progress.failed:
        for line in site.error_tail():
            write(f"    {line}")
    rescued = sorted(h.name for h in progress.hosts.values() if h.rolled_back)
    if rescued:
        write(f"rolled back by their health gate: {', '.join(rescued)}")
    if rolled_back:
        write(f"rolled back by the runner: {', '.join(rolled_back)}")
    if states:
        print_states(write, states)
    write(f"details: {site.artifact_dir / 'stdout'}")
    if not progress.changed:
        write("nothing was changed on any host")
        return EXIT_FAILED
    versions = {s.current for s in states}
    if versions == {""} and not progress.switched and not rolled_back:
        write("no app host serves a release yet (a first deploy): nothing was switched, the staged release waits")
        return EXIT_FAILED
    if not states:
        return EXIT_FAILED
    serving = one_healthy_version(states)
    if serving is not None:
        kept = "" if serving == version else f"; release {version} is not serving anywhere"
        write(f"the fleet serves {serving} on every host and is healthy{kept}")
        return EXIT_FAILED
    problems = []
    if len(versions) > 1:
        problems.append(f"the fleet is split across versions {', '.join(sorted(v or '?' for v in versions))}")
    sick = [s.name for s in states if not s.healthy]
    if sick:
        problems.append(f"not healthy: {', '.join(sick)}")
    write("ATTENTION, the fleet needs a human: " + "; ".join(problems))
    return EXIT_UNSAFE
