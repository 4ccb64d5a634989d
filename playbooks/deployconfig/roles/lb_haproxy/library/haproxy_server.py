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
options:
  socket: {description: Path of the admin socket (level admin)., type: path, default: /run/haproxy/admin.sock}
  backend: {description: Backend (proxy) name., type: str, required: true}
  server: {description: Server name inside the backend., type: str, required: true}
  state: {description: Wanted admin state., type: str, choices: [ready, drain, maint], required: true}
  wait_timeout: {description: Seconds to wait for sessions to reach 0 before maint., type: int, default: 30}
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
previous: {description: Admin state before the change (ready, drain, maint)., returned: always, type: str}
sessions: {description: Current sessions when the module ended., returned: always, type: int}
waited: {description: Seconds spent waiting for sessions to drain., returned: always, type: float}
"""

import csv
import socket
import time

from ansible.module_utils.basic import AnsibleModule


def runtime_command(path, command):
    """Send one command to the runtime API and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode()


def server_row(path, backend, server):
    """The `show stat` row of backend/server, or None."""
    text = runtime_command(path, "show stat").lstrip("# ")
    for row in csv.DictReader(text.splitlines()):
        if row.get("pxname") == backend and row.get("svname") == server:
            return row
    return None


def admin_state(row):
    """ready, drain or maint, as the runtime API names them, from a `show stat` row."""
    status = row.get("status", "")
    if status.startswith("MAINT"):
        return "maint"
    if status.startswith("DRAIN") or row.get("weight") == "0":
        return "drain"
    return "ready"


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
    except OSError as exc:
        module.fail_json(msg=f"cannot talk to HAProxy on {path}: {exc}")
    if row is None:
        module.fail_json(msg=f"HAProxy has no server {backend}/{server}")
    previous = admin_state(row)
    result = {"changed": previous != wanted, "previous": previous, "sessions": int(row.get("scur") or 0), "waited": 0.0}
    if module.check_mode or previous == wanted:
        module.exit_json(**result)

    def send(state):
        answer = runtime_command(path, f"set server {backend}/{server} state {state}").strip()
        if answer:
            module.fail_json(msg=f"HAProxy refused 'set server {backend}/{server} state {state}': {answer}", **result)

    if wanted == "maint":
        send("drain")
        start = time.monotonic()
        while time.monotonic() - start < module.params["wait_timeout"]:
            result["sessions"] = int(server_row(path, backend, server).get("scur") or 0)
            if result["sessions"] == 0:
                break
            time.sleep(0.2)
        result["waited"] = round(time.monotonic() - start, 2)
    send(wanted)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
