"""Deploy records and the history they feed.

Every deploy and rollback leaves a folder `records/<id>/` in its target's workspace: `record.json`
(for machines), `record.md` (the deployment log people read), and the checklist and rollback plan
written for it. A SQLite store beside the spec (`.rollwright/history.sqlite`) indexes them, for
`rollwright history` and `show`, and for the promotion gate (a verified deploy on the earlier target).
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollwright.run.progress import canary_line, hold_line

HISTORY_FILE = "history.sqlite"
SCHEMA = """CREATE TABLE IF NOT EXISTS deploys (
    id TEXT PRIMARY KEY, app TEXT NOT NULL, target TEXT NOT NULL, action TEXT NOT NULL, version TEXT NOT NULL,
    sha256 TEXT NOT NULL, status TEXT NOT NULL, verified INTEGER NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL, seconds REAL NOT NULL, user TEXT NOT NULL, record TEXT NOT NULL)"""
COLUMNS = ("id", "app", "target", "action", "version", "sha256", "status", "verified", "started_at",
           "finished_at", "seconds", "user", "record")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(started_at: str) -> str:
    """Sortable and unique: the start time and 4 random hex digits (two bastions may start together)."""
    return started_at.replace("-", "").replace(":", "") + "-" + secrets.token_hex(2)


def operator() -> str:
    """Who runs this: the sudo caller when there is one, and where from."""
    return f"{os.environ.get('SUDO_USER') or getpass.getuser()}@{socket.gethostname()}"


@dataclass
class Record:
    """One deploy or rollback, as it ended."""

    app: str
    target: str
    action: str  # deploy, rollback
    version: str
    sha256: str
    strategy: str  # how the release rolled out; "" when the deploy has no release (command groups only)
    started_at: str
    id: str = ""
    user: str = field(default_factory=operator)
    finished_at: str = ""
    seconds: float = 0.0  # start to finish: what `history`, `show` and the end of a deploy say
    status: str = "running"  # succeeded, failed, unsafe (split or unhealthy fleet), interrupted
    exit_code: int = 0
    verified: bool = False  # `verify` ran and passed, and every app host served this version healthy
    steps: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    rolled_back_by_gate: list[str] = field(default_factory=list)
    rolled_back_by_runner: list[str] = field(default_factory=list)
    backup: dict[str, Any] = field(default_factory=dict)
    migrations: dict[str, Any] = field(default_factory=dict)
    canary: list[dict[str, Any]] = field(default_factory=list)  # each step's SLO verdict with its numbers
    hold: dict[str, Any] = field(default_factory=dict)  # the SLO hold's verdict: release and baseline numbers
    cannot_roll_back: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)  # gates the operator overrode, with the reason
    hosts: list[dict[str, Any]] = field(default_factory=list)
    processes_restarted: dict[str, list[str]] = field(default_factory=dict)  # host -> the app's other processes
    verification: dict[str, Any] = field(default_factory=dict)  # the testinfra suite's result (run/verify.py)
    summary: str = ""
    # what was shipped and where it came from: the artifact's sha256 and source, its verified signer, the spec's
    # and the generated project's digests, rollwright's version (run/provenance.py)
    provenance: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)  # ansible-runner artifact folders of its runs

    def __post_init__(self) -> None:
        self.id = self.id or new_id(self.started_at)
        self._clock = time.monotonic()

    def finish(self, code: int) -> None:
        """The end: its exit code, the time, and the one duration (from this record's start) every view shows."""
        self.finished_at, self.exit_code = now(), code
        self.seconds = round(time.monotonic() - self._clock, 1)


def write_record(records_dir: Path, record: Record, documents: dict[str, str], history: History) -> Path:
    """Write the record's folder and index it; returns the folder."""
    folder = records_dir / record.id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "record.json").write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    (folder / "record.md").write_text(markdown(record), encoding="utf-8")
    for name, text in documents.items():
        (folder / name).write_text(text, encoding="utf-8")
    history.add(record, folder / "record.json")
    return folder


