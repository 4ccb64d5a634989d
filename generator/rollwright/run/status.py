"""What every app host really serves, as status.yml reads it: the release `current` points at, the release
the service's running process was started from, the version its health endpoint names, and its state in
each load balancer.

`current` alone is not the truth: a deploy killed between the switch and the restart leaves `current` on
the new release while the old process still runs, drained out of the load balancer. Status, verify and
recovery all judge a host on what runs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollwright.run.engine import PlaybookRun, run_playbook

Write = Callable[[str], None]


@dataclass(frozen=True)
class Workspace:
    """A target's state beside the spec: the generated project a run uses, ansible-runner's artifacts,
    the records. Each distinct project lives in `projects/<digest>/` and is never rewritten, so a run
    keeps its files while another command regenerates the project from an edited spec."""

    root: Path
    project: Path
    digest: str = ""  # the generated project's sha256 (its folder is named by the first 16 hex), for provenance

    @property
    def runs(self) -> Path:
        return self.root / "runs"


@dataclass(frozen=True)
class HostState:
    """What an app host serves right now, as status.yml found it."""

    name: str
    current: str  # the release `current` points at
    previous: str
    healthy: bool  # the health URL answered the spec's status
    health_status: int
    live: bool = True  # takes traffic (blue/green: the live colour; otherwise every app host)
    active: bool = True  # the systemd unit is active
    running: str = ""  # the release the unit's main process runs from ("" when not running or not under releases/)
    answers: str = ""  # the version the health endpoint names ("" when it names none)
    lb: dict[str, str] = field(default_factory=dict)  # load balancer host -> "UP", "MAINT", "DRAIN", "DOWN", ...
    reachable: bool = True
    service: bool = True  # the app runs a service; without one a host is its files: `current` is all it serves
    # the app's other processes on the host, by unit: {"active": ActiveState, "running": the release it runs from}
    processes: dict[str, dict[str, str]] = field(default_factory=dict)
    web: bool = True  # runs the web service (false on a host that only runs other processes)

    @property
    def serves(self) -> str:
        """The release that answers requests: the running process's, else (unknown) the one `current` names."""
        return self.running or self.current

    @property
    def in_service(self) -> bool:
        """Ready and UP in every load balancer (true without one)."""
        return all(state == "UP" for state in self.lb.values())

    @property
    def settled(self) -> bool:
        """Healthy, running what `current` names, answering as that release, and (when live) in service."""
        web = (self.healthy and self.active and self.running in ("", self.current)
               and self.answers in ("", self.serves) and (self.in_service or not self.live))
        return (web or not self.web) and not self.process_problems()

    def process_problems(self) -> list[str]:
        """The app's other processes that do not run, or run another release than `current` names."""
        found = []
        for unit, process in sorted(self.processes.items()):
            if process.get("active") != "active":
                found.append(f"{unit} is not running")
            elif process.get("running") not in ("", self.current):
                found.append(f"{unit} runs {process.get('running')}")
        return found

    @property
    def half_done(self) -> bool:
        """What a stopped run leaves behind: the process on another release than `current` names, a health
        answer naming another, or (a live host) drained or in maintenance in a load balancer."""
        if not self.reachable:
            return False
        out = self.live and any(state in ("MAINT", "DRAIN") for state in self.lb.values())
        behind = any(p.get("running") not in ("", self.current) for p in self.processes.values())
        return out or behind or self.running not in ("", self.current) or self.answers not in ("", self.serves)

    def problems(self, lb: bool = True) -> list[str]:
        """What is half-done on this host, in words (none when settled); `lb=False` leaves out the load balancer."""
        found = []
        if not self.reachable:
            found.append("unreachable")
        elif self.web and not self.active:
            found.append("the service is not running")
        elif self.web and self.running and self.running != self.current:
            found.append(f"current is {self.current or '-'} but the process runs {self.running}")
        if self.answers and self.answers != self.serves:
            found.append(f"its health endpoint answers {self.answers}")
        if self.live and lb and self.web:
            found += [f"{state} in {lb}" for lb, state in sorted(self.lb.items()) if state != "UP"]
        return found + (self.process_problems() if self.reachable else [])


def host_states(workspace: Workspace, limit: str | None = None) -> list[HostState]:
    """Ask every app host what it serves (status.yml changes nothing); unreachable hosts are missing."""
    return states_of(run_playbook(workspace.project, "status.yml", workspace.runs, lambda event: None, limit=limit))


