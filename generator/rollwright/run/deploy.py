"""`rollwright deploy` and `rollwright rollback`: what the generated playbooks cannot do alone.

The playbooks roll one host back when its own health gate fails. Only the runner sees the whole run,
so it rolls back the hosts that earlier batches already switched (a `rollback.yml` run limited to
them), then asks every app host what it runs (`status.yml`) and says so: the fleet must end on one
healthy version, and the exit code says whether it did.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import Any

from rollwright.errors import EXIT_FAILED, EXIT_UNSAFE, BadInput
from rollwright.inventory import inventory_groups
from rollwright.render.batches import split_batches
from rollwright.render.documents import checklist, rollback_plan
from rollwright.render.plan import build_plan, destructive_files, hosts_of, plan_as_text
from rollwright.render.playbooks import AFTER_ROLLOUT_PLAYS
from rollwright.render.policy import allowed
from rollwright.render.project import (
    expand_groups,
    inventory_path,
    read_migrations,
    resolve_target,
)
from rollwright.run.already import check_current, may_be_current
from rollwright.run.engine import Interrupts, PlaybookRun, labelled, run_playbook
from rollwright.run.livestats import LiveNumbers, stat_loop
from rollwright.run.lock import LOCK_NOT_FREE, DeployLock, lock_answer
from rollwright.run.notify import notify
from rollwright.run.output import Output, hosts_in_batches
from rollwright.run.preflight import Overrides, Refusals, host_problems, refuse_read_only, target_gates
from rollwright.run.progress import Progress
from rollwright.run.provenance import Unverified, check_artifact, provenance
from rollwright.run.records import History, Record, now, write_record
from rollwright.run.recover import repair_leftovers
from rollwright.run.remote import connections
from rollwright.run.status import HostState, Workspace, host_states, one_healthy_version, print_states, states_of
from rollwright.run.verify import print_verification, run_verify
from rollwright.run.workspace import prepare_workspace
from rollwright.spec.loader import LoadedSpec
from rollwright.spec.model import Spec, Target
from rollwright.targetenv import TargetEnv

Write = Callable[[str], None]


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
    direct: bool = False  # every app host at once (a hotfix); required for strategy direct on production
    no_switch: bool = False  # blue/green: deploy the idle colour, leave the traffic where it is (`promote` later)
    forks: int | None = None  # parallel hosts for site.yml, over the target's `forks`
    lock_wait_s: float = 0.0
    message: str = ""
    overrides: Overrides = field(default_factory=Overrides)


class Told:
    """Writes the lines that tell how a run ended, and keeps them for the record's summary."""

    def __init__(self, write: Output) -> None:
        self.write, self.lines = write, list[str]()

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.write(line)

    def event(self, kind: str, text: str, **fields: Any) -> None:
        self.lines.append(text)
        self.write.event(kind, text, **fields)

    def task(self, name: str, waiting: list[str], answered: list[str]) -> None:
        """The live view's task line (a restore's runs write through this): not a line of the record."""
        self.write.task(name, waiting, answered)


