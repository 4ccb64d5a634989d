"""The deploy lock: one deploy or rollback per target at a time, held on the target's first host.

lock.yml runs the deploy_lock role there; the folder it makes with mkdir holds who took it (user,
control host, pid), for which deploy and version, and why. A deploy or rollback takes it in the first
play of its own run instead (`deferred`: one ansible-runner run fewer); only when that play finds it
held, or cannot ask, does lock.yml take over (waiting, breaking a dead holder's lock, or naming it).

Only the runner can tell that a holder on this same control node is gone (its pid no longer exists),
so it is the runner that asks the module to break such a lock (atomically: of two deploys breaking it
at once, one takes it and the other is refused naming it); a holder elsewhere is only broken by
`rollwright lock release --force`.

A maintenance hold (`rollwright lock acquire -m WHY`) has no process behind it: its holder says `hold`, and
nothing breaks it as stale; only `lock release` ends it (`--force` for another operator's hold).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rollwright.errors import BadInput
from rollwright.render.playbooks import TAKE_LOCK_PLAY
from rollwright.run.engine import Event, PlaybookRun, run_playbook
from rollwright.run.records import operator

Write = Callable[[str], None]
POLL_S = 3.0
CANCEL_POLL_S = 0.2  # while waiting for the lock: how soon a counted Ctrl-C ends the wait
OLD_LOCK_S = 3600  # past this age the refusal suggests `lock release --force`
LOCK_NOT_FREE = "the deploy lock is not free: asking who holds it (lock.yml)"  # the phase line of that wait


def _alive(pid: int) -> bool:
    if pid <= 0:  # no pid recorded: nothing to ask (and kill(-1) would ask every process)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_answer(event: Event) -> dict[str, Any] | None:
    """The deploy_lock module's result in an event of any run, else None."""
    data = event.get("event_data") or {}
    if event.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task_action") == "deploy_lock":
        return {**(data.get("res") or {}), "failed": event["event"] == "runner_on_failed"}
    return None


def holder_alive(holder: dict[str, Any]) -> bool | None:
    """Whether the holder's process still runs; None when it ran on another control node (unknowable)."""
    if holder.get("control_host") != socket.gethostname():
        return None
    return _alive(int(holder.get("pid") or 0))


def stale(holder: dict[str, Any]) -> bool:
    """A lock a deploy may break: its holder's process is known to be gone, and it is no maintenance hold."""
    return not holder.get("hold") and holder_alive(holder) is False


def describe(holder: dict[str, Any]) -> str:
    age = int(time.time() - float(holder.get("since") or time.time()))
    message = f", message: {holder['message']}" if holder.get("message") else ""
    if holder.get("hold"):
        return f"{holder.get('user', '?')} (maintenance hold {holder.get('id', '?')}, held for {age}s{message})"
    return (f"{holder.get('user', '?')} (deploy {holder.get('id', '?')}, version {holder.get('version') or '-'}, "
            f"pid {holder.get('pid', '?')}, held for {age}s{message})")


