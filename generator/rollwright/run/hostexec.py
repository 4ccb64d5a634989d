"""`rollwright exec`: a command on the app hosts, in a release folder, as the service user with exactly the
service's environment.

It runs as a transient unit (`systemd-run --uid --gid -p EnvironmentFile=... --working-directory`), so it
gets the env file the unit gets without its values ever passing through the control node, the unit's
NoNewPrivileges, and the service's working directory resolved in that release. First one ssh per host
finds the release (`current`, or --release VERSION: refused before anything runs when a host has not staged
it); then the command runs on every chosen host at once. A small fixed shell script around it appends one
line to the host's audit log, in the deploy's format plus the command's name and exit code:

    <UTC time> <id> exec <app> <version> <succeeded|failed|interrupted> by <user@bastion> command=<name> exit=<N>

and ` read-only-safe` at its end when the operator vouched for a command on a read-only target.
The command's arguments never go there (they may hold secrets): only its name. Ctrl-C or SIGTERM ends the
local ssh processes and stops the transient unit on each host (`systemctl stop --no-block`).
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from rollwright.errors import BadInput
from rollwright.render.playbooks import ENV_DIR
from rollwright.render.project import AUDIT_LOG, resolve_target
from rollwright.run.engine import Interrupts
from rollwright.run.records import new_id, now, operator
from rollwright.run.remote import Connection, app_connections, describe_failure, prefixer, run_on_hosts
from rollwright.spec.loader import LoadedSpec
from rollwright.spec.model import VERSION_MAX, VERSION_RE

UNIT_PREFIX = "rollwright-exec-"
COMMAND_NAME_CHARS = 64
EXIT_INTERRUPTED = 130
Write = Callable[[str], None]

# Finds the release folder; prints `release VERSION`, or `missing` (never fails on a missing release).
PROBE_SCRIPT = r"""root=$1 release=$2
if [ -n "$release" ]; then
  if [ -d "$root/releases/$release" ]; then printf 'release %s\n' "$release"; else echo missing; fi
elif current=$(readlink -e -- "$root/current"); then
  printf 'release %s\n' "${current##*/}"
else
  echo missing
fi"""

# Runs "$@" (the systemd-run argv) and appends the audit line with how it ended; exits with its exit code. A
# hangup (an interactive session's connection lost), Ctrl-C or SIGTERM stops the transient unit: systemd-run
# runs in the background (its stdin kept) so that `wait` returns to the trap at once. A stop from the control
# node (STOP_SCRIPT) leaves a mark first, as systemd counts a command ended by SIGTERM as a success.
RUN_SCRIPT = r"""log=$1 head=$2 tail=$3 note=$4 unit=$5 mark=$6
shift 6
signalled=
trap 'signalled=1; systemctl stop --no-block -- "$unit.service"' HUP INT TERM
"$@" <&0 &
child=$!
while :; do
  wait "$child"
  code=$?
  kill -0 "$child" 2>/dev/null || break
done
status=failed
[ "$code" -eq 0 ] && status=succeeded
[ -e "$mark" ] && signalled=1 && rm -f -- "$mark"
[ -n "$signalled" ] && status=interrupted
umask 027
{ mkdir -p -- "${log%/*}" &&
  printf '%s %s %s %s exit=%s%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$head" "$status" "$tail" "$code" "$note" \
    >>"$log"
} 2>/dev/null || printf 'rollwright: no audit line written to %s\n' "$log" >&2
exit "$code"
"""

# Stops the transient unit when the operator stopped the run (Ctrl-C, SIGTERM), marking it stopped for RUN_SCRIPT.
STOP_SCRIPT = r"""unit=$1 mark=$2
if systemctl is-active --quiet -- "$unit.service"; then
  mkdir -p -- "${mark%/*}" && : >"$mark"
  systemctl stop --no-block -- "$unit.service"
