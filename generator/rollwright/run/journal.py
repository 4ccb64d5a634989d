"""`rollwright logs`: the app service's systemd journal on every app host at once, each line prefixed with its
host, as the lines arrive; `--follow` streams until Ctrl-C or SIGTERM.

The filter is journalctl's own `--grep` (PCRE2, on the MESSAGE field, case-insensitive when the pattern has no
capital letter), so `--lines` counts matching lines; the pattern is first compiled here so a malformed one is
refused before any host is asked. `--since` is a relative age (10m, 2h, 1d): it reaches journalctl as
`--since=-10m`, never as free text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rollwright.errors import BadInput
from rollwright.run.remote import app_connections, describe_failure, prefixer, run_on_hosts
from rollwright.spec.loader import LoadedSpec

DEFAULT_LINES = 100
MAX_LINES = 10_000
SINCE = re.compile(r"([1-9][0-9]{0,5})([smhdw])")  # fullmatch: no trailing newline
SINCE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
NO_MATCH = 1  # journalctl --grep's exit code when no line matched (and it said nothing on stderr)
Write = Callable[[str], None]


@dataclass(frozen=True)
class LogsOptions:
    follow: bool = False
    since: str | None = None
    grep: str | None = None
    lines: int = DEFAULT_LINES

    def check(self) -> None:
        """Refuse a bad option before anything is read or run."""
        if not 0 <= self.lines <= MAX_LINES:
            raise BadInput(f"--lines {self.lines}: expected 0 to {MAX_LINES} lines per host")
        if self.since is not None and not SINCE.fullmatch(self.since):
            raise BadInput(f"--since {self.since!r}: expected an age like 30s, 10m, 2h, 1d or 1w "
                           f"({', '.join(f'{u} {w}' for u, w in SINCE_UNITS.items())})")
        if self.grep is not None:
            if not self.grep:
                raise BadInput("--grep: expected a regular expression, got an empty one")
            try:
                re.compile(self.grep)
            except re.error as exc:
                raise BadInput(f"--grep {self.grep!r} is not a valid regular expression: {exc}") from None


def journalctl_argv(service: str, options: LogsOptions, processes: Iterable[str] = ()) -> list[str]:
    """The remote journalctl for the service's unit and the app's other processes' (`processes`: unit names or
    patterns, interleaved by time); every option value a separate `--name=value` argument."""
    argv = ["journalctl", f"--unit={service}.service", *(f"--unit={unit}.service" for unit in processes),
            "--no-pager", "--quiet", "--output=short-iso", f"--lines={options.lines}"]
    if options.follow:
        argv.append("--follow")
    if options.since:
        argv.append(f"--since=-{options.since}")
    if options.grep:
        argv.append(f"--grep={options.grep}")
    return argv


def logs(loaded: LoadedSpec, target: str | None, hosts: Iterable[str], options: LogsOptions, out: Write,
         err: Write) -> int:
    """Stream the journal; 0 when every host answered (or the follow was stopped), 1 naming each host that could
    not be reached or whose journalctl failed."""
    options.check()
    chosen = app_connections(loaded, target, hosts, "logs")
    spec = loaded.spec
    units = [unit if spec.processes[name].instances == 1 else f"{unit}@*" for name, unit in spec.process_units]
    command = journalctl_argv(spec.service_name, options, units)
    results, _ = run_on_hosts({c.host: c.ssh(command) for c in chosen}, prefixer([c.host for c in chosen], out, err))
    failed = [r for r in results if r.exit_code != 0 and not r.stopped
              and not (options.grep and r.exit_code == NO_MATCH and not r.stderr_tail)]
    for result in failed:
        err(f"{result.host}: {describe_failure(result)}")
    return 1 if failed else 0