class DeployLock:
    """The lock of one target's workspace project, taken and released by one deploy."""

    def __init__(self, project: Path, runs: Path, deploy_id: str, version: str, message: str, write: Write, *,
                 hold: bool = False) -> None:
        self.project, self.runs, self.write = project, runs, write
        self.holder = {"id": deploy_id, "user": operator(), "control_host": socket.gethostname(),
                       "pid": os.getpid(), "version": version, "message": message, **({"hold": True} if hold else {})}
        self.held = False
        self.broke: dict[str, Any] = {}  # the holder of a stale lock this one broke
        self.deferred = False  # taken by the first play of the next run (holding(..., deferred=True))
        self.asked = False  # a run carried the request: held or not, the lock is given back at the end
        self.refused = False  # that run's lock play found the lock held, or could not ask: nothing else ran
        self.on_taken: Callable[[], None] = lambda: None  # called once the lock is this deploy's (its start)

    def call(self, action: str, *, force: bool = False, stale: str = "") -> tuple[bool, dict[str, Any]]:
        """One lock.yml run; returns (ok, the module's result or the failure)."""
        found: dict[str, Any] = {}

        def on_event(event: Event) -> None:
            if event.get("event") == "runner_on_unreachable":
                found.update((event.get("event_data") or {}).get("res") or {})
            found.update(lock_answer(event) or {})

        run = run_playbook(self.project, "lock.yml", self.runs, on_event, extravars=self.extravars(
            action, force=force, stale=stale))
        if not found and not run.ok:
            found = {"msg": " ".join(run.error_tail()) or f"lock.yml {run.status}"}
        return run.ok, found

    def extravars(self, action: str, *, force: bool = False, stale: str = "") -> dict[str, Any]:
        """What the deploy_lock role needs to do `action` for this holder, in lock.yml or in finish.yml."""
        return {"deploy_lock_action": action, "deploy_lock_holder": self.holder, "deploy_lock_force": force,
                "deploy_lock_stale_holder": stale}

    def ask(self) -> dict[str, Any]:
        """Extra vars that make a run's first play (TAKE_LOCK_PLAY) take the lock, while it is deferred and
        not held yet; else none."""
        if not self.deferred or self.held:
            return {}
        self.asked, self.refused = True, False
        return self.extravars("acquire")

    def watch(self, on_event: Callable[[Event], None]) -> Callable[[Event], None]:
        """An event handler for a run that may take the lock: the lock play's events are the lock's (held,
        refused), every other event goes on to `on_event`."""
        def handle(event: Event) -> None:
            data = event.get("event_data") or {}
            if data.get("play") != TAKE_LOCK_PLAY:
                on_event(event)
                return
            answer = lock_answer(event)
            if answer is not None:
                self.held, self.refused = not answer["failed"], answer["failed"]
                if self.held:
                    self.on_taken()
            elif event.get("event") == "runner_on_unreachable":
                self.refused = True
        return handle

    def released_by(self, answer: dict[str, Any] | None) -> None:
        """The lock module's answer to a release another run carried (finish.yml): held no more if it says so."""
        if answer is not None and not answer.get("failed"):
            self.held = self.asked = False

    def acquire(self, wait_s: float = 0.0, cancel: Callable[[], bool] = lambda: False) -> None:
        """Take the lock, waiting up to `wait_s` for its holder; raises BadInput naming the holder. The wait
        counts from the first answer that the lock is held (one lock call can itself take seconds). `cancel`:
        a deploy's signal counter (its handler only counts), which ends the wait as Ctrl-C would."""
        deadline: float | None = None
        while True:
            ok, result = self.call("acquire")
            holder = result.get("holder") or {}
            if not ok and holder and stale(holder):
                self.write(f"warning: breaking the deploy lock of {describe(holder)}: that process is gone")
                ok, result = self.call("acquire", stale=str(holder.get("id")))
                self.broke = holder if ok else {}
                holder = result.get("holder") or {}
            if ok:
                self.held = True
                self.on_taken()
                return
            if not holder:  # not a held lock: the host did not answer, or the module failed
                raise BadInput(f"could not take the deploy lock: {result.get('msg', 'failed')}")
            if deadline is None:
                deadline = time.monotonic() + wait_s
                if wait_s > 0:
                    self.write(f"waiting up to {wait_s:.0f}s for the deploy lock held by {describe(holder)}")
            if time.monotonic() >= deadline:
                age = time.time() - float(holder.get("since") or time.time())
                hint = ("if that deploy is gone, `rollwright lock release --force`" if age > OLD_LOCK_S
                        else "wait for it, or retry with --lock-wait SECONDS")
                if holder.get("hold"):
                    hint = "it is held for maintenance until `rollwright lock release`"
                raise BadInput(f"the target is locked by {describe(holder)}; {hint}")
            until = min(time.monotonic() + POLL_S, deadline)
            while time.monotonic() < until:
                if cancel():
                    raise KeyboardInterrupt
                time.sleep(min(CANCEL_POLL_S, max(0.0, until - time.monotonic())))

    def run_taking_it(self, start: Callable[[], PlaybookRun], wait_s: float, cancel: Callable[[], bool],
                      phase: Callable[[str], None], again: Callable[[], str]) -> PlaybookRun:
        """A run whose first play takes the lock (deferred); when that play found it held (or could not ask),
        the lock is waited for, broken or refused as `acquire` does, then the run starts again (`phase` says so,
        with the line `again` gives)."""
        run = start()
        if self.refused:  # that run stopped at its first play
            phase(LOCK_NOT_FREE)
            self.acquire(wait_s, cancel=cancel)  # a Ctrl-C (the cancel count) ends the wait
            phase(again())
            run = start()
        return run

    @contextmanager
    def holding(self, wait_s: float = 0.0, *, deferred: bool = False) -> Iterator[None]:
        """The lock for the duration of a with-block; given back however the block ends. `deferred`: taken by
        the first run inside the block that carries `ask()`, not here."""
        self.deferred = deferred
        if not deferred:
            self.acquire(wait_s)
        try:
            yield
        finally:
            self.release()

    def release(self) -> None:
        """Give the lock back (after success, failure or Ctrl-C); says so when that fails. A run that asked for
        it and ended without an answer (interrupted) may have taken it: released too (a release by a caller
        that holds nothing changes nothing)."""
        if not (self.held or (self.asked and not self.refused)):
            return
        ok, result = self.call("release")
        self.held, self.asked = not ok, False
        if not ok:
            self.write(f"✗ could not release the deploy lock: {result.get('msg', 'failed')}; "
                       "release it with `rollwright lock release --force`")