def deploy(loaded: LoadedSpec, options: DeployOptions, write: Output) -> int:
    """Run site.yml for a target; on failure restore the whole fleet and account for every host."""
    name, target = resolve_target(loaded, options.target)
    loaded = allowed(loaded, name, target, options.direct)
    spec = loaded.spec
    _check_options(loaded, name, target, options)
    groups = expand_groups(loaded)
    inventory = target_inventory(loaded, name, target)
    migrations = read_migrations(loaded)
    steps = build_plan(spec, groups, inventory, migrations)
    if options.dry_run:
        write(f"dry run: plan for {spec.app} on target {name}; nothing is touched")
        write(plan_as_text(steps))
        return 0
    refuse_read_only(name, target, "deploy")  # before the host checks: nothing on a read-only target is contacted
    what = f"{spec.app} {spec.artifact.version}" if spec.artifact else spec.app
    try:  # before the project, the lock and any host: an artifact that is not what its signer signed goes nowhere
        signed = check_artifact(loaded, name, target)
    except Unverified as exc:
        raise _refused(what, name, [str(exc)]) from None
    documents = {"checklist.md": checklist(spec, name, steps),
                 "rollback-plan.md": rollback_plan(spec, name, destructive_files(migrations))}
    app_hosts = hosts_of(spec.rollout.hosts, inventory) if spec.artifact else []
    batches = split_batches(app_hosts, spec.rollout.steps)
    plan, fields = plan_line(f"deploying {what} to {name}", spec, options.limit, batches)
    write.plan(plan, action="deploy", target=name, version=spec.artifact.version if spec.artifact else "", **fields)
    if spec.rollout.strategy == "direct":
        write("direct: every app host restarts at once (a hotfix); requests fail meanwhile")
    elif spec.rollout.strategy == "blue_green":
        write("blue/green: the idle colour gets the release while it takes no traffic, then takes the traffic "
              "in one step" + (" when you run `rollwright promote`" if options.no_switch else ""))
    elif spec.rollout.balancer and any(len(b) == len(app_hosts) > 1 for b in batches):
        write("warning: a batch takes every app host out of the load balancer at once; requests will fail meanwhile")
    copies = ", a copy of the artifact" if spec.artifact else ""
    if signed:
        write(f"signature: good {signed.method} signature by {signed.signer} ({signed.fingerprint}), checked over the "
              "artifact's pinned sha256")
    write.phase(f"preparing the Ansible project (the playbooks, the roles{copies})")
    workspace = prepare_workspace(loaded, name, ships_artifact=True)
    record = Record(spec.app, name, "deploy", spec.artifact.version if spec.artifact else "",
                    spec.artifact.sha256 if spec.artifact else "",
                    f"{spec.rollout.strategy} {spec.rollout.steps}" if spec.artifact else "", now())
    record.provenance = provenance(loaded, signed, workspace.digest)
    with labelled(*ara_labels(record)):  # every playbook run of this deploy, for ARA
        problems = target_gates(loaded, name, target, record.sha256, options.overrides, History(workspace.root.parent))
        if problems:  # refused anyway: the one refusal lists what the hosts would refuse too
            raise _refused(what, name, problems + host_problems(workspace.project, workspace.runs))
        record.overrides = [f"{flag}: {options.overrides.reason}" for flag, used in (
            ("change freeze overridden", options.overrides.override_freeze),
            ("promotion gate forced", options.overrides.force)) if used]
        tell = Told(write)
        if _already_deployed(spec, options, workspace, record, documents, app_hosts, tell):
            return 0
        lock = DeployLock(workspace.project, workspace.runs, record.id, record.version, options.message, write)

        def taken() -> None:
            write.phase("deploy lock taken")
            notify(target.webhook, "start", record, write)  # a refused deploy never started

        lock.on_taken = taken
        # site.yml's first play takes the lock (one run fewer), except for a --limit deploy (its hosts may not hold
        # the lock's) or a spec without app hosts
        deferred = bool(app_hosts) and not options.limit
        if not deferred:
            write.phase("taking the deploy lock (lock.yml)")
        with lock.holding(options.lock_wait_s, deferred=deferred):
            code = _run_site(loaded, options, workspace, record, documents, inventory, tell, lock)
        if record.rolled_back_by_gate or record.rolled_back_by_runner:
            notify(target.webhook, "rollback", record, write)
        notify(target.webhook, "success" if code == 0 else "failure", record, write)
        return code


