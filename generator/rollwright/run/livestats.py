"""Live numbers of a rollout through its HAProxy load balancer: requests/s, error rate and average latency of the
hosts already on the new release against the others, while the batches run.

One ssh process to the first load balancer host for the whole rollout runs a small shell loop there that prints
HAProxy's `show stat` (through socat on its admin socket) every SAMPLE_EVERY_S seconds, each dump ended by a
marker line; a thread reads and parses them. Between two dumps each server's counters grow by what it answered:
an error is a 5xx response or a retry (`wretr`: with `retry-on`, HAProxy hides a server's 5xx from the client by
sending the request elsewhere, so the retries are the only trace of them), as the canary guard counts them; the
latency is HAProxy's `rtime` (its average over the server's last 1024 requests) weighted by the requests it
answered. The servers are grouped by what the progress view knows: the hosts switched to the new release so far,
and the others.

The numbers are a view, never a verdict: a sampler that cannot connect or parse just shows nothing, and it never
fails or holds up a deploy. It starts with the first rollout batch and ends (its ssh process ended by its pid)
when the rollout plays are over or the run ends.
"""

from __future__ import annotations

import csv
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rollwright.render.playbooks import ROLLOUT_PLAY

SAMPLE_EVERY_S = 2
STOP_WAIT_S = 5.0
END = "#rollwright-stat-end"
# On the load balancer: `show stat` every few seconds until the connection goes (the next write fails), $1 the
# admin socket. A socat that fails ends the loop: the numbers are hidden.
LOOP = (f'while :; do echo "show stat" | socat -t 2 - "UNIX-CONNECT:$1" || exit 1; echo "{END}"; '
        f"sleep {SAMPLE_EVERY_S}; done")
RESPONSES = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


@dataclass
class Counts:
    """What some servers answered over some seconds."""

    requests: int = 0  # answered and retried
    errors: int = 0  # 5xx and retried
    answered: int = 0
    weighted_ms: float = 0.0  # rtime x answered, summed
    seconds: float = 0.0

    def __iadd__(self, other: Counts) -> Counts:
        self.requests += other.requests
        self.errors += other.errors
        self.answered += other.answered
        self.weighted_ms += other.weighted_ms
        return self

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def avg_ms(self) -> float:
        return self.weighted_ms / self.answered if self.answered else 0.0

    def text(self) -> str:
        """`12.5 req/s, 0.00% errors, 3 ms`"""
        return f"{self.per_second:.1f} req/s, {self.error_rate:.2%} errors, {self.avg_ms:.0f} ms"


@dataclass
class Numbers:
    """The new release's servers against the others, over one span of time."""

    new: Counts = field(default_factory=Counts)
    others: Counts = field(default_factory=Counts)
    new_servers: tuple[str, ...] = ()

    def add(self, other: Numbers) -> None:
        self.new += other.new
        self.others += other.others
        self.new.seconds += other.new.seconds
        self.others.seconds += other.others.seconds
        self.new_servers = other.new_servers

    def line(self) -> str:
        """One plain line: `load balancer: new release 12.5 req/s, ...; others 25.0 req/s, ... over 8 s`; with no
        request at all, says so (a row of zeros reads like a fault)."""
        over = f"(over {self.new.seconds:.0f} s)"
        if not self.new.requests and not self.others.requests:
            return f"    load balancer: no requests {over}"
        return f"    load balancer: new release {self.new.text()}; others {self.others.text()} {over}"

    def fields(self) -> dict[str, Any]:
        def side(counts: Counts) -> dict[str, Any]:
            return {"requests": counts.requests, "errors": counts.errors, "per_second": round(counts.per_second, 1),
                    "error_rate": round(counts.error_rate, 4), "avg_ms": round(counts.avg_ms, 1)}

        return {"new": {**side(self.new), "servers": list(self.new_servers)}, "others": side(self.others),
                "seconds": round(self.new.seconds, 1)}


def parse_stat(text: str, backend: str) -> dict[str, dict[str, str]]:
    """server name -> its `show stat` row, for one backend (the FRONTEND and BACKEND rows left out)."""
    rows = csv.DictReader(text.lstrip("# ").splitlines())
    return {row["svname"]: row for row in rows
            if row.get("pxname") == backend and row.get("svname") not in (None, "FRONTEND", "BACKEND")}


def _int(row: dict[str, str], column: str) -> int:
    value = row.get(column) or "0"
    return int(value) if value.isdigit() else 0


def server_counts(before: dict[str, str], after: dict[str, str]) -> Counts | None:
    """What one server answered between two rows; None when its counters went back (HAProxy restarted)."""
    grown = {column: _int(after, column) - _int(before, column) for column in (*RESPONSES, "wretr")}
    if any(value < 0 for value in grown.values()):
        return None
    answered = sum(grown[column] for column in RESPONSES)
    return Counts(requests=answered + grown["wretr"], errors=grown["hrsp_5xx"] + grown["wretr"], answered=answered,
                  weighted_ms=answered * _int(after, "rtime"))


