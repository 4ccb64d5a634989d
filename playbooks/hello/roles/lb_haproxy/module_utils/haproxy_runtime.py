"""The HAProxy runtime API (admin socket) as lb_haproxy's modules use it: commands, server rows, admin states."""

from __future__ import annotations

import csv
import socket
import time


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


# srv_admin_state bits of `show servers state` (HAProxy's SRV_ADMF_MAINT and SRV_ADMF_DRAIN masks): forced,
# inherited and resolver maintenance; forced and inherited drain. Configured maintenance (`disabled` in the
# config, 0x04) stays set on a server the runtime API readied: alone it is no maintenance.
MAINT_BITS = 0x01 | 0x02 | 0x20
DRAIN_BITS = 0x08 | 0x10


def servers_state(path, backend):
    """server name -> its `show servers state` row (admin state bits, user and initial weight)."""
    lines = [line for line in runtime_command(path, f"show servers state {backend}").splitlines() if line.strip()]
    header = next((line.lstrip("# ").split() for line in lines if line.startswith("#")), [])
    rows = (dict(zip(header, line.split())) for line in lines if not line.startswith("#"))
    return {row["srv_name"]: row for row in rows if "srv_name" in row and "srv_admin_state" in row}


def admin_state(path, backend, server):
    """ready, drain or maint, as the runtime API names them. Read from the admin state bits of
    `show servers state`: `show stat` shows a drained server that fails its health check as plain DOWN."""
    row = servers_state(path, backend).get(server)
    if row is None:
        return None
    bits = int(row["srv_admin_state"])
    return "maint" if bits & MAINT_BITS else "drain" if bits & DRAIN_BITS else "ready"


def is_serving(row):
    """UP by HAProxy's health check, or a server without checks."""
    status = row.get("status", "")
    return status.startswith("UP") or status == "no check"


def wait_until(timeout, read, done):
    """Poll read() every 0.2 s until done(row) or timeout seconds; return the last row."""
    deadline = time.monotonic() + timeout
    row = read()
    while not done(row) and time.monotonic() < deadline:
        time.sleep(0.2)
        row = read()
    return row