def plan_line(doing: str, spec: Spec, limit: str | None, batches: list[list[str]]) -> tuple[str, dict[str, Any]]:
    """The first line of a run, and its fields for --json: what, where, and the shape of the rollout (its batches,
    or its colours), so the operator knows what is coming before any host is contacted."""
    hosts = [host for batch in batches for host in batch]
    fields: dict[str, Any] = {"app": spec.app, "strategy": spec.rollout.strategy, "hosts": hosts,
                              "batch_sizes": [len(batch) for batch in batches], "limit": limit}
    if limit:
        shape = f"the app hosts matching --limit {limit}"
    elif spec.rollout.strategy == "blue_green":
        colours = spec.rollout.colours
        shape = f"{len(hosts)} app hosts in colours {colours.blue} and {colours.green}"
        fields["batch_sizes"] = []
    elif spec.artifact:
        shape = hosts_in_batches(batches)
    else:
        shape = f"command groups {', '.join(group.name for group in spec.groups)}" if spec.groups else ""
    return f"{doing}: {shape}" if shape else doing, fields


def _already_deployed(spec: Spec, options: DeployOptions, workspace: Workspace, record: Record,
                      documents: dict[str, str], app_hosts: list[str], tell: Told) -> bool:
    """A deploy of what already runs everywhere ends after one read-only run (current.yml), without the lock,
    recorded as what it was; else (or in doubt) the normal path follows."""
    newest = next(iter(History(workspace.root.parent).list(record.target, limit=1)), None)
    if not may_be_current(spec, newest, limited=bool(options.limit), groups_chosen=bool(options.only_groups or
                          options.skip_groups), direct=options.direct, no_switch=options.no_switch):
        return False
    tell.write.phase("the last deploy was this one: checking whether every app host already runs it (current.yml, "
                     "read-only)")
    current = check_current(workspace, record.version, app_hosts)
    if not current.deployed:
        return False
    tell(f"already deployed: every app host runs {spec.app} {record.version}, healthy and in service, and the stage "
         "would change nothing; no host was touched")
    record.finish(0)
    record.status, record.summary = "succeeded", tell.lines[-1]
    record.hosts = [asdict(state) for state in current.states]
    _write_record(workspace, record, documents, tell)
    return True


def ara_labels(record: Record) -> tuple[str, dict[str, str]]:
    """ARA's playbook name and labels for the runs of one deploy, rollback or promote: one name per app, target
    and action, and labels that find every run of this one (its record id) or of a target or version."""
    return f"{record.app} {record.target} {record.action}", {
        "deploy_id": record.id, "app": record.app, "target": record.target, "action": record.action,
        "version": record.version}


def _refused(what: str, name: str, problems: list[str]) -> BadInput:
    return BadInput(f"deploy of {what} to {name} refused before any change:\n" +
                    "\n".join(f"  - {problem}" for problem in problems))


def _repair_first(loaded: LoadedSpec, options: DeployOptions, workspace: Workspace, record: Record,
                  tell: Told) -> int:
    """A killed deploy's leftovers (a host drained, `current` ahead of its process) repaired before this one
    starts, when this deploy broke the lock of a runner that died holding it (a runner that ends, however it
    ends, leaves no such leftovers); not for blue/green (its switch is one step) nor a --limit deploy (it must
    not touch other hosts)."""
    if not loaded.spec.artifact or loaded.spec.rollout.strategy == "blue_green" or options.limit:
        return 0
    with Interrupts() as interrupts:
        repair = repair_leftovers(workspace, History(workspace.root.parent), record.target, tell, whole_fleet=False,
                                  cancel=interrupts.after(1))
    if repair.code:
        tell(f"✗ deploy of {loaded.spec.app} {record.version} to {record.target} stopped before its rollout: "
             "the hosts a killed run left half-done could not be repaired (see above)")
    return repair.code


