"""`rollwright recover`, and the check every deploy makes first: repair what a killed deploy left half-done.

A runner killed with SIGKILL (or a control node that lost power) runs no `finally`: it can leave the lock
taken, a host drained or in maintenance, `current` switched ahead of the process that still runs. The
next run finds those from what the hosts really run (status.yml), never from what the dead run meant to
do, and brings every such host back to one version: the version of the target's last verified deploy or
rollback (every host served it healthy then), else the one most settled hosts serve now. Each host goes
through the rollback play to that version, restarted behind the drain and health-gated even when
`current` already names it; a host that only stayed out of the load balancer is just put back.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rollwright.errors import EXIT_FAILED, EXIT_UNSAFE, BadInput
from rollwright.render.project import resolve_target
from rollwright.run.engine import Interrupts, PlaybookRun, run_playbook
from rollwright.run.lock import DeployLock
from rollwright.run.preflight import refuse_read_only
from rollwright.run.progress import Progress
from rollwright.run.records import History, new_id, now
from rollwright.run.status import HostState, Workspace, host_states, one_healthy_version, print_states
from rollwright.spec.loader import LoadedSpec

Write = Callable[[str], None]
ORPHAN_WAIT_S = 120.0  # a dead runner's ansible-playbook finishes its task, or dies with its terminal, by then


@dataclass
class Repair:
    """What one recovery found and did."""

    version: str | None = None  # the version every host is brought back to
    restart: list[str] = field(default_factory=list)  # hosts put on `version` behind the drain, health-gated
    undrain: list[str] = field(default_factory=list)  # hosts serving `version` settled, only out of the LB
    found: dict[str, list[str]] = field(default_factory=dict)  # host -> what was half-done there
    runs: list[PlaybookRun] = field(default_factory=list)
    states: list[HostState] = field(default_factory=list)  # every app host afterwards
    code: int = 0

    @property
    def hosts(self) -> list[str]:
        return sorted({*self.restart, *self.undrain})


def last_good_version(history: History, target: str) -> str:
    """The version of the target's newest succeeded, verified deploy or rollback ("" when there is none)."""
    for row in history.list(target, limit=200):
        if row.get("status") == "succeeded" and row.get("verified") and row.get("version"):
            return str(row["version"])
    return ""


def choose_version(states: list[HostState], last_good: str, hosts: set[str] | None = None) -> str | None:
    """The one version to bring the fleet back to, among those every host that may need it (`hosts`, default
    all) still has (its current, previous or running release; a rollback cannot switch to a release a host
    never staged): the last verified one, else the one most settled live hosts serve, else the one the hosts
    themselves serve, else None."""
    def staged_everywhere(version: str) -> bool:
        return all(version in (s.current, s.previous, s.running) for s in states if hosts is None or s.name in hosts)

    if last_good and staged_everywhere(last_good):
        return last_good
    serving = Counter(s.serves for s in states if s.live and s.settled and s.serves and staged_everywhere(s.serves))
    if serving:
        return max(sorted(serving), key=lambda v: serving[v])
    own = {s.serves for s in states if (hosts is None or s.name in hosts) and s.serves}
    return own.pop() if len(own) == 1 else None


def plan_repair(states: list[HostState], last_good: str, whole_fleet: bool) -> Repair:
    """Which live hosts need what. A deploy (which then rolls its own release out) repairs the half-done
    hosts only; `whole_fleet` (`rollwright recover`) also every host not settled or not on the chosen version."""
    live = [s for s in states if s.live]
    if not any(s.current for s in live):
        return Repair()  # nothing deployed yet: nothing can be half-done
    broken = {s.name for s in live if s.half_done or (whole_fleet and not s.settled)}
    split = whole_fleet and len({s.serves for s in live}) > 1
    repair = Repair(found={s.name: s.problems() or [f"not healthy (health {s.health_status})"]
                           for s in live if s.name in broken})
    if not broken and not split:
        return repair
    repair.version = choose_version(states, last_good, None if whole_fleet else broken)
    for state in live:
        if state.name not in broken and not (split and state.serves != repair.version):
            continue
        repair.found.setdefault(state.name, [f"serves {state.serves or 'nothing'}, not {repair.version}"])
        only_out = (state.healthy and state.active and state.serves == state.current == repair.version
                    and state.answers in ("", state.serves))
        (repair.undrain if only_out else repair.restart).append(state.name)
    return repair


def orphans(workspace: Workspace) -> list[int]:
    """ansible-playbook processes still working in this target's projects (a killed runner's children)."""
    projects = (workspace.root / "projects").resolve()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(proc / "cwd"))
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if projects in cwd.parents and any(part.endswith(b"ansible-playbook") for part in command[:2]):
            found.append(int(proc.name))
    return sorted(found)


