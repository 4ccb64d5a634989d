"""Preflight gates: everything that must hold before a deploy takes the lock and changes anything.

The runner lists every problem at once and refuses with exit 2: the target's own rules (read-only,
change-freeze windows, promotion from the target it comes after, gate files that must say PASS), then
what preflight.yml finds (required env vars, the artifact's sha256, hosts that do not answer or lack
disk space).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rollwright.errors import BadInput
from rollwright.render.playbooks import BEFORE_DEPLOY_HOOK, POLICY_TASK, PREFLIGHT_PLAY
from rollwright.run.engine import Event, run_playbook
from rollwright.run.records import History
from rollwright.spec.loader import LoadedSpec
from rollwright.spec.model import Target


@dataclass(frozen=True)
class Overrides:
    """What the operator takes responsibility for, with a reason that goes into the record."""

    override_freeze: bool = False
    force: bool = False  # deploy an artifact the earlier target never verified
    reason: str = ""


def refuse_read_only(name: str, target: Target, what: str) -> None:
    """A read-only target takes no change: only plan, --check, drift, status and history run there."""
    if target.read_only:
        raise BadInput(f"{what} refused: target {name} is read-only (plan, --check, drift, status and history only)")


def target_gates(loaded: LoadedSpec, name: str, target: Target, sha256: str, overrides: Overrides,
                 history: History, now: datetime | None = None) -> list[str]:
    """The target's rules, checked on the control node."""
    if (overrides.override_freeze or overrides.force) and not overrides.reason.strip():
        raise BadInput("--override-freeze and --force need --reason TEXT (it goes into the deploy record)")
    problems = []
    if target.read_only:
        problems.append(f"target {name} is read-only: plan, --check, drift, status and history only")
    moment = now or datetime.now(UTC)
    for window in target.freeze:
        start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (window.start, window.end))
        if start <= moment < end and not overrides.override_freeze:
            why = f" ({window.reason})" if window.reason else ""
            problems.append(f"change freeze on {name} from {start.isoformat()} to {end.isoformat()}{why}; "
                            "--override-freeze --reason TEXT to deploy anyway")
    if target.after and sha256 and not overrides.force and history.verified_deploy(target.after, sha256) is None:
        problems.append(f"artifact sha256 {sha256[:12]}… has no successful, verified deploy on {target.after} "
                        f"(`rollwright history -t {target.after}`); deploy it there first, or --force --reason TEXT")
    for gate in target.gates:
        problems += _gate_file(loaded.base_dir / gate)
    return problems


def _gate_file(path: Path) -> list[str]:
    """A gate file is JSON or `key: value` text with a status of PASS (case-insensitive)."""
    if not path.is_file():
        return [f"gate file {path} does not exist"]
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
        status = str(data.get("status", "")) if isinstance(data, dict) else ""
    except ValueError:
        found = [line.split(":", 1)[1] for line in text.splitlines() if line.strip().lower().startswith("status:")]
        status = found[0] if found else ""
    if status.strip().upper() != "PASS":
        return [f"gate {path.name} says status {status.strip() or '(none)'!r}, not PASS"]
    return []


def host_problems(project: Path, runs: Path) -> list[str]:
    """preflight.yml on the control node and every host at once, every check to its end: each failure and
    unreachable host. For a deploy the target's gates already refuse, so that one refusal names everything."""
    refusals = Refusals()
    run = run_playbook(project, "preflight.yml", runs, refusals)
    if not run.ok and not refusals.problems:
        refusals.problems.append("preflight.yml failed: " + " ".join(run.error_tail(4)))
    return refusals.problems


class Refusals:
    """The failures of site.yml's checks that come before any change (its preflight plays, the strategy policy
    on pending migrations), read from the run's events: the runner refuses with them, listed, exit 2."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def __call__(self, event: Event) -> None:
        data = event.get("event_data") or {}
        kind = event.get("event")
        if kind not in ("runner_on_failed", "runner_on_unreachable") or data.get("ignore_errors"):
            return
        task = str(data.get("task") or "")
        if task.startswith(BEFORE_DEPLOY_HOOK) or not (
                str(data.get("play") or "").startswith(PREFLIGHT_PLAY) or task == POLICY_TASK):
            return
        host, message = str(data.get("host") or "?"), str((data.get("res") or {}).get("msg") or "failed")
        if kind == "runner_on_unreachable":
            self.problems.append(f"{host} does not answer: {message}")
            return
        detail = message.removeprefix("Preflight failed, nothing was changed: ")
        self.problems += [item if host == "localhost" else f"{host}: {item}" for item in detail.split("; ")]