def _run_site(loaded: LoadedSpec, options: DeployOptions, workspace: Workspace, record: Record,
              documents: dict[str, str], inventory: dict[str, list[str]], tell: Told, lock: DeployLock) -> int:
    """site.yml under the lock; on failure the restore and the account; then the record. A failed check before
    any change (preflight, the strategy policy) is a refusal, exit 2, as the target's own gates are."""
    spec, write = loaded.spec, tell.write
    what, name = f"{spec.app} {record.version}".rstrip(), record.target
    app_hosts = hosts_of(spec.rollout.hosts, inventory) if spec.artifact else []
    progress = Progress(write, batches=len(split_batches(app_hosts, spec.rollout.steps)),
                        secrets=secret_values(loaded, name))
    refusals = Refusals()
    live = _live_numbers(spec, workspace, inventory, progress, write)
    with Interrupts() as interrupts, closing(live):
        def site_run() -> PlaybookRun:
            return run_playbook(workspace.project, "site.yml", workspace.runs, lock.watch(
                lambda event: (refusals(event), progress(event), live(event))), limit=options.limit,
                extravars={**_extravars(options), **lock.ask()}, skip_tags=_skip_tags(loaded, options),
                cancel=interrupts.after(1), forks=options.forks)

        site = None
        if not lock.broke:  # deferred: its first play takes the lock
            write.phase(starting_phase("site.yml", lock, app_hosts))
            site = site_run()
        if site is None or lock.refused:  # the lock is held (or its host did not answer): that run stopped there
            if lock.refused:
                write.phase(LOCK_NOT_FREE)
                # waits for it (a Ctrl-C ends the wait), breaks a dead runner's lock, or names the holder
                lock.acquire(options.lock_wait_s, cancel=interrupts.after(1))
            if lock.broke and (code := _repair_first(loaded, options, workspace, record, tell)):
                return code
            write.phase(starting_phase("site.yml", lock, app_hosts))
            site = site_run()
        progress.close()
        live.close()
        if not site.ok and refusals.problems and not progress.changed:
            raise _refused(what, name, refusals.problems)
        runs = [site]
        if site.ok:
            states = states_after(site, workspace, options.limit) if spec.artifact else []
            changed = progress.changed  # from the events: the lock play's (the lock taken) is not the deploy's
            tell(f"deployed {what} to {name} ({changed} changes)")
            if progress.continued:
                tell(f"failed but continued (--continue-on-failure): {'; '.join(progress.continued)}")
            code, rolled_back = 0, []
            deployed = one_healthy_version(states, live=not options.no_switch)
            if spec.artifact and not options.limit and deployed != record.version:
                print_states(tell, states)
                tell(f"ATTENTION: the playbook passed, but not every app host serves {record.version} healthy now")
                code = EXIT_UNSAFE
            elif spec.artifact and not options.limit:
                code = _verify(workspace, record, tell, _colours(spec, progress, inventory, options.no_switch))
            if code == 0 and options.no_switch:
                live = progress.colours.get("live")  # none before the first switch
                tell(f"the traffic stays {f'on {live}' if live else 'where it was'}: "
                     f"`rollwright promote` moves it to {progress.colours.get('idle')} in one step")
        else:
            if site.status == "canceled":
                tell(f"✗ deploy of {what} to {name} interrupted; restoring the fleet "
                     "(interrupt again to stop that too)")
            else:
                tell(f"✗ deploy of {what} to {name} failed ({site.status}, ansible rc {site.rc})")
            restore = _restore_colours if spec.rollout.strategy == "blue_green" else _restore
            rolled_back = restore(workspace, progress, record.version, tell, interrupts.after(2), runs)
            if spec.artifact:
                write.phase("asking every app host what it runs now (status.yml)")
            states = host_states(workspace, options.limit) if spec.artifact else []
            code = _account(tell, site, progress, rolled_back, states, record.version)
    record.status = run_status(site, code)
    record.verified = code == 0 and bool(record.verification.get("ok"))  # verify ran (a whole-fleet deploy), passed
    if code != 0 and spec.hooks.on_failure:
        runs.append(_on_failure_hooks(workspace, record, tell))
    finish_run(workspace, record, documents, progress, runs, states, rolled_back, code, tell, lock)
    return code


