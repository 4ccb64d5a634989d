"""The health gate's module (roles/healthcheck/library/healthcheck.py) against a real local HTTP server:
the exact version, a deadline that bounds a hanging request, and the reason it gives up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest
from role_files import load_role_file, run_role_module


def _module() -> ModuleType:
    return load_role_file("healthcheck/library/healthcheck.py")


healthcheck = _module()


@pytest.mark.parametrize(("body", "version", "named"), [
    ('{"status": "ok", "version": "10.10"}', "10.1", False),
    ('{"status": "ok", "version": "10.1"}', "10.1", True),
    ('{"status": "ok", "version": "1.0.0-rc1"}', "1.0.0", False),
    ("running 10.10 since noon", "10.1", False),
    ("running 10.1 since noon", "10.1", True),
    ("version=2.0.0+build7", "2.0.0", False),
    ("v2.0.0", "2.0.0", False),  # "v" is in the version alphabet: v2.0.0 is another version
    ("ok (2.0.0)", "2.0.0", True),
    ("anything", "", True),
])
def test_the_version_is_compared_exactly(body: str, version: str, named: bool) -> None:
    assert healthcheck.names_version(body, version)[0] is named


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.server.hang:
            self.server.release.wait(30)
            return
        data = b'{"status": "ok", "version": "10.10"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hang = False
    release = threading.Event()


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def test_a_host_serving_another_version_fails_naming_it(server: _Server) -> None:
    url = f"http://127.0.0.1:{server.server_port}/health"
    result = healthcheck.gate(url, 200, 2, 1, "10.1", "", 2)
    assert result["healthy"] is False
    assert result["reason"] == "not healthy within 2s: serves version 10.10, not 10.1"
    assert healthcheck.gate(url, 200, 2, 1, "10.10", "", 2)["healthy"] is True


def test_a_hanging_endpoint_is_given_up_at_the_deadline(server: _Server) -> None:
    """Each request's timeout is what is left of the deadline: one that never answers cannot stretch it."""
    server.hang = True
    result = healthcheck.gate(f"http://127.0.0.1:{server.server_port}/health", 200, 2, 1, "10.10", "", 2)
    assert result["healthy"] is False
    assert result["reason"].startswith("not healthy within 2s: no answer (timed out")
    assert result["attempts"] == 1  # the one request took the whole deadline, and no request came after it


def test_restart_and_gate_in_one_call_fails_when_the_unit_cannot_restart() -> None:
    """The rollout's one call per batch: a unit systemctl cannot restart fails before any wait, saying why;
    in check mode nothing is restarted and nothing is waited for; a restart needs a unit."""
    args = {"url": "http://127.0.0.1:9/health", "unit": "rollwright-no-such-unit", "restart": True, "timeout_s": 30}
    failed = run_role_module("healthcheck", "healthcheck", args)
    assert failed["failed"] and failed["msg"].startswith("restart of rollwright-no-such-unit failed: ")
    assert "attempts" not in failed  # the gate never ran
    checked = run_role_module("healthcheck", "healthcheck", args, "--check")
    assert not checked["failed"] and checked["changed"] is True and checked["healthy"] is None
    unitless = run_role_module("healthcheck", "healthcheck", {"url": args["url"], "restart": True})
    assert unitless["failed"] and unitless["msg"] == "restart needs the unit to restart"
