"""How a run's progress reaches whoever watches it: plain lines, a live view, or JSON events.

The runner speaks in events (`event(kind, text, **fields)`) and messages (`out(line)`); each Output
shows them its way. Plain lines are what a log file or CI gets (no terminal, `--no-color`, NO_COLOR);
a terminal gets a live view above the same lines: what the run is (its `plan` event), what it does
now (the run's phase or the play, for how long), the task under way with the hosts that answered it,
and a table of the hosts and their phases; `--json` prints one JSON object per line for machines,
ending with a `result` event that carries the exit code.

A command says what it is about to do with `out.plan(...)` and each step it enters with
`out.phase("taking the deploy lock")`, so nobody watches a silent screen while a playbook starts.

Output never decides what a command does: when whoever reads stdout goes away (`| head -1`), the
rest of the output is dropped quietly (`ClosedPipeSafe`) and the command carries on, so a deploy
still restores, records and audits as it would have.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

from rollwright.run.livestats import Numbers


class ClosedPipeSafe:
    """A stream a closed pipe cannot break: after the first broken-pipe error its file descriptor points at
    /dev/null, so this and every later write (and the interpreter's final flush) succeed and say nothing."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self) -> None:
        self.closed_pipe = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # not a real file descriptor (a test's capture): writes stop here anyway
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class Output:
    """Plain lines: the event's text, one per line, nothing else (no colour, no cursor movement)."""

    shows_numbers = True  # the load balancer's live numbers: a line per finished batch (the live view: a table)

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, line: str) -> None:
        self.event("message", line)

    def event(self, kind: str, text: str, **fields: Any) -> None:
        print(text, file=self.stream, flush=True)

    def plan(self, text: str, **fields: Any) -> None:
        """What this run is about to do, said first (`deploying hello 1.4.0 to staging: 3 app hosts in ...`);
        the live view keeps it on top."""
        self.event("plan", text, **fields)

    def phase(self, doing: str, **fields: Any) -> None:
        """The step the run enters now (`preparing the project`, `taking the deploy lock`): a line, and the live
        view's status until the next step or play."""
        self.event("run_phase", f"→ {doing}", phase=doing, **fields)

    def task(self, name: str, waiting: list[str], answered: list[str]) -> None:
        """The task under way and which hosts answered it: only the live view shows it (a line per task and host
        would drown the log)."""

    def numbers(self, numbers: Numbers | None) -> None:
        """The load balancer's latest numbers during a rollout (None: no more): only the live view shows them (a
        line every few seconds would drown the log; each finished batch's come as a `numbers` event)."""

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class JsonOutput(Output):
    """One JSON object per line: {"event": kind, "time": ..., "text": ..., **fields}."""

    shows_numbers = False  # a program reads this: no sampler runs for it

    def event(self, kind: str, text: str, **fields: Any) -> None:
        record = {"event": kind, "time": round(time.time(), 3), "text": text, **fields}
        print(json.dumps(record, sort_keys=False), file=self.stream, flush=True)