def between(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]], seconds: float,
            new_hosts: Iterable[str]) -> Numbers:
    """Two `show stat` samples, `seconds` apart, as the new release's servers against the others."""
    new = set(new_hosts)
    numbers = Numbers(new=Counts(seconds=seconds), others=Counts(seconds=seconds),
                      new_servers=tuple(sorted(name for name in after if name in new)))
    for name, row in after.items():
        counts = server_counts(before.get(name, {}), row) if name in before else None
        if counts is not None:
            if name in new:
                numbers.new += counts
            else:
                numbers.others += counts
    return numbers


class Sampler:
    """The ssh process streaming `show stat` and the thread reading it: each interval's numbers go to
    `on_sample`, `take()` gives the numbers since it was last called."""

    def __init__(self, argv: list[str], backend: str, new_hosts: Callable[[], Iterable[str]],
                 on_sample: Callable[[Numbers], None]) -> None:
        self.argv, self.backend, self.new_hosts, self.on_sample = argv, backend, new_hosts, on_sample
        self.process: subprocess.Popen[str] | None = None
        self._since = Numbers()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="rollwright-lb-numbers", daemon=True)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        self._thread.start()

    def take(self) -> Numbers | None:
        """The numbers since the last call (None before a second sample), and a fresh start."""
        with self._lock:
            taken, self._since = self._since, Numbers()
        return taken if taken.new.seconds > 0 else None

    def _read(self) -> None:
        try:
            self._follow()
        except (OSError, ValueError, csv.Error):  # the stream closed under it, or a dump it cannot read: no numbers
            return

    def _follow(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        previous: tuple[float, dict[str, dict[str, str]]] | None = None
        for text in dumps(self.process.stdout):
            now, rows = time.monotonic(), parse_stat(text, self.backend)
            if previous is not None and rows:
                numbers = between(previous[1], rows, now - previous[0], self._new_hosts())
                with self._lock:
                    self._since.add(numbers)
                self.on_sample(numbers)
            previous = (now, rows)

    def _new_hosts(self) -> set[str]:
        """The switched hosts, read while the run's thread may add a host: a read that met a change is tried
        again."""
        for _ in range(10):
            try:
                return set(self.new_hosts())
            except RuntimeError:  # the hosts changed while they were read
                continue
        return set()

    def stop(self) -> None:
        """End the ssh process (by its pid: SIGTERM, then SIGKILL) and the reading thread."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._thread.join(timeout=STOP_WAIT_S)
        if process.stdout is not None:
            process.stdout.close()


def dumps(stream: IO[str]) -> Iterable[str]:
    """Each `show stat` dump of the stream, as the marker line ends it."""
    lines: list[str] = []
    for line in stream:
        if line.strip() == END:
            yield "".join(lines)
            lines = []
        else:
            lines.append(line)


class LiveNumbers:
    """Follows a site.yml run's events: starts the sampler with the first rollout batch (in a thread of its own:
    reading the inventory takes a moment), says each finished batch's numbers as a line, and stops the sampler
    when the rollout plays are over or `close()` is called. Any failure only hides the numbers."""

    def __init__(self, connect: Callable[[], list[str]] | None, backend: str, new_hosts: Callable[[], Iterable[str]],
                 say: Callable[..., None], show: Callable[[Numbers | None], None]) -> None:
        """`connect`: the ssh argv of the stat loop (None: never sample); `say`: an event (kind, text, fields);
        `show`: the live view's latest numbers (None: no more)."""
        self.connect, self.backend, self.new_hosts, self.say, self.show = connect, backend, new_hosts, say, show
        self.sampler: Sampler | None = None
        self._starting: threading.Thread | None = None
        self._batch_open = False
        self._done = False
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        if self.connect is None or kind not in ("playbook_on_play_start", "playbook_on_stats"):
            return
        self._end_batch()
        play = str((event.get("event_data") or {}).get("play", ""))
        if kind == "playbook_on_play_start" and play.startswith(ROLLOUT_PLAY) and not self._done:
            self._batch_open = True
            if self._starting is None:
                self._starting = threading.Thread(target=self._start, name="rollwright-lb-connect", daemon=True)
                self._starting.start()
        elif self._starting is not None:
            self.close()

    def _start(self) -> None:
        assert self.connect is not None
        try:
            sampler = Sampler(self.connect(), self.backend, self.new_hosts, self.show)
            with self._lock:
                if self._done:
                    return
                sampler.start()
                self.sampler = sampler
        except Exception:  # a view: a sampler that cannot start shows nothing, the deploy goes on
            self.sampler = None

    def _end_batch(self) -> None:
        if not self._batch_open:
            return
        self._batch_open = False
        numbers = self.sampler.take() if self.sampler is not None else None
        if numbers is not None:
            self.say("numbers", numbers.line(), **numbers.fields())

    def close(self) -> None:
        """Stop sampling: the ssh process ends, the view forgets the numbers."""
        with self._lock:
            self._done = True
            sampler, self.sampler = self.sampler, None
        if sampler is not None:
            sampler.stop()
            self.show(None)


def stat_loop(socket: str | Path) -> list[str]:
    """The remote argv: the loop in a shell, the socket its one argument (data, never part of the script)."""
    return ["sh", "-c", LOOP, "sh", str(socket)]
