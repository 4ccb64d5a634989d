"""HAProxy as an SLO metrics source: per-server counters from `show stat`, and the traffic between two snapshots.

Shared by the canary guard and the hold after a rollout (both in roles/canary_guard). A window is a dict
{requests, errors, error_rate, avg_ms}: what slo_judge judges, whatever source measured it."""

from __future__ import annotations

import csv
import socket
import time

RESPONSE_COLUMNS = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")
KEPT_COLUMNS = (*RESPONSE_COLUMNS, "wretr", "rtime")  # what a window reads: a snapshot keeps only these


def show_stat(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"show stat\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode()


def server_rows(text, backend):
    """server name -> its `show stat` row, for one backend."""
    return {row["svname"]: row for row in csv.DictReader(text.lstrip("# ").splitlines())
            if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND")}


def snapshot(path, backend):
    """The backend's servers' counters now, small enough to keep as a fact: {time, servers: {name: {col: n}}}."""
    rows = server_rows(show_stat(path), backend)
    return {"time": round(time.time(), 1),
            "servers": {name: {column: _number(row, column) for column in KEPT_COLUMNS} for name, row in rows.items()}}


def _number(row, column):
    try:
        return int(row.get(column) or 0)
    except ValueError:
        return 0


def window(before, after, servers):
    """Requests, errors and average response time of `servers` between two snapshots.

    An error is a 5xx response or a retry (`wretr`): with `retry-on 500` and the like, HAProxy hides a
    server's 5xx from the client and from `hrsp_5xx` by sending the request to another server, so the
    retries are the only trace of them. An empty `before` gives the counters since HAProxy started."""
    requests = errors = answers = 0
    weighted_ms = 0
    for name in servers:
        old, new = before.get(name, {}), after.get(name, {})
        answered = sum(_number(new, c) - _number(old, c) for c in RESPONSE_COLUMNS)
        retried = _number(new, "wretr") - _number(old, "wretr")
        requests += answered + retried
        errors += _number(new, "hrsp_5xx") - _number(old, "hrsp_5xx") + retried
        answers += answered
        weighted_ms += answered * _number(new, "rtime")
    return {"requests": requests, "errors": errors,
            "error_rate": round(errors / requests, 4) if requests else 0.0,
            "avg_ms": round(weighted_ms / answers, 1) if answers else 0.0}
