#!/usr/bin/python
"""Move a backend's traffic from one set of servers to another in one runtime API request (blue/green).

The colours are kept in HAProxy's config file too (the retired servers' lines say `disabled`), so a
reload or restart, which starts every server from the config, keeps the idle colour out of service.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_switch
short_description: Switch an HAProxy backend's traffic from one colour of servers to the other in one step
description:
  - Readies the O(serve) servers with weight 0 first (they pass HAProxy's health check but take no request),
    waiting, bounded by O(wait_timeout), until every one is UP; if one is not, they go back to maintenance
    and nothing else changed.
  - Then one runtime API request gives the O(serve) servers their configured weight and drains the
    O(retire) servers, so new requests move at once; the module waits (bounded) for the retired servers'
    sessions to end and puts them into maintenance, still running, for an instant switch back.
  - "The O(config) file keeps the colours where a reload or restart finds them: the O(retire) servers' lines
    in the backend get the C(disabled) word, the O(serve) servers' lines lose it (nothing else changes). The
    new file is checked with C(haproxy -c) before the traffic moves and written once it has moved."
  - Changes nothing when the O(serve) servers are ready at full weight, the O(retire) ones in maintenance
    and the config says so.
options:
  socket: {description: Path of the admin socket (level admin)., type: path, default: /run/haproxy/admin.sock}
  config: {description: HAProxy's config file (its backend has a C(server) line per server)., type: path,
           default: /etc/haproxy/haproxy.cfg}
  backend: {description: Backend (proxy) name., type: str, required: true}
  serve: {description: Servers that take the traffic afterwards., type: list, elements: str, required: true}
  retire: {description: "Servers that stop taking it (kept running, in maintenance).", type: list, elements: str,
           default: []}
  wait_timeout: {description: Seconds to wait for the serving servers to be UP and for the retired ones to drain.,
                 type: int, default: 30}
author: rollwright
"""

EXAMPLES = r"""
- name: Send the traffic to green
  haproxy_switch:
    backend: app
    serve: [app2, app3]
    retire: [app1]
"""

RETURN = r"""
switched: {description: Whether the traffic moved in this run., returned: always, type: bool}
config_changed: {description: Whether the config file was rewritten to keep the colours., returned: always,
                 type: bool}
waited: {description: Seconds spent waiting for health checks and drains., returned: always, type: float}
"""

import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.haproxy_config import mark_colours
from ansible.module_utils.haproxy_runtime import (
    DRAIN_BITS,
    MAINT_BITS,
    is_serving,
    runtime_command,
    server_row,
    servers_state,
    wait_until,
)


def ready_at_full_weight(row):
    admin = int(row["srv_admin_state"])
    return not admin & (MAINT_BITS | DRAIN_BITS) and row["srv_uweight"] == row["srv_iweight"]


def in_maintenance(row):
    return bool(int(row["srv_admin_state"]) & MAINT_BITS)


def send(module, path, commands, result):
    """Several runtime API commands in one request (`;`-separated): HAProxy runs them back to back."""
    answer = runtime_command(path, "; ".join(commands)).strip()
    if answer:
        module.fail_json(msg=f"HAProxy refused `{'; '.join(commands)}`: {answer}", **result)


def checked_config(module, path, backend, serve, retire):
    """The config as the switch leaves it, checked by HAProxy, in a file beside it; None when it needs no change."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:  # every byte kept, line ends too
            text = handle.read()
    except OSError as exc:
        module.fail_json(msg=f"cannot read HAProxy's config {path}: {exc}; traffic not switched")
    wanted, missing = mark_colours(text, backend, serve, retire)
    if missing:
        module.fail_json(msg=f"{path}: backend {backend} has no `server` line for {', '.join(missing)}, so a reload "
                             "would not keep the colours; traffic not switched")
    if wanted == text:
        return None
    if module.check_mode:
        return ""
    handle, staged = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".rollwright-", suffix=".cfg")
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
        out.write(wanted)
    shutil.copystat(path, staged)
    info = os.stat(path)
    os.chown(staged, info.st_uid, info.st_gid)
    rc, out, err = module.run_command([module.get_bin_path("haproxy", required=True), "-c", "-q", "-f", staged])
    if rc != 0:
        os.unlink(staged)
        module.fail_json(msg=f"HAProxy refuses {path} with the colours marked: {(err or out).strip()[-400:]}; "
                             "traffic not switched")
    return staged


def main():
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
            "config": {"type": "path", "default": "/etc/haproxy/haproxy.cfg"},
            "backend": {"type": "str", "required": True},
            "serve": {"type": "list", "elements": "str", "required": True},
            "retire": {"type": "list", "elements": "str", "default": []},
            "wait_timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    path, backend, serve, retire = (module.params[k] for k in ("socket", "backend", "serve", "retire"))
    if not serve or set(serve) & set(retire):
        module.fail_json(msg="serve must name at least one server, and no server may be in serve and retire")
    try:
        state = servers_state(path, backend)
    except OSError as exc:
        module.fail_json(msg=f"cannot talk to HAProxy on {path}: {exc}")
    missing = [name for name in serve + retire if name not in state]
    if missing:
        module.fail_json(msg=f"HAProxy has no server {', '.join(f'{backend}/{name}' for name in missing)}")
    done = all(ready_at_full_weight(state[s]) for s in serve) and all(in_maintenance(state[s]) for s in retire)
    config = os.path.realpath(module.params["config"])  # a linked config is edited where it lives
    staged = checked_config(module, config, backend, serve, retire)
    result = {"changed": not done or staged is not None, "switched": not done, "config_changed": staged is not None,
              "waited": 0.0}
    try:
        if not (done or module.check_mode):
            start = time.monotonic()
            switch(module, path, backend, serve, retire, state, result)
            result["waited"] = round(time.monotonic() - start, 2)
        if staged:
            os.replace(staged, config)  # in one rename, once the runtime state matches it
    finally:
        if staged and os.path.exists(staged):  # the switch failed: the config stays as it was
            os.unlink(staged)
    module.exit_json(**result)


def switch(module, path, backend, serve, retire, state, result):
    """Ready the cold serving servers at weight 0, then move the traffic in one request; fails on a server not UP."""
    start, timeout = time.monotonic(), module.params["wait_timeout"]
    cold = [s for s in serve if not ready_at_full_weight(state[s])]
    send(module, path, [c for s in cold for c in (f"set weight {backend}/{s} 0", f"set server {backend}/{s} state ready")],
         result)
    rows = {s: wait_until(timeout, lambda s=s: server_row(path, backend, s), is_serving) for s in cold}
    down = [f"{s} ({row.get('status')}, last check {row.get('check_desc') or row.get('check_status') or 'none'})"
            for s, row in rows.items() if not is_serving(row)]
    if down:  # nothing moved: the serving colour stays as it was, the cold one goes back to maintenance
        send(module, path, [f"set server {backend}/{s} state maint" for s in cold], result)
        module.fail_json(msg=f"not UP after {timeout}s, traffic not switched: {', '.join(down)}", **result)
    send(module, path, [f"set weight {backend}/{s} 100%" for s in serve]
         + [f"set server {backend}/{s} state drain" for s in retire], result)
    for name in retire:
        wait_until(max(timeout - (time.monotonic() - start), 1), lambda name=name: server_row(path, backend, name),
                   lambda row: int(row.get("scur") or 0) == 0)
    if retire:
        send(module, path, [f"set server {backend}/{s} state maint" for s in retire], result)


if __name__ == "__main__":
    main()