def states_of(run: PlaybookRun) -> list[HostState]:
    """The app hosts' reports a run of the status plays published (status.yml, or the end of site.yml)."""
    found: dict[str, dict[str, Any]] = run.custom_stats.get("rollwright_hosts") or {}
    unreachable = sorted(run.count("dark"))
    states = [state_of(host, info) for host, info in sorted(found.items())]
    gone = [host for host in unreachable if host not in found]
    return states + [HostState(host, "", "", False, -1, active=False, reachable=False) for host in gone]


def state_of(host: str, info: dict[str, Any]) -> HostState:
    """One host's report from status.yml, read into what it means."""
    current, previous = str(info.get("current") or ""), str(info.get("previous") or "")
    root = str(info.get("root") or "")
    running = release_of(str(info.get("process_dir") or ""), root)
    if not info.get("service", True):  # nothing runs: a host with a release is as healthy as it can be
        return HostState(host, current, previous, bool(current), -1, bool(info.get("live", True)),
                         lb=lb_states(info.get("lb") or []), service=False)
    processes = {str(unit): {"active": str(seen.get("active") or ""),
                             "running": release_of(str(seen.get("process_dir") or ""), root)}
                 for unit, seen in (info.get("processes") or {}).items() if isinstance(seen, dict)}
    return HostState(host, current, previous, bool(info.get("healthy")), int(info.get("health_status") or -1),
                     bool(info.get("live", True)), active=info.get("active", "active") == "active", running=running,
                     answers=version_named(info.get("health_body") or "", [running, current, previous]),
                     lb=lb_states(info.get("lb") or []), processes=processes, web=bool(info.get("web", True)))


def release_of(process_dir: str, root: str) -> str:
    """The release folder a process runs in: `<root>/releases/<release>[/...]` -> release, else ""."""
    prefix = root.rstrip("/") + "/releases/"
    return process_dir[len(prefix):].split("/")[0] if root and process_dir.startswith(prefix) else ""


def version_named(body: Any, candidates: list[str]) -> str:
    """The version a health answer names: its JSON `version`, else the longest known release it mentions."""
    answer, body = (body, json.dumps(body)) if isinstance(body, dict) else (None, str(body))
    with contextlib.suppress(ValueError):
        answer = answer or json.loads(body)
    if isinstance(answer, dict) and isinstance(answer.get("version"), str | int | float):
        return str(answer["version"])
    named = sorted((c for c in set(candidates) if c and c in body), key=len, reverse=True)
    return named[0] if named else ""


def lb_states(results: list[dict[str, Any]]) -> dict[str, str]:
    """Each load balancer's word on the host, from the lb_haproxy `read` results: UP when ready and UP,
    else its admin state (MAINT, DRAIN) or status (DOWN, ...), or why it could not say."""
    states: dict[str, str] = {}
    for result in results:
        lb = str(result.get("item") or "?")
        admin, status = str(result.get("previous") or ""), str(result.get("status") or "")
        if result.get("unreachable"):
            states[lb] = "unreachable"
        elif not admin:
            states[lb] = "unknown (" + " ".join(str(result.get("msg") or "no answer").split())[:120] + ")"
        elif admin != "ready":
            states[lb] = admin.upper()
        else:
            states[lb] = "UP" if status.startswith("UP") or status == "no check" else status or "unknown"
    return states


def one_healthy_version(states: list[HostState], live: bool = True) -> str | None:
    """The release every live host (or, `live=False`, every idle blue/green host) serves when all of them
    serve the same one, settled (healthy, running what current names, in service), else None."""
    chosen = [s for s in states if s.live == live]
    versions = {s.serves for s in chosen}
    return versions.pop() if chosen and len(versions) == 1 and all(s.settled for s in chosen) else None


def print_states(write: Write, states: list[HostState]) -> None:
    """One line per app host: the release it serves, the one before it, its health, and what is half-done."""
    write("hosts now:")
    for state in states:
        health = ("healthy" if state.healthy else f"NOT healthy (health {state.health_status})") if state.service \
            else "no service (files only)"
        serving = state.serves or "unknown (unreachable or never deployed)"
        balancer = "".join(f", {state} in {lb}" for lb, state in sorted(state.lb.items()))
        notes = "".join(f"; {problem}" for problem in state.problems(lb=False))
        if state.processes and not state.process_problems():
            notes += f"; {len(state.processes)} process unit(s) running it"
        idle = " (idle: no traffic)" if not state.live else ""
        previous = state.previous or '-'
        write(f"    {state.name:<12} {serving:<16} previous {previous:<16} {health}{balancer}{notes}{idle}")