fi"""
MARKS = "/run/rollwright"


@dataclass(frozen=True)
class ExecOptions:
    command: tuple[str, ...]
    hosts: tuple[str, ...] = ()  # --host names; none: the first app host (or every one with `every`)
    every: bool = False
    release: str | None = None  # a staged version; None: the current release
    interactive: bool = False
    read_only_safe: bool = False  # the operator vouches the command changes nothing (a read-only target)

    def check(self) -> None:
        if not self.command:
            raise BadInput("no command: give it after `--`, e.g. rollwright exec -t staging -- id -un")
        if self.every and self.hosts:
            raise BadInput("--all and --host: choose one")
        if self.interactive and (self.every or len({n for h in self.hosts for n in h.split(",") if n.strip()}) > 1):
            raise BadInput("--interactive runs on one host: name it with --host (or leave the first app host)")
        if self.release is not None and not is_version(self.release):
            raise BadInput(f"--release {self.release!r}: expected a version like 1.2.0 (letters, digits, '.', '_', "
                           "'+', '-'; at most 64)")


@dataclass(frozen=True)
class ExecContext:
    """What every host's command line is made of."""

    id: str
    app: str
    service: str
    user: str
    group: str
    root: str  # the release root
    working_dir: str  # the spec's service.working_dir ("" for the release folder itself)
    operator: str
    command: tuple[str, ...]
    read_only_safe: bool = False
    audit_log: str = AUDIT_LOG

    @property
    def unit(self) -> str:
        return f"{UNIT_PREFIX}{self.id}"

    @property
    def stop_mark(self) -> str:
        return f"{MARKS}/{self.unit}.stopped"

    def working_directory(self, version: str) -> str:
        """The unit's WorkingDirectory with `current` read as the release `version`."""
        release = f"{self.root}/releases/{version}"
        current = f"{self.root}/current"
        if not self.working_dir:
            return release
        if self.working_dir == current or self.working_dir.startswith(current + "/"):
            return release + self.working_dir[len(current):]
        return posixpath.normpath(posixpath.join(release, self.working_dir))

    def systemd_run(self, version: str, *, tty: bool = False) -> list[str]:
        return ["systemd-run", f"--unit={self.unit}", "--quiet", "--collect", "--wait", "--pty" if tty else "--pipe",
                f"--uid={self.user}", f"--gid={self.group}",
                f"--property=EnvironmentFile={ENV_DIR}/{self.service}.env", "--property=NoNewPrivileges=true",
                f"--working-directory={self.working_directory(version)}", "--", *map(literal_for_systemd, self.command)]

    def run_argv(self, version: str, *, tty: bool = False) -> list[str]:
        """The remote argv: the audit wrapper around systemd-run."""
        head = f"{self.id} exec {self.app} {version}"
        tail = f"by {self.operator} command={command_name(self.command)}"
        note = " read-only-safe" if self.read_only_safe else ""
        return ["sh", "-c", RUN_SCRIPT, "rollwright-exec", self.audit_log, head, tail, note, self.unit,
                self.stop_mark, *self.systemd_run(version, tty=tty)]

    def stop_argv(self) -> list[str]:
        return ["sh", "-c", STOP_SCRIPT, "rollwright-stop", self.unit, self.stop_mark]

    def probe_argv(self, release: str | None) -> list[str]:
        return ["sh", "-c", PROBE_SCRIPT, "rollwright-probe", self.root, release or ""]


def literal_for_systemd(arg: str) -> str:
    """systemd expands `$NAME` and `${NAME}` in a unit's command line (an unset one drops the word): `$$` is
    its literal `$`, so the argument reaches the command as typed."""
    return arg.replace("$", "$$")


def is_version(text: str) -> bool:
    """A release version as the spec allows it: one folder name, never a path."""
    return len(text) <= VERSION_MAX and bool(VERSION_RE.fullmatch(text))


def command_name(command: tuple[str, ...]) -> str:
    """The command's name for the audit log: the last part of argv[0], one word, capped; never its arguments."""
    name = posixpath.basename(command[0]) or command[0]
    return re.sub(r"[^A-Za-z0-9._+:@%=,-]", "_", name)[:COMMAND_NAME_CHARS] or "_"


@dataclass
class ExecResult:
    exit_codes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "host: why", hosts that could not run it


