"""`rollwright audit`: the audit log of every host of a target, merged by time, newest last.

Each host keeps its own log (/var/log/rollwright/audit.log): one line per deploy, rollback, app action or
exec that concerned it, `<UTC ISO time> <id> <action> <app> <version> <status> by <user>`; an exec line goes
on with `command=<name> exit=<N>` and maybe ` read-only-safe`. audit.yml reads the newest N lines of each in
one run (`tail`: a long log is never read whole); the merge is here, since only the control node sees every
host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rollwright.errors import BadInput
from rollwright.render.playbooks import AUDIT_TAIL_TASK
from rollwright.run.engine import Event, run_playbook
from rollwright.run.status import Workspace

MAX_LINES = 100_000
FIELDS = re.compile(r"^(?P<time>\S+) (?P<id>\S+) (?P<action>\S+) (?P<app>\S+) (?P<version>\S+) (?P<status>\S+)"
                    r"(?: (?P<detail>.*?))? by (?P<user>\S+)(?: (?P<more>.*))?$")


@dataclass(frozen=True)
class AuditLine:
    """One line of one host's log, with the time it starts with."""

    host: str
    when: datetime
    place: int  # its place in the host's log: lines of one host with equal times keep their order
    text: str

    def fields(self) -> dict[str, str | bool]:
        """The line's parts (time, id, action, app, version, status, user; `detail`, text between the status and
        `by`); after the user, each `key=value` as a field of its own and each other word as a flag (true),
        never over the parts above; only the time for a line of another shape."""
        found = FIELDS.match(self.text)
        if not found:
            return {"time": self.text.split(" ", 1)[0]}
        parts: dict[str, str | bool] = {key: value for key, value in found.groupdict().items()
                                        if value is not None and key != "more"}
        for word in (found["more"] or "").split():
            key, equals, value = word.partition("=")
            parts.setdefault(key, value if equals else True)
        return parts

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, **self.fields(), "line": self.text}


@dataclass
class AuditRead:
    """What audit.yml found: the merged lines, and per host what could not be read."""

    lines: list[AuditLine] = field(default_factory=list)
    unreadable: dict[str, int] = field(default_factory=dict)  # host -> lines without a time at their start
    failed: dict[str, str] = field(default_factory=dict)  # host -> why it gave no lines (unreachable, an error)


def parse_time(token: str) -> datetime | None:
    """The UTC ISO time a line starts with (`2026-12-04T10:00:00Z`); a time without a zone is taken as UTC."""
    try:
        when = datetime.fromisoformat(token)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def host_lines(host: str, text: str) -> tuple[list[AuditLine], int]:
    """A host's log lines that start with a time, and how many do not (empty lines are not counted)."""
    found, bad = [], 0
    for place, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        when = parse_time(line.split(" ", 1)[0])
        if when is None:
            bad += 1
        else:
            found.append(AuditLine(host, when, place, line))
    return found, bad


def merge(logs: dict[str, str], newest: int) -> tuple[list[AuditLine], dict[str, int]]:
    """Every host's lines in time order (equal times: by host, then each host's own order), the newest
    `newest` of them, oldest first; with each host's count of lines that start with no time."""
    lines: list[AuditLine] = []
    unreadable: dict[str, int] = {}
    for host, text in logs.items():
        found, bad = host_lines(host, text)
        lines += found
        if bad:
            unreadable[host] = bad
    lines.sort(key=lambda line: (line.when, line.host, line.place))
    return lines[-newest:] if newest else [], unreadable


def check_count(newest: int) -> None:
    if not 1 <= newest <= MAX_LINES:
        raise BadInput(f"-n must be from 1 to {MAX_LINES} lines, got {newest}")


def read_audit(workspace: Workspace, newest: int, limit: str | None = None) -> AuditRead:
    """One audit.yml run over every host of the target (or `limit`): the newest `newest` lines of all logs."""
    check_count(newest)
    logs: dict[str, str] = {}
    failed: dict[str, str] = {}

    def on_event(event: Event) -> None:
        data = event.get("event_data") or {}
        host, res = str(data.get("host", "")), data.get("res") if isinstance(data.get("res"), dict) else {}
        kind = event.get("event")
        if kind == "runner_on_ok" and data.get("task") == AUDIT_TAIL_TASK:
            logs[host] = str(res.get("stdout") or "")
        elif kind == "runner_on_unreachable":
            failed[host] = "unreachable: " + " ".join(str(res.get("msg") or "no answer").split())
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            failed[host] = f"{data.get('task')}: " + " ".join(str(res.get("msg") or "failed").split())

    run = run_playbook(workspace.project, "audit.yml", workspace.runs, on_event, limit=limit,
                       extravars={"rollwright_audit_lines": newest})
    if not run.ok and not failed:
        failed["?"] = " ".join(run.error_tail(3)) or f"audit.yml {run.status}"
    lines, unreadable = merge(logs, newest)
    return AuditRead(lines, unreadable, failed)