def wait_for_orphans(workspace: Workspace, write: Write, wait_s: float = ORPHAN_WAIT_S) -> list[int]:
    """Wait (bounded) until no playbook of a dead run still changes the hosts; returns the ones left."""
    left = orphans(workspace)
    if left:
        write(f"waiting up to {wait_s:.0f}s for the playbook processes a killed run left behind "
              f"(pid {', '.join(map(str, left))})")
    deadline = time.monotonic() + wait_s
    while left and time.monotonic() < deadline:
        time.sleep(1.0)
        left = orphans(workspace)
    return left


def repair_leftovers(workspace: Workspace, history: History, target: str, write: Write, *,
                     whole_fleet: bool, cancel: Callable[[], bool] = lambda: False) -> Repair:
    """Find half-done hosts and bring them back to one healthy version in service, saying what it repaired.
    Run under the deploy lock. `code` is 0 when there was nothing to do or every host is settled afterwards."""
    left = wait_for_orphans(workspace, write)
    if left:
        write(f"✗ playbook processes of a killed run still run (pid {', '.join(map(str, left))}); "
              "wait for them to end, then run `rollwright recover`")
        return Repair(code=EXIT_FAILED)
    states = host_states(workspace)
    repair = plan_repair(states, last_good_version(history, target), whole_fleet)
    repair.states = states
    if not repair.hosts:
        return repair
    write("found half-done hosts (a killed deploy, a lost control node or a hand left them so):")
    for host in sorted(repair.found):
        write(f"    {host:<12} {'; '.join(repair.found[host])}")
    if repair.version is None:
        print_states(write, states)
        write("ATTENTION, the fleet needs a human: no host serves a release healthy to bring the others back to")
        repair.code = EXIT_UNSAFE
        return repair
    if repair.undrain:
        write(f"putting back in the load balancer: {', '.join(repair.undrain)}")
        repair.runs.append(run_playbook(workspace.project, "undrain.yml", workspace.runs, Progress(write),
                                        limit=",".join(repair.undrain), cancel=cancel))
    if repair.restart:
        write(f"bringing {', '.join(repair.restart)} to {repair.version} behind the load balancer (restart, health "
              "gate)")
        repair.runs.append(run_playbook(workspace.project, "rollback.yml", workspace.runs, Progress(write),
                                        limit=",".join(repair.restart), cancel=cancel, extravars={
                                            "rollwright_rollback_version": repair.version,
                                            "rollwright_rollback_restart": True}))
    repair.states = host_states(workspace)
    settled = [s for s in repair.states if s.name in repair.hosts and s.settled and s.serves == repair.version]
    if len(settled) == len(repair.hosts):
        serve = "serves" if len(repair.hosts) == 1 else "serve"
        write(f"repaired: {', '.join(repair.hosts)} {serve} {repair.version}, healthy and in service")
        return repair
    print_states(write, repair.states)
    write(f"✗ the repair did not settle {', '.join(h for h in repair.hosts if h not in {s.name for s in settled})}")
    repair.code = EXIT_FAILED if one_healthy_version(repair.states) else EXIT_UNSAFE
    return repair


def recover(loaded: LoadedSpec, workspace: Workspace, target_name: str | None, write: Write, *,
            lock_wait_s: float = 0.0) -> int:
    """`rollwright recover`: under the lock (a dead holder's is broken), every live app host back to one
    healthy version in service; exit 0 when it is (also when nothing was half-done)."""
    spec = loaded.spec
    name, target = resolve_target(loaded, target_name)
    if not spec.artifact:
        raise BadInput(f"{loaded.path}: the spec deploys no release, so there is nothing to recover")
    if spec.rollout.strategy == "blue_green":
        raise BadInput(f"{loaded.path}: blue/green moves the traffic in one step, so no host is left half-done; "
                       "`rollwright rollback` or `promote` puts it on one colour")
    refuse_read_only(name, target, "recover")
    lock = DeployLock(workspace.project, workspace.runs, new_id(now()), "", "recover", write)
    with lock.holding(lock_wait_s), Interrupts() as interrupts:
        repair = repair_leftovers(workspace, History(workspace.root.parent), name, write, whole_fleet=True,
                                  cancel=interrupts.after(1))
    if repair.code == 0 and not repair.hosts:
        print_states(write, repair.states)
        serving = one_healthy_version(repair.states)
        if serving is None:
            write("ATTENTION, the fleet needs a human: not every host is settled and nothing could be repaired")
            return EXIT_UNSAFE
        write(f"nothing to repair: every app host serves {serving}, healthy and in service"
              + (" (a stale lock was broken)" if lock.broke else ""))
    return repair.code