def _live_numbers(spec: Spec, workspace: Workspace, inventory: dict[str, list[str]], progress: Progress,
                  write: Output) -> LiveNumbers:
    """The load balancer's live numbers for the rollout (HAProxy only, an inventory's host, an output that shows
    them); otherwise a follower that never starts."""
    lb = spec.rollout.haproxy
    balancers = hosts_of(lb.hosts, inventory) if lb and lb.backend else []
    show = getattr(write, "numbers", None)  # an Output shows them its way; another writer gets none
    wanted = bool(balancers) and show is not None and write.shows_numbers and spec.artifact is not None

    def connect() -> list[str]:
        return connections(workspace.project, balancers[:1])[0].ssh(stat_loop(lb.socket if lb else ""))

    return LiveNumbers(connect if wanted else None, lb.backend if lb and lb.backend else "",
                       lambda: progress.switched, write.event, show or (lambda numbers: None))


def starting_phase(playbook: str, lock: DeployLock, hosts: list[str]) -> str:
    """The phase line of a run whose first play may take the deploy lock (on the first app host)."""
    takes = "" if lock.held else f"; its first play takes the deploy lock on {hosts[0] if hosts else 'the first host'}"
    return f"starting ansible-playbook {playbook}{takes}"


def states_after(site: PlaybookRun, workspace: Workspace, limit: str | None) -> list[HostState]:
    """Every app host's state from the status plays site.yml and rollback.yml end with, else (blue/green)
    from status.yml."""
    return states_of(site) if "rollwright_hosts" in site.custom_stats else host_states(workspace, limit)


def secret_values(loaded: LoadedSpec, name: str) -> tuple[str, ...]:
    """The target's secret env values (`env set --secret`): commands run with them, so a failed command's
    output may show them; Progress masks them."""
    path = inventory_path(loaded, *resolve_target(loaded, name))
    if path is None or not path.is_dir():
        return ()
    return tuple(value.value for value in TargetEnv(path, name).list() if value.secret)


def _colours(spec: Spec, progress: Progress, inventory: dict[str, list[str]],
             no_switch: bool) -> tuple[str, list[str]] | None:
    """Blue/green: the colour that got the release, and the backend servers that must be ready now."""
    if spec.rollout.strategy != "blue_green":
        return None
    deployed = progress.colours.get("idle", "")
    other = next(c for c in (spec.rollout.colours.blue, spec.rollout.colours.green) if c != deployed)
    return deployed, hosts_of(other if no_switch else deployed, inventory)


def _verify(workspace: Workspace, record: Record, tell: Told, colours: tuple[str, list[str]] | None) -> int:
    """The independent proof: the generated testinfra suite; a failure is a fleet a human must look at."""
    tell.write.phase("verifying every app host against the spec (the testinfra suite)")
    result = run_verify(workspace.project, workspace.runs, colours)
    record.verification = result.as_dict()
    print_verification(tell, result)
    if result.ok:
        return 0
    tell(f"ATTENTION: {record.version} is deployed, but the hosts are not as the spec says (see above)")
    return EXIT_UNSAFE


def _on_failure_hooks(workspace: Workspace, record: Record, tell: Told) -> PlaybookRun:
    """The spec's on_failure hooks (page someone, open a ticket), after the fleet was restored."""
    failure = {"id": record.id, "status": record.status, "version": record.version, "target": record.target}
    hooks = run_playbook(workspace.project, "on_failure.yml", workspace.runs, lambda event: None,
                         extravars={"rollwright_failure": failure})
    if hooks.ok:
        tell("ran the on_failure hooks")
    else:
        tell(f"✗ an on_failure hook failed: {'; '.join(hooks.error_tail(3)) or hooks.status}")
    return hooks


def run_status(run: PlaybookRun, code: int) -> str:
    """The record's status: interrupted (Ctrl-C), else from the exit code (3 is a fleet needing a human)."""
    if run.status == "canceled":
        return "interrupted"
    return {0: "succeeded", EXIT_FAILED: "failed"}.get(code, "unsafe")