def _verified(record: Record) -> str:
    if record.verified:
        return "yes: every app host serves it healthy; verify passed"
    return "no" if record.verification else "no: verify did not run"


def markdown(record: Record) -> str:
    """The deployment log."""
    what = f"{record.app} {record.version}".rstrip()
    title = f"{record.action.capitalize()} {what} to {record.target}: {record.status}"
    lines = [f"# {title}", "", "| | |", "|---|---|",
             f"| id | `{record.id}` |", f"| target | {record.target} |",
             *([f"| artifact | {record.version}, sha256 `{record.sha256 or '-'}` |"] if record.version else []),
             *([f"| strategy | {record.strategy} |"] if record.strategy else []), f"| by | {record.user} |",
             f"| started | {record.started_at} |", f"| finished | {record.finished_at} ({record.seconds:.1f} s) |",
             f"| status | **{record.status}** (exit {record.exit_code}) |",
             f"| verified | {_verified(record)} |",
             "", "## Steps", "", "| step | batch | status | seconds | changed |", "|---|---|---|---|---|"]
    lines += [f"| {s['name']} | {s['batch'] or ''} | {s['status']} | {s['seconds']} | {s['changed']} |"
              for s in record.steps]
    if record.backup:
        b = record.backup
        lines += ["", "## Backup", "", f"`{b.get('file')}`: {b.get('size')} bytes in {b.get('seconds')}, "
                  f"verified by {b.get('verify')}"]
    if record.migrations:
        applied = record.migrations.get("applied") or []
        lines += ["", "## Migrations", ""]
        lines += [f"- applied {m.get('script')}" + (f" ({m['execution_time_ms']} ms)" if "execution_time_ms" in m
                                                    else "") for m in applied]
        tool, output = record.migrations.get("tool"), record.migrations.get("output") or []
        if tool and "applied" not in record.migrations:  # a command tool: what it printed is what is known
            lines += [f"- ran the {tool} migrations; its last lines:", "", "  ```", *(f"  {o}" for o in output),
                      "  ```"] if output else [f"- ran the {tool} migrations (no output)"]
        elif not applied:
            lines.append("- none")
        failed = record.migrations.get("failed")
        if failed:
            lines.append(f"- FAILED {failed.get('script')}, rolled back: {' '.join(str(failed.get('error')).split())}")
    if record.canary:
        lines += ["", "## Canary analysis", ""] + [f"- {canary_line(verdict).strip()}" for verdict in record.canary]
    if record.hold:
        lines += ["", "## SLO hold", "", f"- {hold_line(record.hold).strip()}"]
    if record.overrides:
        lines += ["", "## Overrides", ""] + [f"- {item}" for item in record.overrides]
    if record.cannot_roll_back:
        lines += ["", "## Cannot be rolled back", ""] + [f"- {item}" for item in record.cannot_roll_back]
    if record.failures or record.rolled_back_by_gate or record.rolled_back_by_runner:
        lines += ["", "## Failures and rollback", ""]
        for failure in record.failures:
            said, *tail = failure.splitlines()
            lines.append(f"- {said}")
            lines += ["", "  ```", *(f"  {line}" for line in tail), "  ```"] if tail else []
        if record.rolled_back_by_gate:
            lines.append(f"- rolled back by their health gate: {', '.join(record.rolled_back_by_gate)}")
        if record.rolled_back_by_runner:
            lines.append(f"- rolled back by the runner: {', '.join(record.rolled_back_by_runner)}")
    if record.processes_restarted:
        lines += ["", "## Processes restarted", ""]
        lines += [f"- {host}: {', '.join(names)}" for host, names in sorted(record.processes_restarted.items())]
    if record.hosts:
        lines += ["", "## Hosts afterwards", "", "| host | serves | previous | health |", "|---|---|---|---|"]
        lines += [f"| {h['name']} | {h['current'] or '-'} | {h['previous'] or '-'} | "
                  f"{'healthy' if h['healthy'] else 'NOT healthy'} |" for h in record.hosts]
    if record.verification:
        found = record.verification
        lines += ["", "## Verification", "", f"{found.get('passed', 0)} checks passed, "
                  f"{len(found.get('failures') or [])} failed ({found.get('seconds', 0)} s)"]
        lines += [f"- {f['host']}: {f['check']}: {f['message']}" for f in found.get("failures") or []]
        if found.get("error"):
            lines.append(f"- could not run: {found['error']}")
    if record.provenance:
        lines += ["", "## Provenance", "", *provenance_lines(record.provenance)]
    lines += ["", "## Result", "", record.summary or record.status]
    return "\n".join(lines) + "\n"