def execute(loaded: LoadedSpec, target: str | None, options: ExecOptions, out: Write, err: Write) -> int:
    """Run the command; 0 when it exited 0 on every chosen host, 130 when stopped, else 1 naming each host."""
    options.check()
    spec = loaded.spec
    if not spec.release:
        raise BadInput(f"{loaded.path}: the spec deploys no release, so there is no release folder to run in")
    if not spec.service:
        raise BadInput(f"{loaded.path}: the spec runs no service, so there is no service user or env file to run "
                       f"as; use ssh as the release's owner ({spec.release.owner})")
    name, chosen_target = resolve_target(loaded, target)
    if chosen_target.read_only and not options.read_only_safe:
        raise BadInput(f"exec refused: target {name} is read-only; if this command changes nothing, say so with "
                       "--read-only-safe (you answer for it; the audit line records it)")
    connections = app_connections(loaded, name, options.hosts, "exec", first_only=not (options.hosts or options.every))
    context = ExecContext(
        id=new_id(now()), app=spec.app, service=spec.service_name, user=spec.service.user,
        group=spec.service.group or spec.service.user, root=spec.release.root,
        working_dir=spec.service.working_dir or "", operator=operator(), command=options.command,
        read_only_safe=options.read_only_safe)
    result = ExecResult()
    versions = _releases(connections, context, options.release, result)
    ready = [c for c in connections if c.host in versions]
    if options.interactive and ready:
        conn = ready[0]
        result.exit_codes[conn.host] = _session(conn.ssh(context.run_argv(versions[conn.host], tty=True), tty=True))
    elif ready:
        _run_everywhere(ready, versions, context, result, out, err)
    return _report(result, len(connections), err)


def _releases(connections: list[Connection], context: ExecContext, release: str | None,
              result: ExecResult) -> dict[str, str]:
    """host -> the release to run in; a host that cannot be reached is noted in `result`. Refused (nothing runs
    anywhere) when a reachable host has no such release."""
    answers: dict[str, list[str]] = {c.host: [] for c in connections}
    finished, stopped = run_on_hosts({c.host: c.ssh(context.probe_argv(release)) for c in connections},
                                     lambda host, line, is_stderr: None if is_stderr else answers[host].append(line))
    if stopped:
        raise KeyboardInterrupt
    versions: dict[str, str] = {}
    missing = []
    for done in finished:
        answer = answers[done.host][-1] if answers[done.host] and done.exit_code == 0 else ""
        version = answer.removeprefix("release ")
        if answer == "missing" or (answer.startswith("release ") and not is_version(version)):
            missing.append(done.host)
        elif answer.startswith("release "):
            versions[done.host] = version
        else:
            result.problems.append(f"{done.host}: {describe_failure(done)}")
    if missing:
        what = f"release {release} is not staged" if release else "no current release"
        raise BadInput(f"exec refused, nothing ran: {what} on {', '.join(missing)}")
    return versions


def _session(argv: list[str]) -> int:
    """An interactive ssh session in this terminal: its raw mode sends Ctrl-C to the remote command; a SIGTERM
    here ends the ssh, whose hangup stops the command on the host."""
    with Interrupts() as interrupts:
        process = subprocess.Popen(argv)
        while process.poll() is None:
            if interrupts.count:
                process.terminate()
            try:
                process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
    return process.returncode


def _run_everywhere(ready: list[Connection], versions: dict[str, str], context: ExecContext, result: ExecResult,
                    out: Write, err: Write) -> None:
    """The command on every ready host at once: one host's output as it is, several hosts' prefixed by host."""
    if len(ready) == 1:
        def line(host: str, text: str, is_stderr: bool) -> None:
            (err if is_stderr else out)(text)
    else:
        line = prefixer([c.host for c in ready], out, err)
    finished, stopped = run_on_hosts({c.host: c.ssh(context.run_argv(versions[c.host])) for c in ready}, line)
    for done in finished:
        if done.stopped:
            result.problems.append(f"{done.host}: stopped (Ctrl-C or SIGTERM)")
        elif done.unreachable:
            result.problems.append(f"{done.host}: {describe_failure(done)}")
        else:
            result.exit_codes[done.host] = done.exit_code
    if stopped:
        run_on_hosts({c.host: c.ssh(context.stop_argv()) for c in ready}, lambda host, text, is_stderr: None)
        raise KeyboardInterrupt


def _report(result: ExecResult, hosts: int, err: Write) -> int:
    for problem in result.problems:
        err(problem)
    failed = [host for host, code in result.exit_codes.items() if code != 0]
    if hosts > 1 or failed:
        err(", ".join(f"{host}: exit {code}" for host, code in result.exit_codes.items()) or "ran on no host")
    if failed:
        err(f"the command failed on {', '.join(failed)}")
    return 1 if failed or result.problems else 0