def finish_run(workspace: Workspace, record: Record, documents: dict[str, str], progress: Progress,
               runs: list[PlaybookRun], states: list[HostState], rolled_back: list[str], code: int, tell: Told,
               lock: DeployLock) -> None:
    """Fill in and write the record of a deploy, rollback or app action (with the checklist and rollback plan
    made for a deploy); then, in one run (finish.yml), the audit line on every host and the lock given back."""
    record.finish(code)
    record.steps = [asdict(step) for step in progress.steps]
    record.failures = [f"{h.name}: {failure}" for h in progress.failed for failure in h.failures or [h.unreachable]]
    if record.action == "deploy":  # a rollback's own hosts are what it did, not a gate's rescue
        record.rolled_back_by_gate = sorted(h.name for h in progress.hosts.values() if h.rolled_back)
    record.rolled_back_by_runner = rolled_back
    record.processes_restarted = {h.name: list(dict.fromkeys(h.restarted)) for h in progress.hosts.values()
                                  if h.restarted}
    record.backup, record.migrations, record.canary = progress.backup, progress.migrations, progress.canary
    record.hold = progress.hold
    applied = {m.get("script") for m in progress.migrations.get("applied") or []}
    record.cannot_roll_back += [  # after what the run said itself (a rollback: the schema it leaves)
        f"destructive migration {item['script']} ({', '.join(item.get('statements') or [])}): only the backup "
        "restores its data" for item in progress.migrations.get("destructive") or [] if item["script"] in applied]
    if applied:
        record.cannot_roll_back.append(f"schema changes of {', '.join(sorted(applied))}: a code rollback keeps them")
    record.hosts = [asdict(state) for state in states]
    record.summary = "\n".join(tell.lines)
    record.artifacts = [str(run.artifact_dir) for run in runs]
    _write_record(workspace, record, documents, tell)
    line = (f"{record.finished_at} {record.id} {record.action} {record.app} {record.version or '-'} "
            f"{record.status} by {record.user}")
    answers: list[dict[str, Any] | None] = []
    tell.write.phase("writing the audit line on every host" + (", giving the deploy lock back" if lock.held else "") +
                     " (finish.yml)")
    finish = run_playbook(workspace.project, "finish.yml", workspace.runs, lambda event: answers.append(
        lock_answer(event)), extravars={"rollwright_audit_line": line, **(lock.extravars("release") if lock.held
                                                                             else {})})
    lock.released_by(next((answer for answer in answers if answer is not None), None))
    if finish.count("dark") or finish.count("failures"):
        missed = sorted({*finish.count("dark"), *finish.count("failures")})
        tell.write(f"warning: no audit log line on {', '.join(missed)}")


def _write_record(workspace: Workspace, record: Record, documents: dict[str, str], tell: Told) -> None:
    folder = write_record(workspace.root / "records", record, documents, History(workspace.root.parent))
    tell.write.event("record", f"record {record.id} ({record.seconds:.1f} s start to finish): {folder / 'record.md'}",
                     id=record.id, status=record.status, seconds=record.seconds, path=str(folder / "record.md"))


def _restore(workspace: Workspace, progress: Progress, version: str, write: Write,
             cancel: Callable[[], bool], runs: list[PlaybookRun]) -> list[str]:
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
        runs.append(back)
        rolled_back = switched if back.ok else []
        if not back.ok:
            write("✗ the rollback of those hosts failed too")
    if left_out:
        write(f"putting back in the load balancer: {', '.join(left_out)}")
        undrain = run_playbook(workspace.project, "undrain.yml", workspace.runs, Progress(write),
                               limit=",".join(left_out), cancel=cancel)
        runs.append(undrain)
        if not undrain.ok:
            write("✗ some of them are not UP in the load balancer (see below)")
    return rolled_back


