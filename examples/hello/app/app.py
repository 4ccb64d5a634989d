"""hello: the sample app that rollwright deploys to real hosts.

It exists to exercise a deploy, not to be useful, so every behaviour here is something a deploy has to get right:

- ``GET /`` names the host and the version, so a rolling deploy can be watched host by host.
- ``GET /health`` is what the deploy waits on. It answers 503 "starting" for STARTUP_DELAY_S seconds after start
  (the socket is bound at once, so only a health check that reads the status notices), 503 when DATABASE_URL is
  set and the database does not answer, and 500 for a deliberately broken build (a ``BROKEN`` file next to this
  one), so that health gates, batch failure and rollback can be proven without touching real code.
- ``GET /slow?ms=N`` keeps a request in flight, to prove that SIGTERM drains instead of cutting connections.
- SIGHUP reloads the code as gunicorn's HUP does: the requests in flight finish, then the process re-executes
  itself from the release ``current`` names now (same PID, same listening socket: new connections wait in its
  backlog meanwhile, none is refused), so a reload is provably graceful.

Standard library only (it runs on Debian 12's python3.11 with nothing installed). It logs one line at start and
one at stop, never per request (journald keeps stdout), and never logs DATABASE_URL, only its host:port.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
DRAIN_TIMEOUT_S = 20.0
SLOW_MAX_MS = 10_000
DB_PROBE_TIMEOUT_S = 1.0
DB_PROBE_CACHE_S = 1.0
# PostgreSQL SSLRequest: length 8, then the magic code 80877103. Any server answers with one byte, "S" or "N",
# before authentication, so this proves "a PostgreSQL server is listening" without a driver or a password, and
# PostgreSQL does not log a connection that is dropped right after it.
SSL_REQUEST = struct.pack("!II", 8, 80877103)
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
RELOAD_SIGNAL = signal.SIGHUP
LISTEN_FD_ENV = "HELLO_LISTEN_FD"  # the listening socket a reload hands over to the re-executed process


def read_version() -> str:
    """The release's version, from the VERSION file the build writes next to this file."""
    try:
        return (HERE / "VERSION").read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def is_broken(hostname: str) -> bool:
    """Whether this build should fail its health check on this host.

    An empty BROKEN file breaks every host; otherwise it lists hostnames, one per line, and only those break
    (the short name before the first dot also matches, since inventories and hostnames disagree on domains).
    """
    try:
        text = (HERE / "BROKEN").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except OSError:
        return True  # unreadable marker: err on the side of the deliberate failure someone asked for
    hosts = {line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")}
    if not hosts:
        return True
    return hostname in hosts or hostname.split(".", 1)[0] in hosts


def read_faults() -> tuple[float, float, str, float]:
    """(error fraction, added seconds) for GET /, from the FAULTS file a faulty build writes: a build whose
    health check passes while its users see 5xx or slow pages, which only a canary's SLO guard catches;
    its start fault: "crash" (exits at start: a crash loop) or "hang" (/health never answers); and the seconds
    after start before the errors begin (a release that fails only once past its health gate, as the hold after a
    rollout must catch)."""
    try:
        faults = json.loads((HERE / "FAULTS").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0.0, 0.0, "", 0.0
    return (float(faults.get("error_rate", 0)), float(faults.get("delay_ms", 0)) / 1000, str(faults.get("fault", "")),
            float(faults.get("errors_after_s", 0)))


def parse_db_target(url: str) -> tuple[str, int] | None:
    """host and port of a postgresql:// URL (port 5432 if absent), or None if it cannot be read."""
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            return None
        return parts.hostname or "localhost", parts.port or 5432
    except ValueError:  # e.g. a port that is not a number
        return None


def format_target(target: tuple[str, int] | None) -> str:
    """host:port for logs; deliberately never the URL, which may carry a password."""
    if target is None:
        return "unparseable URL"
    host, port = target
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def probe_postgres(host: str, port: int, timeout: float = DB_PROBE_TIMEOUT_S) -> bool:
    """True if a PostgreSQL server answers an SSLRequest at host:port within the timeout."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(SSL_REQUEST)
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


class DatabaseCheck:
    """Cached database reachability, so a storm of health checks costs at most one probe per second."""

    def __init__(self, url: str | None) -> None:
        self.configured = bool(url)
        self.target = parse_db_target(url) if url else None
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._ok = False

    def reachable(self) -> bool:
        """Probe result, at most DB_PROBE_CACHE_S old; concurrent callers wait for one probe, not one each."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at >= DB_PROBE_CACHE_S:
                self._ok = self.target is not None and probe_postgres(*self.target)
                self._checked_at = time.monotonic()
            return self._ok


class AppServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that counts requests in flight, so shutdown can wait for them (bounded)."""

    daemon_threads = True  # a request stuck past the drain timeout must not keep the process alive

    def __init__(self, address: tuple[str, int], version: str, startup_delay_s: float, db: DatabaseCheck,
                 listening: socket.socket | None = None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.version = version
        self.hostname = socket.gethostname()
        self.broken = is_broken(self.hostname)
        self.error_rate, self.delay_s, self.fault, self.errors_after_s = read_faults()
        self.stopping = threading.Event()  # set on SIGTERM: a hanging /health lets go then
        self._served = 0
        self.db = db
        self.started_at = time.monotonic()
        self.startup_delay_s = startup_delay_s
        self._in_flight = 0
        self._idle = threading.Condition()
        if listening is None:
            super().__init__(address, Handler)
            return
        super().__init__(address, Handler, bind_and_activate=False)  # a reload's: already bound and listening
        self.socket.close()
        self.socket = listening
        self.server_address = listening.getsockname()
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the address, which can stall start on a bare host."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        """Count the request before its thread starts, so a shutdown racing with it still waits for it."""
        with self._idle:
            self._in_flight += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> int:
        """Wait until no request is in flight or the timeout passes; return how many are still running."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)
            return self._in_flight

    def page_fails(self) -> bool:
        """Whether this request to / fails: every request whose count crosses the next multiple of
        1/error_rate, so the share of 5xx is exact over any long enough run; none in the first errors_after_s."""
        if time.monotonic() - self.started_at < self.errors_after_s:
            return False
        with self._idle:
            self._served += 1
            served = self._served
        return int(served * self.error_rate) > int((served - 1) * self.error_rate)

    def health(self) -> tuple[int, dict[str, str]]:
        """The health status code and body; the order is: broken build, still starting, database."""
        body = {"status": "ok", "version": self.version}
        if self.broken:
            return HTTPStatus.INTERNAL_SERVER_ERROR, {**body, "status": "broken"}
        if time.monotonic() - self.started_at < self.startup_delay_s:
            return HTTPStatus.SERVICE_UNAVAILABLE, {**body, "status": "starting"}
        if not self.db.configured:
            return HTTPStatus.OK, {**body, "database": "not configured"}
        if not self.db.reachable():
            return HTTPStatus.SERVICE_UNAVAILABLE, {**body, "status": "database unreachable", "database": "unreachable"}
        return HTTPStatus.OK, {**body, "database": "ok"}


class Handler(BaseHTTPRequestHandler):
    """The three endpoints. HTTP/1.0 (the default): one request per connection, so no idle keep-alive
    connection can hold up a drain."""

    server: AppServer
    server_version = "hello"
    timeout = 30  # a client that connects and sends nothing must not pin a thread through a drain

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/":
            time.sleep(self.server.delay_s)
            if self.server.error_rate and self.server.page_fails():
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "faulty build: this request fails\n")
                return
            self._send(HTTPStatus.OK, f"hello from {self.server.hostname} version {self.server.version}\n")
        elif url.path == "/health":
            if self.server.fault == "hang":  # accepts, never answers: a gate must not wait on it past its deadline
                self.server.stopping.wait()
                self.close_connection = True
                return
            status, body = self.server.health()
            self._send(status, json.dumps(body) + "\n", "application/json")
        elif url.path == "/slow":
            try:
                ms = int(parse_qs(url.query).get("ms", ["1000"])[0])
            except ValueError:
                self._send(HTTPStatus.BAD_REQUEST, "ms must be an integer\n")
                return
            ms = max(0, min(ms, SLOW_MAX_MS))
            time.sleep(ms / 1000)
            self._send(HTTPStatus.OK, f"slept {ms} ms\n")
        else:
            self._send(HTTPStatus.NOT_FOUND, "not found\n")

    def _send(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", self.server.version)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """No access log: under systemd every line lands in the journal, once per health check."""


def env_float(name: str, default: float) -> float:
    """A float from the environment; a malformed value falls back to the default rather than failing to start."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="hello: rollwright's sample app")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8080), help="default: $PORT or 8080")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default: 0.0.0.0)")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"hello: {message}", flush=True)


def inherited_socket() -> socket.socket | None:
    """The listening socket a reload handed over (its descriptor in LISTEN_FD_ENV), else None."""
    fd = os.environ.pop(LISTEN_FD_ENV, "")
    return socket.socket(fileno=int(fd)) if fd.isdigit() else None


def reexec(server: AppServer) -> None:
    """Run the code `current` names now, in this process: from `<root>/current` when this release is one of
    `<root>/releases/`, keeping the listening socket open across exec."""
    here, current = HERE, HERE.parent.parent / "current"
    if HERE.parent.name == "releases" and current.is_dir():
        os.chdir(current)  # the kernel resolves the link: the process now runs in the new release's folder
        here = Path.cwd()
    fd = server.socket.fileno()
    os.set_inheritable(fd, True)
    os.environ[LISTEN_FD_ENV] = str(fd)
    os.execv(sys.executable, [sys.executable, str(here / Path(__file__).name), *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    # Block SIGTERM/SIGINT/SIGHUP before any thread exists (threads inherit the mask) and take them with sigwait():
    # no handler runs at an arbitrary point, so there is nothing to deadlock on and nothing to race with.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS | {RELOAD_SIGNAL})
    args = parse_args(argv)
    version = read_version()
    db = DatabaseCheck(os.environ.get("DATABASE_URL") or None)
    server = AppServer((args.host, args.port), version, env_float("STARTUP_DELAY_S", 1.0), db, inherited_socket())
    if server.fault == "crash":
        log(f"version {version} CRASH build: exits at start")
        return 1

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="serve")
    serving.start()
    db_note = f"yes ({format_target(db.target)})" if db.configured else "no"
    broken_note = " BROKEN build: health fails on this host" if server.broken else ""
    log(f"version {version} listening on {args.host}:{server.server_port} database configured: {db_note}{broken_note}")

    signum = signal.sigwait(STOP_SIGNALS | {RELOAD_SIGNAL})
    server.stopping.set()
    server.shutdown()  # stop the accept loop
    if signum == RELOAD_SIGNAL:  # the socket stays open: new connections wait in its backlog
        serving.join(timeout=5)
        left = server.wait_idle(DRAIN_TIMEOUT_S)
        log(f"version {version} reloading on SIGHUP" + (f", {left} request(s) abandoned" if left else ""))
        reexec(server)
    server.server_close()  # close the listening socket: new connections are refused from here on
    serving.join(timeout=5)
    left = server.wait_idle(DRAIN_TIMEOUT_S)
    note = f", {left} request(s) still running after {DRAIN_TIMEOUT_S:.0f} s abandoned" if left else ""
    log(f"version {version} stopped on {signal.Signals(signum).name}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
