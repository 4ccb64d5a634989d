"""Follow a playbook run from its ansible-runner events: print progress, remember what each host went through.

The rollout and rollback plays run in `serial` batches; Ansible starts such a play once per batch, so
each repeated play start is the next batch. Inside them, the include tasks the renderer names in
`PHASES` mark each host's phase (drain, switch, restart, undrain, rollback) when they start on it, and the
rename that moves `current` (the switch, when it reports a new target) tells which hosts now serve another
release.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rollwright.render.playbooks import (
    APP_DECIDE_TASK,
    APP_PLAY,
    CANARY_FAIL_TASK,
    DECIDE_TASK,
    PHASE_TASK,
    PHASES,
    RESCUE_FAIL_TASK,
    ROLLBACK_PLAY,
    ROLLBACK_TASK,
    ROLLOUT_PLAY,
    SWITCH_TASK,
)

Write = Callable[[str], None]
BATCHED_PLAYS = (ROLLOUT_PLAY, ROLLBACK_PLAY, APP_PLAY)
COUNTED_PLAYS = (ROLLOUT_PLAY, APP_PLAY)  # their batch lines say "batch N/total"; a host they decide is settled
# (DECIDE_TASK, APP_DECIDE_TASK) goes through no phase
MESSAGE_LIMIT = 400
TAIL_LINES = 20  # of a failed command's output, kept under its one-line message (the error is rarely the last line)
SECRET_MASK = "<secret>"
HOLD_KEYS = ("passed", "duration_s", "reasons", "release", "baseline", "hosts", "source")  # of slo_hold's verdict, kept
BACKUP_FACT = "backup_postgresql_result"  # set by roles/backup_postgresql when the dump is verified
TOOL_FACT = "migrate_tool_applied"  # set by roles/migrate after a tool's apply command: its tool, stdout, stderr
# What each tool prints per migration it applies (django and flyway on stdout, alembic in its log on stderr).
TOOL_APPLIED = {
    "django": re.compile(r"^\s*Applying (\S+)\.\.\. OK\b"),
    "alembic": re.compile(r"Running upgrade .*?-> (.+?)\s*$"),
    "flyway": re.compile(r'Migrating schema \S+ (?:to version|with repeatable migration) "?(.+?)"?\s*$'),
}
TASK_STARTS = ("playbook_on_task_start", "playbook_on_handler_task_start")
ANSWERS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")  # a host's last word
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")  # postgres://app:PASSWORD@db/... in a DSN someone printed


@dataclass
class HostRecord:
    """What one host went through in a run."""

    name: str
    batch: int = 0
    phase: str = ""
    phase_before: str = ""  # the phase before the one just started (a task skipped on the host gives it back)
    settled: bool = False  # this batch's look found the host already on the release: it goes through no phase
    switched: bool = False  # `current` moved to the release being deployed
    rolled_back: bool = False  # the rescue (or rollback.yml) moved `current` back
    failures: list[str] = field(default_factory=list)
    unreachable: str = ""
    restarted: list[str] = field(default_factory=list)  # the app's other processes restarted here and ready


@dataclass
class _Play:
    name: str
    batch: int
    started: float
    changed: int = 0
    failed: int = 0


@dataclass(frozen=True)
class StepRecord:
    """One play (one batch of a batched play) as the deploy record lists it."""

    name: str
    batch: int
    status: str  # ok, failed, interrupted
    seconds: float
    changed: int


class Progress:
    """An ansible-runner event handler that prints one line per play, batch, host phase and failure."""

    def __init__(self, write: Write, batches: int = 0, secrets: tuple[str, ...] = ()) -> None:
        self.write = write
        self.secrets = sorted((s for s in secrets if s), key=len, reverse=True)  # masked in what a command said
        self._event = getattr(write, "event", None)  # an Output shows events its way (live view, JSON)
        self._on_task = getattr(write, "task", None)  # an Output's live view shows the task under way
        self._task, self._waiting, self._answered = "", list[str](), list[str]()
        self.batches = batches
        self.hosts: dict[str, HostRecord] = {}
        self._play: _Play | None = None
        self._batch = 0
        self.failed_plays: list[str] = []
        self.continued: list[str] = []  # commands that failed under --continue-on-failure
        self.changed = 0  # changed results seen, counted from events (an interrupted run has no final stats)
        self.steps: list[StepRecord] = []
        self.migrations: dict[str, Any] = {}  # the deploy's sql_migrations result: applied, destructive, failed
        self.backup: dict[str, Any] = {}  # what the backup role reported: file, size, seconds, verify
        self.canary: list[dict[str, Any]] = []  # each canary step's verdict and its numbers
        self.hold: dict[str, Any] = {}  # the SLO hold's verdict after the rollout, with its numbers
        self.colours: dict[str, str] = {}  # blue/green: the live and the idle colour when the run started
        self.colour_switched = False  # blue/green: the traffic moved to the other colour in this run

    def _say(self, kind: str, text: str, **fields: Any) -> None:
        if self._event is not None:
            self._event(kind, text, **fields)
        else:
            self.write(text)

    def host(self, name: str) -> HostRecord:
        return self.hosts.setdefault(name, HostRecord(name))

    @property
    def switched(self) -> list[str]:
        """Hosts left on the new release by this run: switched and not rolled back by their rescue."""
        return sorted(h.name for h in self.hosts.values() if h.switched and not h.rolled_back)

    @property
    def left_out(self) -> list[str]:
        """Hosts a stopped rollout may have left out of the load balancer: their last phase was not
        `undrain`, and they are not switched (rolling those back puts them back in anyway)."""
        switched = set(self.switched)
        return sorted(h.name for h in self.hosts.values()
                      if h.phase and h.phase != "undrain" and h.name not in switched)

    @property
    def failed(self) -> list[HostRecord]:
        return [h for h in self.hosts.values() if h.failures or h.unreachable]

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if self._on_task is not None:
            self._follow_task(kind, data)
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if kind in ("runner_on_ok", "runner_item_on_ok") and res.get("rc") not in (None, 0):
            failure = f"{data.get('host')}: {data.get('task')}: exit {res.get('rc')}"
            self.continued.append(failure)
            self._say("failure", f"    ! {failure}: {_message(self._masked(res))} (continuing)", host=data.get("host"),
                      task=data.get("task"), continued=True)
        if kind == "playbook_on_play_start":
            self._start_play(str(data.get("play", "")))
        elif kind == "runner_on_start":
            self._started(data)
        elif kind == "runner_on_skipped":
            self._skipped(data)
        elif kind == "runner_on_ok":
            self._ok(data)
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self._failed(data, "failed")
        elif kind == "runner_on_unreachable":
            balancer = _unreachable_balancer(data)
            record = self.host(balancer or str(data.get("host")))
            record.unreachable = _message(data.get("res"))
            self._failed(data, "unreachable", balancer)
        elif kind == "playbook_on_stats":
            self._end_play()

    def _follow_task(self, kind: str, data: dict[str, Any]) -> None:
        """The task under way, the hosts it started on and those that answered (ok, failed, skipped or
        unreachable), for the live view: who keeps a task waiting is what an operator wants to see."""
        task, host = str(data.get("task", "")), str(data.get("host", ""))
        if kind in TASK_STARTS:
            self._task, self._waiting, self._answered = task, [], []
        elif task != self._task:
            return
        elif kind == "runner_on_start" and host not in self._waiting:
            self._waiting.append(host)
        elif kind in ANSWERS and host in self._waiting:
            self._waiting.remove(host)
            self._answered.append(host)
        else:
            return
        self._on_task(task, self._waiting, self._answered)

    def _start_play(self, name: str) -> None:
        batched = name.startswith(BATCHED_PLAYS)
        same = self._play is not None and self._play.name == name
        self._end_play()
        self._batch = self._batch + 1 if (batched and same) else (1 if batched else 0)
        self._play = _Play(name, self._batch, time.perf_counter())
        if batched:
            total = f"/{self.batches}" if self.batches and name.startswith(COUNTED_PLAYS) else ""
            self._say("play", f"▸ {name.split(' [')[0]}, batch {self._batch}{total}", play=name.split(" [")[0],
                      batch=self._batch, batches=self.batches or None)
        else:
            self._say("play", f"▸ {name}", play=name)

    def close(self) -> None:
        """End the play a canceled run left open (it gets no stats event)."""
        self._end_play("interrupted")

    def _end_play(self, status: str = "") -> None:
        play, self._play = self._play, None
        if play is None:
            return
        took = time.perf_counter() - play.started
        status = status or ("failed" if play.failed else "ok")
        changed = f", {play.changed} changed" if play.changed else ""
        self._say("play_end", f"  {status} in {took:.1f}s{changed}", play=play.name.split(" [")[0], batch=play.batch,
                  status=status, seconds=round(took, 1), changed=play.changed)
        self.steps.append(StepRecord(play.name.split(" [")[0], play.batch, status, round(took, 1), play.changed))

    def _remember(self, data: dict[str, Any], res: dict[str, Any]) -> None:
        """Keep what the record needs from the database steps (ok or failed)."""
        args = (res.get("invocation") or {}).get("module_args") or {}
        if data.get("task_action") == "sql_migrations" and args.get("action") == "apply":
            self.migrations = {key: res.get(key) for key in ("applied", "destructive", "failed") if res.get(key)}
        if data.get("task_action") == "canary_guard" and "passed" in res and not res.get("skipped"):
            self._judged(res)
        if data.get("task_action") == "slo_hold" and "passed" in res and not res.get("skipped"):
            self.hold = {key: res.get(key) for key in HOLD_KEYS}
            self._say("hold", hold_line(self.hold), **self.hold)
        if data.get("task_action") == "haproxy_switch" and res.get("switched"):
            self.colour_switched = True
        if data.get("task_action") == "process_ready":
            record = self.host(str(data.get("host")))
            record.restarted += [str((item.get("item") or {}).get("name")) for item in res.get("results") or []
                                 if isinstance(item, dict) and item.get("ready") and item.get("changed")]
        facts = res.get("ansible_facts") or {}
        for colour in ("live", "idle"):
            if f"rollwright_{colour}_colour" in facts:
                self.colours[colour] = str(facts[f"rollwright_{colour}_colour"])
        if isinstance(facts.get(BACKUP_FACT), dict):
            self.backup = dict(facts[BACKUP_FACT])
        if isinstance(facts.get(TOOL_FACT), dict):
            said = facts[TOOL_FACT]
            output = [self._mask(line) for stream in ("stdout", "stderr")
                      for line in str(said.get(stream) or "").splitlines() if line.strip()]
            self.migrations = tool_migrations(str(said.get("tool")), output)

    def _judged(self, res: dict[str, Any]) -> None:
        """A canary step's verdict: said at once, kept for the record."""
        verdict = {"step": self._play.batch if self._play else len(self.canary) + 1, "passed": bool(res["passed"]),
                   "window_s": res.get("window_s"), "reasons": list(res.get("reasons") or []),
                   "source": res.get("source") or "haproxy",
                   "canary": {"servers": res.get("canary_servers") or [], **(res.get("canary") or {}),
                              **({"version": res["canary_version"]} if res.get("canary_version") else {})},
                   "baseline": {"servers": res.get("baseline_servers") or [], **(res.get("baseline") or {}),
                                **({"version": res["baseline_version"]} if res.get("baseline_version") else {})}}
        self.canary.append(verdict)
        self._say("canary", canary_line(verdict), **verdict)

    def _started(self, data: dict[str, Any]) -> None:
        """A phase task queued for a host: the phase starts (Ansible queues a task before it evaluates its
        `when`, so a host this batch found settled goes through none, and a skipped one gives it back)."""
        host, task, play = str(data.get("host")), str(data.get("task", "")), self._play
        if play is None or not play.batch or task not in PHASES:
            return
        record = self.host(host)
        if record.settled and play.name.startswith(COUNTED_PLAYS):
            return
        record.batch, record.phase_before, record.phase = play.batch, record.phase, PHASES[task]
        self._say("phase", f"    {host:<12} {record.phase}", host=host, batch=play.batch, phase=record.phase)

    def _skipped(self, data: dict[str, Any]) -> None:
        record, task = self.host(str(data.get("host"))), str(data.get("task", ""))
        if self._play is not None and self._play.batch and record.phase == PHASES.get(task):
            record.phase = record.phase_before

    def _ok(self, data: dict[str, Any]) -> None:
        host, task, res = str(data.get("host")), str(data.get("task", "")), data.get("res") or {}
        self._remember(data, res)
        play = self._play
        if task in (DECIDE_TASK, APP_DECIDE_TASK):
            self.host(host).settled = not _truthy((res.get("ansible_facts") or {}).get("rollwright_host_stale"))
        if res.get("changed"):
            self.changed += 1
            if play is not None:
                play.changed += 1
        moved = res.get("switched_from") != res.get("current")
        if task in (SWITCH_TASK, PHASE_TASK["switch"], ROLLBACK_TASK) and moved and play is not None and play.batch:
            record = self.host(host)
            if record.phase == "switch" and play.name.startswith(ROLLOUT_PLAY):
                record.switched = True
            elif record.phase == "rollback":
                record.rolled_back = True

    def _failed(self, data: dict[str, Any], how: str, balancer: str = "") -> None:
        """A failed task; `balancer`: the load balancer host a delegated task could not reach, which is what
        failed (the app host it worked for is named in the message, not blamed)."""
        host, task = str(data.get("host")), str(data.get("task", ""))
        if isinstance(data.get("res"), dict):
            self._remember(data, data["res"])
        if self._play is not None:
            self._play.failed += 1
            self.failed_plays.append(self._play.name)
        if task == RESCUE_FAIL_TASK:
            return  # the rescue re-raising the failure already shown
        record = self.host(host)
        res = self._masked(data.get("res"))
        message, tail = _message(res), output_tail(res)
        batched = self._play is not None and self._play.batch and task != CANARY_FAIL_TASK
        where = f"{record.phase}: " if batched and record.phase else ""
        if balancer:
            where, how = f"{host}'s {record.phase or task}: ", "unreachable (the load balancer)"
            record, host = self.host(balancer), balancer
        told = f"{how} at {where}{task}: {message}" if balancer else f"{where}{task}: {message}"
        record.failures.append("\n".join([told, *tail]))
        self._say("failure", "\n".join([f"    {host:<12} ✗ {how} at {where}{task}: {message}",
                                        *(f"{'':<17}| {line}" for line in tail)]),
                  host=host, how=how, phase=record.phase, task=task, message=message, output=tail)

    def _mask(self, text: str) -> str:
        """A command may print the target's secrets (its env holds them): never pass them on."""
        for secret in self.secrets:
            text = text.replace(secret, SECRET_MASK)
        return URL_PASSWORD.sub(rf"\1{SECRET_MASK}@", text)

    def _masked(self, value: Any) -> Any:
        """A task result with every text in it masked (before any of it is cut short)."""
        if isinstance(value, str):
            return self._mask(value)
        if isinstance(value, dict):
            return {key: self._masked(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._masked(item) for item in value]
        return value


def tool_migrations(tool: str, output: list[str]) -> dict[str, Any]:
    """What a migration tool's apply command reports it applied, as the record keeps it, with the last lines
    it printed (a `command` tool's output is all there is to say what it did)."""
    pattern = TOOL_APPLIED.get(tool)
    found = {"tool": tool, "output": output[-TAIL_LINES:]}
    if pattern is None:
        return found
    applied = [match.group(1) for line in output if (match := pattern.search(line))]
    return {**found, "applied": [{"script": script} for script in applied]}


def canary_line(verdict: dict[str, Any]) -> str:
    """`canary step 1 (app1): errors 0.00% (0/212) vs baseline 0.00% (0/430); 2.0 ms vs 1.0 ms in 20 s: passed`
    (errors: 5xx responses and requests HAProxy retried on another server); from Prometheus each side's version,
    its p95 and no average: `canary step 1 (app1, 2.0.0): errors 40.00% vs baseline (1.0.0) 0.50%; p95 ...`."""
    canary, baseline = verdict["canary"], verdict["baseline"]
    compared = bool(baseline["servers"])
    against = (f" vs baseline{_version(baseline, ' ({})')} {_side(baseline)}" if compared else " (no baseline left)")
    step = f"canary step {verdict['step']} ({', '.join(canary['servers'])}{_version(canary, ', {}')})"
    times = f"{_times(canary, baseline, compared)} in {verdict['window_s']} s{_source(verdict)}"
    return f"    {step}: errors {_side(canary)}{against}{times}: {_outcome(verdict)}"


def hold_line(verdict: dict[str, Any]) -> str:
    """`hold 8 s (app1, app2): errors 19.80% (42/212) vs baseline 0.10% (1/960, before the deploy); 2.0 ms vs
    1.0 ms: FAILED: ...` (errors: 5xx responses and requests HAProxy retried on another server); from Prometheus
    each side's version and p95, as in canary_line."""
    release, baseline = verdict.get("release") or {}, verdict.get("baseline") or {}
    side = _side(baseline, f"{baseline.get('source', '?')}")
    against = f"baseline{_version(baseline, ' ({})')} {side}"
    held = f"hold {verdict.get('duration_s')} s ({', '.join(release.get('servers') or [])}{_version(release, ', {}')})"
    times = _times(release, baseline, True)
    return f"    {held}: errors {_side(release)} vs {against}{times}{_source(verdict)}: {_outcome(verdict)}"


def _side(numbers: dict[str, Any], note: str = "") -> str:
    """`0.10% (1/960)`, with a note inside the brackets; a source that counts no requests: the rate alone."""
    rate, requests = f"{numbers.get('error_rate', 0):.2%}", numbers.get("requests", 0)
    counted = [] if requests is None else [f"{numbers.get('errors', 0)}/{requests}"]
    inside = ", ".join(counted + ([note] if note else []))
    return f"{rate} ({inside})" if inside else rate


def _version(numbers: dict[str, Any], form: str) -> str:
    return form.format(numbers["version"]) if numbers.get("version") else ""


def _times(judged: dict[str, Any], baseline: dict[str, Any], compared: bool) -> str:
    """`; 2.0 ms vs 1.0 ms` and `; p95 250.0 ms vs 20.0 ms`, for what the source measures (None: it does not)."""
    times = ""
    for key, label in (("avg_ms", ""), ("p95_ms", "p95 ")):
        ms = judged.get(key, 0 if key == "avg_ms" else None)
        if ms is not None:
            times += f"; {label}{ms} ms" + (f" vs {baseline.get(key)} ms" if compared else "")
    return times


def _source(verdict: dict[str, Any]) -> str:
    return " from Prometheus" if verdict.get("source") == "prometheus" else ""


def _outcome(verdict: dict[str, Any]) -> str:
    return "passed" if verdict.get("passed") else "FAILED: " + "; ".join(verdict.get("reasons") or [])


def output_tail(res: Any) -> list[str]:
    """A failed command's last TAIL_LINES lines of output (stdout, then stderr, where the error usually is);
    nothing when its one-line message already says it all."""
    if isinstance(res, dict) and res.get("rc") is None and isinstance(res.get("results"), list):
        return next((tail for item in _failed_items(res) if (tail := output_tail(item))), [])  # a loop's first
    if not isinstance(res, dict) or res.get("rc") in (None, 0):
        return []
    said = [line.rstrip()[:MESSAGE_LIMIT] for stream in ("stdout", "stderr")
            for line in str(res.get(stream) or "").splitlines() if line.strip()]
    return said[-TAIL_LINES:] if len(said) > 1 else []


def _unreachable_balancer(data: dict[str, Any]) -> str:
    """The load balancer host a drain, undrain or lb_haproxy task (delegated to each load balancer in a loop)
    could not reach."""
    res = data.get("res") if isinstance(data.get("res"), dict) else {}
    if data.get("role") != "lb_haproxy" and data.get("task") not in (PHASE_TASK["drain"], PHASE_TASK["undrain"]):
        return ""
    items = [r for r in res.get("results") or [] if isinstance(r, dict) and r.get("unreachable")]
    return ", ".join(str(r.get("item")) for r in items if r.get("item"))


def _truthy(value: Any) -> bool:
    """A fact set from a template: a bool, or its text ("True", "false")."""
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "yes", "1")


LOOP_SUMMARIES = ("All items completed", "One or more items failed")  # a loop's own message, which says nothing


def _failed_items(res: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in res["results"] if isinstance(r, dict) and (r.get("failed") or r.get("unreachable"))]


def _message(res: Any) -> str:
    """The one line that says why a task failed (a module's msg; for a command, its last output line)."""
    if not isinstance(res, dict):
        return str(res)[:MESSAGE_LIMIT]
    text = res.get("msg") or res.get("stderr") or res.get("reason") or ""
    if text == "non-zero return code" and (res.get("stderr") or res.get("stdout")):  # say what the command said
        said = str(res.get("stderr") or res.get("stdout")).strip().splitlines()[-1]
        text = f"exit {res.get('rc')}: {said}"
    if text in ("", *LOOP_SUMMARIES) and isinstance(res.get("results"), list):  # say what each failed item said
        text = "; ".join(_message(r) for r in _failed_items(res))
    text = " ".join(str(text).split())
    return (text[: MESSAGE_LIMIT - 1] + "…") if len(text) > MESSAGE_LIMIT else (text or "failed")
