"""hello's worker: consumes jobs from a table in the app's database, to exercise a deploy of an app's other process.

Each job is a row of JOBS_TABLE (default ``hello_jobs``, created here when missing) whose ``done_by`` is empty;
the worker claims the oldest one (``FOR UPDATE SKIP LOCKED``, so instances never take the same job) and marks
it done by ``host/version/instance``. It talks to PostgreSQL with ``psql`` and DATABASE_URL (no driver: standard
library only), never logs the URL, stops gracefully on SIGTERM (the job at hand is finished first) and exits at
start when the release carries a ``BROKEN_WORKER`` file, empty or naming this host (a broken worker release, for
rollback tests).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
POLL_S = 0.5
TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
stopping = False


def version() -> str:
    try:
        return (HERE / "VERSION").read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def libpq_env(url: str) -> dict[str, str]:
    """DATABASE_URL as libpq's variables: the password stays out of argv (which every user of the host sees)."""
    parts = urlsplit(url)
    found = {"PGHOST": parts.hostname or "", "PGPORT": str(parts.port or 5432), "PGUSER": unquote(parts.username or ""),
             "PGPASSWORD": unquote(parts.password or ""), "PGDATABASE": unquote(parts.path.lstrip("/"))}
    return {key: value for key, value in found.items() if value}


def psql(env: dict[str, str], sql: str) -> str:
    """Run one statement; its unaligned output."""
    proc = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"psql {proc.returncode}")
    return proc.stdout.strip()


def is_broken(hostname: str) -> bool:
    """Whether this release's worker breaks here: an empty BROKEN_WORKER file everywhere, else on the hosts it
    lists (like app.py's BROKEN)."""
    try:
        names = (HERE / "BROKEN_WORKER").read_text(encoding="utf-8").split()
    except OSError:
        return False
    return not names or hostname in names or hostname.split(".")[0] in names


def stop(_signum: int, _frame: object) -> None:
    global stopping
    stopping = True


def main() -> int:
    if is_broken(socket.gethostname()):
        print("worker: this release is broken (BROKEN_WORKER), exiting", flush=True)
        return 1
    url, table = os.environ.get("DATABASE_URL", ""), os.environ.get("JOBS_TABLE", "hello_jobs")
    if not url or not TABLE_RE.fullmatch(table):
        print("worker: needs DATABASE_URL and a plain JOBS_TABLE name", flush=True)
        return 2
    env = libpq_env(url)
    me = f"{socket.gethostname()}/{version()}/{os.environ.get('ROLLWRIGHT_INSTANCE', '1')}"
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"worker {me} started on table {table}", flush=True)
    claim = (f"UPDATE {table} SET done_by = '{me}', done_at = now() WHERE id = (SELECT id FROM {table} "
             "WHERE done_by IS NULL ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id")
    ready = False
    while not stopping:
        try:
            if not ready:
                psql(env, f"CREATE TABLE IF NOT EXISTS {table} (id serial PRIMARY KEY, payload text, done_by text, "
                          "done_at timestamptz)")
                ready = True
            if psql(env, claim):
                continue  # a job done: look for the next one at once
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"worker: {error}", flush=True)  # psql's message never holds the URL's password
        time.sleep(POLL_S)
    print(f"worker {me} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
