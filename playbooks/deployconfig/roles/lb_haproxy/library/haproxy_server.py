#!/usr/bin/python
"""Set one HAProxy server's admin state through the runtime API (admin socket), idempotently."""

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_server
short_description: Drain, disable or enable a server in an HAProxy backend via the admin socket
description:
  - Reads C(show stat) and sends C(set server BACKEND/SERVER state ...) only when the state differs.
  - With O(state=maint) the server is drained first and the module waits, bounded by O(wait_timeout),
    until its current sessions reach 0 before putting it into maintenance.
  - With O(state=ready) the module waits, bounded by O(wait_timeout), until HAProxy's own health check
    reports the server UP, so the next batch never drains a server while this one is not serving yet.
options:
  socket: {description: Path of the admin socket (level admin)., type: path, default: /run/haproxy/admin.sock}
  backend: {description: Backend (proxy) name., type: str, required: true}
  server: {description: Server name inside the backend., type: str, required: true}
  state: {description: Wanted admin state., type: str, choices: [ready, drain, maint], required: true}
  wait_timeout: {description: Seconds to wait for sessions to reach 0 (maint) or for the server to be UP (ready).,
                 type: int, default: 30}
author: rollwright
"""

EXAMPLES = r"""
- name: Drain app1 and wait until it has no sessions
  haproxy_server:
    backend: app
    server: app1
    state: maint
"""

RETURN = r"""
previous: {description: "Admin state before the change (ready, drain, maint).", returned: always, type: str}
sessions: {description: Current sessions when the module ended., returned: always, type: int}
waited: {description: Seconds spent waiting for sessions to drain or for the server to come UP., returned: always,
         type: float}
status: {description: The server's status in C(show stat) when the module ended., returned: always, type: str}
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.haproxy_runtime import admin_state, is_serving, runtime_command, server_row, wait_until


def main():
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
            "backend": {"type": "str", "required": True},
            "server": {"type": "str", "required": True},
            "state": {"type": "str", "required": True, "choices": ["ready", "drain", "maint"]},
            "wait_timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    path, backend, server, wanted = (module.params[k] for k in ("socket", "backend", "server", "state"))
    try:
        row = server_row(path, backend, server)
        previous = admin_state(path, backend, server)
    except OSError as exc:
        module.fail_json(msg=f"cannot talk to HAProxy on {path}: {exc}")
    if row is None or previous is None:
        module.fail_json(msg=f"HAProxy has no server {backend}/{server}")
    result = {"changed": previous != wanted, "previous": previous, "sessions": int(row.get("scur") or 0),
              "waited": 0.0, "status": row.get("status", "")}
    if module.check_mode:
        module.exit_json(**result)
    if previous != wanted:
        send(module, path, backend, server, "drain" if wanted == "maint" else wanted, result)
    start = time.monotonic()
    row = wait_until(module.params["wait_timeout"], lambda: server_row(path, backend, server), DONE[wanted])
    result.update(waited=round(time.monotonic() - start, 2), sessions=int(row.get("scur") or 0),
                  status=row.get("status", ""))
    if wanted == "maint" and previous != "maint":
        send(module, path, backend, server, "maint", result)
        result["status"] = "MAINT"
    elif wanted == "ready" and not is_serving(row):
        check = row.get("check_desc") or row.get("check_status") or "none"
        module.fail_json(msg=f"{backend}/{server} is not UP after {module.params['wait_timeout']}s "
                             f"(HAProxy status: {row.get('status')}, last check: {check})", **result)
    module.exit_json(**result)


def send(module, path, backend, server, state, result):
    """`set server ... state ...`; HAProxy answers nothing on success."""
    answer = runtime_command(path, f"set server {backend}/{server} state {state}").strip()
    if answer:
        module.fail_json(msg=f"HAProxy refused to set {backend}/{server} to {state}: {answer}", **result)


DONE = {
    "maint": lambda row: int(row.get("scur") or 0) == 0,
    "drain": lambda row: True,
    "ready": is_serving,
}


if __name__ == "__main__":
    main()
