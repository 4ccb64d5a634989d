#!/usr/bin/python
"""The readiness gate of a process without a health URL (a worker, a scheduler), polled on the host itself.

One task per process: restart its units (a template's instances together), then wait until it proves it
started, by one of three checks, within a deadline: still running `running_s` seconds later with the same
main process (a worker that crashes at start, or on its first job, is restarted by systemd: a new MainPID);
a `port` listening; a `command` that exits 0, run as a transient unit with the process's own user, env file
and working folder (`systemd-run`, as `rollwright exec` runs commands), so its values never pass through here.
A unit that failed or keeps restarting fails the gate at once, with its journal's last lines.
"""

from __future__ import annotations

import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.health_probe import app_said, journal_tail, unit_properties

DOCUMENTATION = r"""
module: process_ready
short_description: Restart a process's systemd units and wait until it is ready
description:
  - Restarts every unit of I(units) (clearing a failed state first) when I(restart), then waits at most
    I(timeout_s) until the process is ready, by exactly one check, I(running_s), I(port) or I(command).
  - Fails at once when a unit has failed or keeps restarting, with the last lines of its journal.
options:
  units: {type: list, elements: str, required: true, description: The process's units (a template's instances).}
  restart: {type: bool, default: true, description: Restart the units first; false only waits.}
  running_s: {type: int, default: 0, description: Ready when every unit is still active with the same main process this many seconds after the restart.}
  port: {type: int, default: 0, description: Ready when a process listens on this TCP port on the host.}
  command: {type: str, default: "", description: Ready when C(/bin/sh -c command) exits 0 (run as I(user) with I(env_file) in I(chdir)).}
  user: {type: str, default: root, description: Who runs the command.}
  group: {type: str, default: root, description: Its group.}
  env_file: {type: path, default: "", description: "The process's env file, the command's environment."}
  chdir: {type: path, default: /, description: Where the command runs.}
  timeout_s: {type: int, default: 60, description: Deadline for the whole gate.}
  interval_s: {type: int, default: 1, description: Seconds between two checks.}
  restarts_allowed: {type: int, default: 2, description: Automatic restarts tolerated (port and command checks).}
author: rollwright
"""

EXAMPLES = r"""
- name: Restart the worker and wait until it runs for 5 s
  process_ready:
    units: [hello-worker@1, hello-worker@2]
    running_s: 5
    timeout_s: 60
"""

RETURN = r"""
ready: {description: Whether the process became ready., returned: always, type: bool}
seconds: {description: Seconds the wait took., returned: when ready, type: float}
reason: {description: Why it is not ready., returned: on failure, type: str}
journal: {description: The failing unit's last journal lines., returned: on failure, type: list}
"""

JOURNAL_IN_MSG = 3
LISTEN = "0A"  # /proc/net/tcp's state of a listening socket


def state(unit: str) -> tuple[str, str, int]:
    """(ActiveState, MainPID, NRestarts) of a unit."""
    props = unit_properties(unit, ["ActiveState", "MainPID", "NRestarts"])
    try:
        restarts = int(props.get("NRestarts") or 0)
    except ValueError:
        restarts = 0
    return props.get("ActiveState", ""), props.get("MainPID", "0"), restarts


def trouble(units: list[str], allowed: int) -> tuple[str, str]:
    """(unit, why) of the first unit that failed or keeps restarting, else ("", "")."""
    for unit in units:
        active, _, restarts = state(unit)
        if active == "failed":
            return unit, f"unit {unit} failed"
        if restarts > allowed:
            return unit, f"unit {unit} keeps restarting ({restarts} automatic restarts)"
    return "", ""


