"""status.yml's look at a host (roles/healthcheck/library/host_report.py), run by ansible on this machine
against a real local HTTP server: the links, the health answer, and what it says when there is none."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from role_files import run_role_module


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok", "version": "2.0.0"}'
        self.send_response(200 if self.path == "/health" else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "srv"
    for version in ("1.0.0", "2.0.0"):
        (root / "releases" / version).mkdir(parents=True)
    (root / "current").symlink_to(root / "releases" / "2.0.0")
    (root / "previous").symlink_to(root / "releases" / "1.0.0")
    return root


def test_it_reports_the_links_and_the_health_answer(tmp_path: Path, base_url: str) -> None:
    root = _root(tmp_path)
    report = run_role_module("healthcheck", "host_report", {"root": str(root), "unit": "rollwright-test-none",
                                                            "url": f"{base_url}/health"})
    assert report["failed"] is False and report["changed"] is False, report
    assert (report["current"], report["previous"], report["root"]) == ("2.0.0", "1.0.0", str(root))
    assert report["health_status"] == 200 and report["healthy"] is True
    assert report["health_body"] == '{"status": "ok", "version": "2.0.0"}'
    assert report["process_dir"] == ""  # no such unit runs: no process to look at


def test_another_status_is_not_healthy_and_no_answer_says_why(tmp_path: Path, base_url: str) -> None:
    root = _root(tmp_path)
    wrong = run_role_module("healthcheck", "host_report", {"root": str(root), "unit": "x", "url": f"{base_url}/x"})
    assert wrong["health_status"] == 503 and wrong["healthy"] is False, wrong
    nobody = run_role_module("healthcheck", "host_report", {"root": str(tmp_path / "none"), "unit": "x",
                                                            "url": "http://127.0.0.1:9/health"})
    assert nobody["failed"] is False and nobody["health_status"] == -1 and nobody["healthy"] is False, nobody
    assert nobody["health_body"].startswith("no answer") and nobody["current"] == "" == nobody["previous"]


def test_without_a_url_it_asks_nothing(tmp_path: Path) -> None:
    report = run_role_module("healthcheck", "host_report", {"root": str(_root(tmp_path)), "unit": "x"})
    assert report["failed"] is False and report["health_status"] == -1 and report["health_body"] == "", report
    assert report["current"] == "2.0.0"