def _restore_colours(workspace: Workspace, progress: Progress, version: str, write: Write,
                     cancel: Callable[[], bool], runs: list[PlaybookRun]) -> list[str]:
    """Blue/green: the traffic goes back in one step if this run moved it; before the switch the failed
    release sits on the idle colour, which takes no traffic, so nothing needs restoring."""
    live, idle = progress.colours.get("live") or "the live colour", progress.colours.get("idle") or "the idle colour"
    if not progress.colour_switched:
        write(f"the traffic never left {live}; {idle} keeps release {version} but takes no traffic")
        return []
    write(f"switching the traffic back to {live}")
    back = run_playbook(workspace.project, "rollback.yml", workspace.runs, Progress(write), cancel=cancel)
    runs.append(back)
    if not back.ok:
        write("✗ the switch back failed too")
        return []
    return sorted(h.name for h in progress.hosts.values() if h.switched)


def rollback(loaded: LoadedSpec, target_name: str | None, to_version: str | None, limit: str | None,
             write: Output, *, lock_wait_s: float = 0.0, message: str = "", action: str = "rollback") -> int:
    """Every app host (or --limit) back to its previous release, or to `to_version`; batch by batch.
    Blue/green switches the traffic to the idle colour instead, which is also what `promote` does."""
    spec = loaded.spec
    if not spec.artifact:
        raise BadInput(f"{loaded.path}: the spec deploys no release, so there is nothing to roll back")
    name, target = resolve_target(loaded, target_name)
    blue_green = spec.rollout.strategy == "blue_green"
    if action == "promote" and not blue_green:
        raise BadInput(f"{loaded.path}: promote switches blue/green traffic; this spec's strategy is "
                       f"{spec.rollout.strategy}")
    if blue_green and (to_version or limit):
        raise BadInput(f"{loaded.path}: blue/green {action} switches the whole traffic to the idle colour; "
                       "--to and --limit do not apply")
    refuse_read_only(name, target, action)
    where = f"to {to_version}" if to_version else "to each host's previous release"
    if blue_green:
        where = "by switching the traffic to the idle colour"
    tell = Told(write)  # the plan line is the record's first line
    batches = split_batches(hosts_of(spec.rollout.hosts, target_inventory(loaded, name, target)), spec.rollout.steps)
    doing = "promoting" if action == "promote" else "rolling back"
    plan, fields = plan_line(f"{doing} {spec.app} on {name} {where}", spec, limit, batches)
    tell.event("plan", plan, action=action, target=name, version=to_version or "", **fields)
    write.phase("preparing the Ansible project (the playbooks, the roles)")
    workspace = prepare_workspace(loaded, name)
    record = Record(spec.app, name, action, to_version or "", "", f"{action} {where}", now())
    lock = DeployLock(workspace.project, workspace.runs, record.id, to_version or "", message, write)
    lock.on_taken = lambda: write.phase("deploy lock taken")
    if limit:
        write.phase("taking the deploy lock (lock.yml)")
    # rollback.yml's first play takes the lock (one run fewer); every run is labelled for ARA
    with labelled(*ara_labels(record)), lock.holding(lock_wait_s, deferred=not limit):
        write.phase(starting_phase("rollback.yml", lock, fields["hosts"]))
        code = _run_rollback(workspace, record, to_version, limit, tell, lock, lock_wait_s,
                             migrated=bool(spec.database and spec.database.migrations))
    notify(target.webhook, "rollback", record, write)
    return code