def listening(port: int) -> bool:
    """Whether a TCP socket listens on `port` (IPv4 or IPv6, any address)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def check_argv(p: dict) -> list[str]:
    """The check as a transient unit with the process's user, env file and folder. systemd expands `$NAME` in a
    unit's command line: `$$` keeps every `$` for the shell, so the spec's command runs exactly as written."""
    argv = ["systemd-run", "--quiet", "--wait", "--pipe", "--collect", "--uid", p["user"], "--gid", p["group"],
            "-p", "NoNewPrivileges=yes", f"--working-directory={p['chdir']}"]
    if p["env_file"]:
        argv += ["-p", f"EnvironmentFile={p['env_file']}"]
    return [*argv, "--", "/bin/sh", "-c", p["command"].replace("$", "$$")]


def command_passes(p: dict) -> tuple[bool, str]:
    """Run the check; (exit 0, its output)."""
    proc = subprocess.run(check_argv(p), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False, timeout=max(1, p["timeout_s"]))
    said = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode == 0, (said[-1][:300] if said else f"exit {proc.returncode}")


def wait_ready(p: dict) -> dict[str, object]:
    """Poll the check until it passes, a unit gives up, or the deadline."""
    units, started = p["units"], time.monotonic()
    deadline = started + p["timeout_s"]
    pids = {unit: state(unit)[1] for unit in units}
    last = "not checked"
    while True:
        unit, why = trouble(units, 0 if p["running_s"] else p["restarts_allowed"])
        if not why and p["running_s"]:
            moved = [u for u in units if state(u)[0] != "active" or state(u)[1] != pids[u]]
            unit, why = (moved[0], f"unit {moved[0]} did not keep running (restarted or stopped)") if moved \
                else ("", "")
        if why:
            return {"ready": False, "reason": why, "journal": journal_tail(unit)}
        elapsed = time.monotonic() - started
        if p["running_s"]:
            ready = elapsed >= p["running_s"]
            last = f"running {elapsed:.0f}s of {p['running_s']}s"
        elif p["port"]:
            ready = listening(p["port"])
            last = f"nothing listens on port {p['port']}"
        else:
            ready, last = command_passes(p)
        if ready:
            return {"ready": True, "seconds": round(elapsed, 2)}
        left = deadline - time.monotonic()
        if left <= 0:
            return {"ready": False, "reason": f"not ready within {p['timeout_s']}s: {last}",
                    "journal": journal_tail(units[0])}
        time.sleep(min(p["interval_s"], left, max(0.1, p["running_s"] - elapsed) if p["running_s"] else left))


def main() -> None:
    module = AnsibleModule(argument_spec={
        "units": {"type": "list", "elements": "str", "required": True},
        "restart": {"type": "bool", "default": True},
        "running_s": {"type": "int", "default": 0},
        "port": {"type": "int", "default": 0},
        "command": {"type": "str", "default": ""},
        "user": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
        "env_file": {"type": "path", "default": ""},
        "chdir": {"type": "path", "default": "/"},
        "timeout_s": {"type": "int", "default": 60},
        "interval_s": {"type": "int", "default": 1},
        "restarts_allowed": {"type": "int", "default": 2},
    }, supports_check_mode=True)
    p = module.params
    if sum(bool(p[kind]) for kind in ("running_s", "port", "command")) != 1:
        module.fail_json(msg="set exactly one of running_s, port or command")
    if not p["units"]:
        module.fail_json(msg="units names no unit")
    if module.check_mode:
        module.exit_json(changed=p["restart"], ready=None)
    if p["restart"]:
        for unit in p["units"]:
            subprocess.run(["systemctl", "reset-failed", "--", unit], capture_output=True, check=False)
        proc = subprocess.run(["systemctl", "restart", "--", *p["units"]], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            module.fail_json(msg=f"restart of {', '.join(p['units'])} failed: {proc.stderr.strip()}", changed=True,
                             ready=False)
    result = wait_ready(p)
    if not result["ready"]:
        tail = " | ".join(app_said(result.get("journal", []))[-JOURNAL_IN_MSG:])
        module.fail_json(msg=f"{', '.join(p['units'])}: {result['reason']}" + (f"; journal: {tail}" if tail else ""),
                         changed=p["restart"], **result)
    module.exit_json(changed=p["restart"], **result)


if __name__ == "__main__":
    main()
