"""How a run's progress reaches whoever watches it: plain lines, a live view, or JSON events.

The runner speaks in events (`event(kind, text, **fields)`) and messages (`out(line)`); each Output
shows them its way. Plain lines are what a log file or CI gets (no terminal, `--no-color`, NO_COLOR);
a terminal gets a live table of the hosts and their phases above the same lines; `--json` prints one
JSON object per line for machines, ending with a `result` event that carries the exit code.

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

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, line: str) -> None:
        self.event("message", line)

    def event(self, kind: str, text: str, **fields: Any) -> None:
        print(text, file=self.stream, flush=True)

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class JsonOutput(Output):
    """One JSON object per line: {"event": kind, "time": ..., "text": ..., **fields}."""

    def event(self, kind: str, text: str, **fields: Any) -> None:
        record = {"event": kind, "time": round(time.time(), 3), "text": text, **fields}
        print(json.dumps(record, sort_keys=False), file=self.stream, flush=True)


class LiveOutput(Output):
    """A terminal: the lines in colour, under a live table of every host's batch, phase and state."""

    STYLES = {"play": "bold", "failure": "bold red", "play_end": "dim"}

    def __init__(self, stream: TextIO | None = None, *, force_terminal: bool | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        super().__init__(stream)
        self.console = Console(file=self.stream, force_terminal=force_terminal, highlight=False)
        self.play, self.play_started = "", time.monotonic()
        self.hosts: dict[str, dict[str, str]] = {}
        self.live = Live(console=self.console, get_renderable=self._view, refresh_per_second=4, transient=True)

    def event(self, kind: str, text: str, **fields: Any) -> None:
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
        """What the live area shows: the play that runs and for how long, then every host seen so far."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        status = Text(f"{self.play or 'working'}  {time.monotonic() - self.play_started:.0f}s", style="bold cyan")
        if not self.hosts:
            return status
        table = Table(box=None, padding=(0, 2, 0, 0))
        for column in ("host", "batch", "phase", "state"):
            table.add_column(column, style="bold" if column == "host" else "")
        for name, row in sorted(list(self.hosts.items())):
            table.add_row(name, row["batch"], row["phase"], Text(row["state"], "red" if row["state"] == "failed"
                                                                  else "green"))
        return Group(status, table)

    def __enter__(self) -> Output:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


def choose_output(*, as_json: bool, no_color: bool, stream: TextIO | None = None) -> Output:
    """JSON when asked; the live view on a terminal that allows colour; plain lines otherwise."""
    stream = stream or sys.stdout
    if as_json:
        return JsonOutput(stream)
    if no_color or os.environ.get("NO_COLOR") or not stream.isatty() or os.environ.get("TERM") == "dumb":
        return Output(stream)
    return LiveOutput(stream)