def _run_rollback(workspace: Workspace, record: Record, to_version: str | None, limit: str | None,
                  tell: Told, lock: DeployLock, lock_wait_s: float, migrated: bool = False) -> int:
    extravars = {"rollwright_rollback_version": to_version} if to_version else {}
    progress = Progress(tell.write)
    with Interrupts() as interrupts:
        def rollback_run() -> PlaybookRun:
            return run_playbook(workspace.project, "rollback.yml", workspace.runs, lock.watch(progress), limit=limit,
                                extravars={**extravars, **lock.ask()}, cancel=interrupts.after(1))

        run = lock.run_taking_it(rollback_run, lock_wait_s, interrupts.after(1), tell.write.phase,
                                 lambda: starting_phase("rollback.yml", lock, []))
        progress.close()
        states = states_after(run, workspace, limit) if run.ok else host_states(workspace, limit)
    print_states(tell, states)
    serving = one_healthy_version(states)
    if run.ok and serving is not None:
        tell(f"{'promoted' if record.action == 'promote' else 'rolled back'}: every live host serves {serving} "
             "and is healthy")
        code = 0
    else:
        tell(f"✗ rollback did not finish cleanly; details: {run.artifact_dir / 'stdout'}")
        code = EXIT_FAILED if serving is not None else EXIT_UNSAFE
    record.version = serving or to_version or ""
    record.status = run_status(run, code)
    if migrated and serving is not None and record.action == "rollback":
        record.cannot_roll_back += _schema_beyond(workspace, record.target, serving, tell)
    finish_run(workspace, record, {}, progress, [run], states, [], code, tell, lock)
    return code


def _schema_beyond(workspace: Workspace, target: str, version: str, tell: Told) -> list[str]:
    """A rollback moves the code, never the schema: name the migrations the records say were applied after
    `version` was deployed here, which the database keeps."""
    beyond = History(workspace.root.parent).applied_since(target, version)
    if beyond is None:
        said = (f"the records hold no successful deploy of {version} to {target}: the database may have migrations "
                "beyond what it knows")
    elif beyond:
        said = f"the database keeps the migrations applied after {version} was deployed: {', '.join(beyond)}"
    else:
        return []
    tell(f"schema: {said} (a rollback does not undo them; the backup taken before them restores the data)")
    return [f"schema newer than {version}: {said}"]


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
    if options.no_switch and loaded.spec.rollout.strategy != "blue_green":
        raise BadInput(f"--no-switch needs strategy blue_green ({loaded.path} says {loaded.spec.rollout.strategy})")


def target_inventory(loaded: LoadedSpec, name: str, target: Target) -> dict[str, list[str]]:
    path = inventory_path(loaded, name, target)
    return inventory_groups(path) if path else {"all": ["localhost"]}


def _extravars(options: DeployOptions) -> dict[str, Any]:
    extravars: dict[str, Any] = {}
    if options.continue_on_failure:
        extravars["rollwright_continue_on_failure"] = True
    if options.acknowledge_destructive:
        extravars["rollwright_acknowledge_destructive"] = list(options.acknowledge_destructive)
    if options.no_switch:
        extravars["rollwright_no_switch"] = True
    return extravars


def _skip_tags(loaded: LoadedSpec, options: DeployOptions) -> list[str]:
    skipped = list(options.skip_groups)
    if options.only_groups:
        skipped = [g.name for g in loaded.spec.groups if g.name not in options.only_groups]
    tags = [f"group_{name}" for name in skipped]
    return [*tags, "health"] if options.no_health_check else tags


def _account(write: Write, site: PlaybookRun, progress: Progress, rolled_back: list[str],
             states: list[HostState], version: str) -> int:
    """The short story of a failed deploy; exit 1 when the fleet is on one healthy version, else 3."""
    write("what failed:")
    for record in progress.failed:
        for failure in record.failures or [record.unreachable]:
            said, *tail = failure.splitlines()
            write(f"    {record.name:<12} {said}")
            for line in tail:  # the failed command's last lines of output
                write(f"{'':<17}| {line}")
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
    versions = {s.serves for s in states}
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
    gone = sorted({lb for s in states for lb, state in s.lb.items() if state == "unreachable"})
    if gone:
        problems.append(f"the load balancer {', '.join(gone)} is unreachable: which hosts take traffic is unknown")
    half_done = [f"{s.name} ({', '.join(s.problems())})" for s in states if s.half_done]
    if half_done:
        problems.append(f"half-done: {'; '.join(half_done)} (`rollwright recover` repairs it)")
    write("ATTENTION, the fleet needs a human: " + "; ".join(problems))
    return EXIT_UNSAFE
