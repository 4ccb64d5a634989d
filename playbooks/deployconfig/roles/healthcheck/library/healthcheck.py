#!/usr/bin/python
"""The health gate, polled on the host itself: one task instead of a retried uri, a real deadline.

Why a module: `until/retries` counts attempts, not time (each attempt costs a task round trip and
the request's own timeout, so "60 s" took 140 s), cannot bound one hanging request by what is left,
and cannot notice that the unit crashed. Here the deadline bounds everything, each request's timeout
is the time left (at most PER_REQUEST_S, so the unit is looked at between tries), the version is
compared exactly (the body's JSON `version`, else a whole token: `10.1` is not `10.10`), and a unit
that failed or keeps restarting fails the gate at once with the last lines of its journal.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.health_probe import app_said, ask, journal_tail, unit_properties

DOCUMENTATION = r"""
module: healthcheck
short_description: Wait until a URL answers the expected status and version, within a deadline
description:
  - Polls I(url) from the host until it answers I(status) (and names I(version)), for at most I(timeout_s)
    seconds in all; fails at once when the systemd I(unit) has failed or keeps restarting.
options:
  url: {type: str, required: true, description: URL to poll.}
  status: {type: int, default: 200, description: Expected HTTP status.}
  timeout_s: {type: int, default: 60, description: "Deadline for the whole gate, requests included."}
  interval_s: {type: int, default: 1, description: "Most seconds between attempts (the first pause is 0.1 s, each next one doubles)."}
  version:
    type: str
    default: ""
    description: The version the body must name (its JSON C(version) field, else a whole token); empty = any.
  unit: {type: str, default: "", description: systemd unit whose state is checked between attempts; empty = none.}
  restarts_allowed: {type: int, default: 2, description: Automatic restarts of I(unit) tolerated before failing.}
  restart:
    type: bool
    default: false
    description:
      - "Restart I(unit) first, clearing its failed state and start limit (a crash loop leaves them), then
        wait: a rollout batch's restart and health gate in one call. In check mode nothing is restarted
        and there is nothing to wait for."
  reload:
    type: bool
    default: false
    description:
      - "With I(restart), reload I(unit) instead (C(systemctl reload), its ExecReload; the process stays, so a
        failed or stopped unit is refused), then wait the same way: the version the body names tells the reload
        renewed the code."
  wait: {type: bool, default: true, description: Run the gate; false only restarts (a deploy run without health checks).}
author: rollwright
"""

EXAMPLES = r"""
- name: Restart hello and wait until it serves 1.4.0
  healthcheck:
    url: http://127.0.0.1:8080/health
    version: 1.4.0
    unit: hello
    restart: true
    timeout_s: 60
"""

RETURN = r"""
healthy: {description: Whether the URL answered I(status) naming I(version); null when nothing was waited for.,
          returned: always, type: bool}
attempts: {description: Requests made., returned: when it waited, type: int}
status: {description: The last HTTP status answered (null for no answer)., returned: when it waited, type: int}
body: {description: The first 500 characters of the last answer (or why there was none)., returned: when it waited,
       type: str}
seconds: {description: Seconds until it was healthy., returned: when healthy, type: float}
reason: {description: Why it is not healthy., returned: on failure, type: str}
journal: {description: The unit's last journal lines., returned: when the unit failed or did not get healthy,
          type: list, elements: str}
"""

FIRST_WAIT_S = 0.1  # the first pause between attempts; each next one doubles, up to interval_s
PER_REQUEST_S = 5.0  # a hanging request is given up after this (or the time left), then the unit is checked
BODY_SHOWN = 500
JOURNAL_IN_MSG = 3
TOKEN_EDGE = r"A-Za-z0-9._+-"  # characters of a version: a match must not be part of a longer one


def names_version(body: str, version: str) -> tuple[bool, str]:
    """Whether the body names exactly `version`, and what it names instead (for the failure message)."""
    if not version:
        return True, ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and "version" in data:
        found = str(data["version"])
        return found == version, found
    token = re.search(rf"(?<![{TOKEN_EDGE}]){re.escape(version)}(?![{TOKEN_EDGE}])", body)
    return token is not None, ""


def unit_state(unit: str) -> tuple[str, int]:
    """(ActiveState, NRestarts) of a systemd unit; ("", 0) when systemctl cannot tell."""
    props = unit_properties(unit, ["ActiveState", "NRestarts"])
    try:
        restarts = int(props.get("NRestarts") or 0)
    except ValueError:
        restarts = 0
    return props.get("ActiveState", ""), restarts


def unit_trouble(unit: str, restarts_allowed: int) -> str:
    """Why the unit cannot become healthy (it failed, or keeps restarting), or "" while it may still."""
    if not unit:
        return ""
    state, restarts = unit_state(unit)
    if state == "failed":
        return f"unit {unit} failed (restarted {restarts} times)"
    if restarts > restarts_allowed:
        return f"unit {unit} keeps restarting ({restarts} automatic restarts, state {state or 'unknown'})"
    return ""


def restart_unit(unit: str, reload: bool = False) -> str:
    """Restart the unit after clearing its failed state and start limit (else systemd refuses a unit that
    crash-looped: "start request repeated too quickly"), or reload it; systemctl's complaint, or "" when done."""
    action = "reload" if reload else "restart"
    if not reload:
        subprocess.run(["systemctl", "reset-failed", "--", unit], capture_output=True, check=False)
    proc = subprocess.run(["systemctl", action, "--", unit], capture_output=True, text=True, check=False)
    return "" if proc.returncode == 0 else (proc.stderr.strip() or f"systemctl {action} exited {proc.returncode}")