def provenance_lines(found: dict[str, Any]) -> list[str]:
    """The record's provenance as a list: what was shipped, who signed it, what made the project."""
    signed = found.get("signature")
    signer = (f"{signed['method']}: {signed['signer']} ({signed['fingerprint']}), `{signed['file']}`" if signed
              else "none (the artifact was not signed)")
    return [f"- artifact sha256: `{found.get('artifact_sha256') or '-'}`",
            f"- source: `{found.get('source') or '-'}`", f"- signed by: {signer}",
            f"- spec: `{found.get('spec') or '-'}`, sha256 `{found.get('spec_sha256') or '-'}`",
            f"- generated project sha256: `{found.get('project_sha256') or '-'}`",
            f"- rollwright {found.get('rollwright_version') or '-'}"]


class History:
    """The SQLite index of every record written beside one spec."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / HISTORY_FILE

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute(SCHEMA)
        return db

    def add(self, record: Record, record_file: Path) -> None:
        values = {**asdict(record), "verified": int(record.verified), "record": str(record_file)}
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO deploys ({', '.join(COLUMNS)}) VALUES "
                       f"({', '.join('?' for _ in COLUMNS)})", [values[c] for c in COLUMNS])

    def list(self, target: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first."""
        where, args = ("WHERE target = ?", [target]) if target else ("", [])
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM deploys {where} ORDER BY started_at DESC, id DESC LIMIT ?",
                              [*args, limit]).fetchall()
        return [dict(row) for row in rows]

    def get(self, deploy_id: str) -> dict[str, Any] | None:
        """A record by its id or a unique prefix of it, read back from its JSON."""
        with self._connect() as db:
            rows = db.execute("SELECT record FROM deploys WHERE id LIKE ? ORDER BY id", [deploy_id + "%"]).fetchall()
        if len(rows) != 1:
            return None
        return dict(json.loads(Path(rows[0]["record"]).read_text(encoding="utf-8")))

    def applied_since(self, target: str, version: str) -> list[str] | None:
        """The migrations the deploys to `target` applied after its newest successful deploy of `version`: a
        rollback to `version` leaves them in the database. None when no deploy of `version` is recorded here."""
        with self._connect() as db:
            base = db.execute("SELECT id, started_at FROM deploys WHERE target = ? AND version = ? AND action = "
                              "'deploy' AND status = 'succeeded' ORDER BY started_at DESC, id DESC LIMIT 1",
                              [target, version]).fetchone()
            if base is None:
                return None
            rows = db.execute("SELECT record FROM deploys WHERE target = ? AND action = 'deploy' AND (started_at > ? "
                              "OR (started_at = ? AND id > ?)) ORDER BY started_at, id",
                              [target, base["started_at"], base["started_at"], base["id"]]).fetchall()
        names: list[str] = []
        for row in rows:
            try:
                record = json.loads(Path(row["record"]).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a record folder someone removed: its migrations are not known
            names += [str(m["script"]) for m in (record.get("migrations") or {}).get("applied") or []
                      if m.get("script")]
        return names

    def verified_deploy(self, target: str, sha256: str) -> dict[str, Any] | None:
        """The newest successful, verified deploy of this artifact to `target` (the promotion gate)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM deploys WHERE target = ? AND sha256 = ? AND action = 'deploy' AND "
                             "status = 'succeeded' AND verified = 1 ORDER BY started_at DESC LIMIT 1",
                             [target, sha256]).fetchone()
        return dict(row) if row else None