class LiveOutput(Output):
    """A terminal: the lines in colour, under a live view of the run (its plan, its phase or play, the task under
    way and who answered it) and of every host's batch, phase and state."""

    STYLES = {"plan": "bold", "run_phase": "cyan", "play": "bold", "failure": "bold red", "play_end": "dim",
              "numbers": "dim"}
    NAMED_HOSTS = 6  # waiting hosts named in the task line; more are counted

    def __init__(self, stream: TextIO | None = None, *, force_terminal: bool | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        super().__init__(stream)
        self.console = Console(file=self.stream, force_terminal=force_terminal, highlight=False)
        self.started = time.monotonic()
        self.headline = ""  # the plan
        self.doing, self.doing_since = "starting", self.started  # the run's phase
        self.play, self.play_started = "", self.started  # the play under way, over the phase
        self.current_task: tuple[str, list[str], list[str]] = ("", [], [])
        self.hosts: dict[str, dict[str, str]] = {}
        self.lb_numbers: Numbers | None = None  # set from the sampler's thread
        self.live = Live(console=self.console, get_renderable=self._view, refresh_per_second=4, transient=True)

    def task(self, name: str, waiting: list[str], answered: list[str]) -> None:
        self.current_task = (name, list(waiting), list(answered))

    def numbers(self, numbers: Numbers | None) -> None:
        self.lb_numbers = numbers

    def event(self, kind: str, text: str, **fields: Any) -> None:
        if kind == "plan":
            self.headline = text
        if kind == "run_phase":
            self.doing, self.doing_since, self.play = str(fields.get("phase") or text), time.monotonic(), ""
        if kind in ("run_phase", "play", "play_end"):
            self.current_task = ("", [], [])
        if kind in ("play", "play_end"):
            self.play, self.play_started = text.lstrip("▸ ") if kind == "play" else "", time.monotonic()
        host = fields.get("host")
        if host and kind in ("phase", "failure"):
            row = self.hosts.setdefault(str(host), {"batch": "", "phase": "", "state": ""})
            row["batch"] = str(fields.get("batch") or row["batch"])
            row["phase"] = str(fields.get("phase") or row["phase"])
            row["state"] = "failed" if kind == "failure" else "ok"
        style = self.STYLES.get(kind, "")
        if kind == "message" and text.startswith(("✗", "ATTENTION")):
            style = "bold red"
        self.console.print(text, style=style, markup=False, highlight=False)

    def _view(self) -> Any:
        """What the live area shows: the plan and the time since the start, what runs now (the play, else the
        run's phase) and for how long, the task under way with who answered it, then every host seen so far."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        lines: list[Any] = []
        if self.headline:
            lines.append(Text(f"{self.headline}  ({now - self.started:.0f}s)", style="bold"))
        doing, since = (self.play, self.play_started) if self.play else (self.doing, self.doing_since)
        lines.append(Text(f"{doing}  {now - since:.0f}s", style="bold cyan"))
        task, waiting, answered = self.current_task
        if task:
            lines.append(Text(f"  {task}: {_who_answered(waiting, answered, self.NAMED_HOSTS)}", style="cyan"))
        if not self.hosts:
            return Group(*lines)
        table = Table(box=None, padding=(0, 2, 0, 0))
        for column in ("host", "batch", "phase", "state"):
            table.add_column(column, style="bold" if column == "host" else "")
        for name, row in sorted(list(self.hosts.items())):
            table.add_row(name, row["batch"], row["phase"], Text(row["state"], "red" if row["state"] == "failed"
                                                                  else "green"))
        numbers = self.lb_numbers
        if numbers is None:
            return Group(*lines, table)
        side_by_side = Table.grid(padding=(0, 6, 0, 0))
        side_by_side.add_row(table, numbers_table(numbers))
        return Group(*lines, side_by_side)

    def __enter__(self) -> Output:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


def numbers_table(numbers: Numbers) -> Any:
    """The load balancer's last interval: the new release's servers against the others."""
    from rich.table import Table

    table = Table(box=None, padding=(0, 2, 0, 0))
    table.add_column(f"load balancer, last {numbers.new.seconds:.0f} s", style="bold", no_wrap=True)
    for column in ("req/s", "errors", "avg ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for label, counts in ((f"new release ({len(numbers.new_servers)})", numbers.new), ("others", numbers.others)):
        table.add_row(label, f"{counts.per_second:.1f}", f"{counts.error_rate:.2%}", f"{counts.avg_ms:.0f}",
                      style="red" if counts.errors else "")
    return table


def _who_answered(waiting: list[str], answered: list[str], named: int) -> str:
    """`2/3 hosts answered, waiting for app3` (a long wait list cut to `named` names and a count)."""
    total = len(waiting) + len(answered)
    if not total:
        return "starting"
    if not waiting:
        return f"{total}/{total} host{'s' if total != 1 else ''} answered"
    shown = ", ".join(waiting[:named]) + (f" and {len(waiting) - named} more" if len(waiting) > named else "")
    return f"{len(answered)}/{total} hosts answered, waiting for {shown}"


def hosts_in_batches(batches: list[list[str]]) -> str:
    """`3 app hosts in 3 batches (1, 1, 1)`: a rollout's shape for a plan line."""
    hosts = sum(len(batch) for batch in batches)
    sizes = ", ".join(str(len(batch)) for batch in batches)
    if not hosts:
        return "no app host"
    if len(batches) == 1:
        return f"{hosts} app host{'s' if hosts != 1 else ''} in one batch"
    return f"{hosts} app hosts in {len(batches)} batches ({sizes})"


def choose_output(*, as_json: bool, no_color: bool, stream: TextIO | None = None) -> Output:
    """JSON when asked; the live view on a terminal that allows colour; plain lines otherwise."""
    stream = stream or sys.stdout
    if as_json:
        return JsonOutput(stream)
    if no_color or os.environ.get("NO_COLOR") or not stream.isatty() or os.environ.get("TERM") == "dumb":
        return Output(stream)
    return LiveOutput(stream)