def gate(url: str, status: int, timeout_s: float, interval_s: float, version: str, unit: str,
         restarts_allowed: int) -> dict[str, object]:
    """Poll until healthy or a reason to stop; the result says which, with the last answer."""
    started = time.monotonic()
    deadline = started + timeout_s
    attempts, last_status, last_body, last_found = 0, None, "", ""
    wait = FIRST_WAIT_S  # a restarted app is often healthy well within the interval: look sooner first
    while True:
        trouble = unit_trouble(unit, restarts_allowed)
        if trouble:
            return {"healthy": False, "reason": trouble, "journal": journal_tail(unit), "attempts": attempts,
                    "status": last_status, "body": last_body[:BODY_SHOWN]}
        attempts += 1
        left = deadline - time.monotonic()
        last_status, last_body = ask(url, max(0.1, min(PER_REQUEST_S, left)))
        named, last_found = names_version(last_body, version) if last_status == status else (False, last_found)
        if last_status == status and named:
            return {"healthy": True, "attempts": attempts, "status": last_status, "body": last_body[:BODY_SHOWN],
                    "seconds": round(time.monotonic() - started, 2)}
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(wait, interval_s, left))
        wait *= 2
    if last_status is None:
        reason = last_body
    elif last_status != status:
        reason = f"answered {last_status}, not {status}"
    else:
        reason = f"serves version {last_found or '(not named)'}, not {version}"
    return {"healthy": False, "reason": f"not healthy within {timeout_s:g}s: {reason}", "attempts": attempts,
            "status": last_status, "body": last_body[:BODY_SHOWN],
            "journal": journal_tail(unit) if unit else []}


def main() -> None:
    module = AnsibleModule(argument_spec={
        "url": {"type": "str", "required": True},
        "status": {"type": "int", "default": 200},
        "timeout_s": {"type": "int", "default": 60},
        "interval_s": {"type": "int", "default": 1},
        "version": {"type": "str", "default": ""},
        "unit": {"type": "str", "default": ""},
        "restarts_allowed": {"type": "int", "default": 2},
        "restart": {"type": "bool", "default": False},
        "reload": {"type": "bool", "default": False},
        "wait": {"type": "bool", "default": True},
    }, supports_check_mode=True)
    p = module.params
    if p["restart"] and not p["unit"]:
        module.fail_json(msg="restart needs the unit to restart")
    if module.check_mode:  # nothing restarted: no new version to wait for
        module.exit_json(changed=p["restart"], healthy=None)
    if p["restart"]:
        refused = restart_unit(p["unit"], p["reload"])
        if refused:
            module.fail_json(msg=f"{'reload' if p['reload'] else 'restart'} of {p['unit']} failed: {refused}",
                             changed=True,
                             journal=journal_tail(p["unit"]))
    if not p["wait"]:
        module.exit_json(changed=p["restart"], healthy=None)
    result = gate(p["url"], p["status"], p["timeout_s"], p["interval_s"], p["version"], p["unit"],
                  p["restarts_allowed"])
    if not result["healthy"]:
        journal = result.get("journal") or []
        tail = ("; journal: " + " | ".join(app_said(journal)[-JOURNAL_IN_MSG:])) if journal else ""
        body = f"; body: {result['body']}" if result.get("status") is not None else ""
        module.fail_json(msg=f"{p['url']}: {result['reason']}{tail}{body}", changed=p["restart"], **result)
    module.exit_json(changed=p["restart"], **result)


if __name__ == "__main__":
    main()
