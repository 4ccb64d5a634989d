"""`rollwright deploy` of command groups on the control node, for real (ansible-runner, local connection):
a failing group stops the deploy unless --continue-on-failure; --group and --skip-group pick groups."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
SPEC = """\
app: groups
groups:
  - name: first
    order: 1
    build_command: "echo first >> ran.txt"
    test_command: "test -f fail-now && exit 7 || true"
  - name: second
    order: 2
    deploy_command: "echo second {file} >> ran.txt"
    file_patterns: ["src/*.txt"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "rollwright.yml").write_text(SPEC)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a b.txt").write_text("x")
    return tmp_path


def deploy(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "rollwright"), "deploy", *args], cwd=folder, capture_output=True,
                          text=True, timeout=300, check=False)


def ran(folder: Path) -> list[str]:
    path = folder / "ran.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_groups_run_in_order_with_each_file(project: Path) -> None:
    proc = deploy(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ran(project) == ["first", "second src/a b.txt"]
    assert "▸ Group 1: first (order 1)" in proc.stdout


def test_a_failing_group_stops_the_deploy(project: Path) -> None:
    (project / "fail-now").touch()
    proc = deploy(project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ran(project) == ["first"]
    assert "Run test command 1 of group first" in proc.stdout


def test_continue_on_failure_reports_and_goes_on(project: Path) -> None:
    (project / "fail-now").touch()
    proc = deploy(project, "--continue-on-failure")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ran(project) == ["first", "second src/a b.txt"]
    assert "failed but continued (--continue-on-failure): localhost: Run test command 1 of group first: exit 7" \
        in proc.stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["--group", "second"], ["second src/a b.txt"]),
    (["--skip-group", "second"], ["first"]),
])
def test_group_selection(project: Path, args: list[str], expected: list[str]) -> None:
    proc = deploy(project, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ran(project) == expected


def test_webhook_hears_start_and_end_and_the_record_is_written(tmp_path: Path) -> None:
    """A real deploy on the control node, its webhook a receiver on loopback: start and success arrive."""
    heard: list[dict[str, object]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            heard.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "hosts.yml").write_text(
            "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
            "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n"
            f"      rollwright_lock_path: {tmp_path}/lock\n      rollwright_audit_log: {tmp_path}/audit.log\n")
        (tmp_path / "rollwright.yml").write_text(
            "app: hooked\ngroups:\n  - {name: one, order: 1, build_command: 'echo built >> ran.txt'}\n"
            f"targets:\n  here: {{inventory: hosts.yml, webhook: 'http://127.0.0.1:{server.server_port}/hook'}}\n")
        proc = deploy(tmp_path, "-t", "here")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert [(m["event"], m["status"]) for m in heard] == [("start", "running"), ("success", "succeeded")]
        assert heard[0]["id"] == heard[1]["id"] and heard[1]["verified"] is True
        history = subprocess.run([str(VENV_BIN / "rollwright"), "history", "--json"], cwd=tmp_path,
                                 capture_output=True, text=True, check=True)
        assert json.loads(history.stdout)[0]["id"] == heard[0]["id"]
        assert not (tmp_path / "lock").exists()  # released
        audit = (tmp_path / "audit.log").read_text().splitlines()
        assert len(audit) == 1 and f"{heard[0]['id']} deploy hooked - succeeded by " in audit[0]
    finally:
        server.shutdown()


def test_missing_env_vars_are_named_and_nothing_runs(project: Path) -> None:
    spec = project / "rollwright.yml"
    spec.write_text(SPEC + "required_env: [ROLLWRIGHT_TEST_UNSET_A, ROLLWRIGHT_TEST_UNSET_B]\n")
    proc = deploy(project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused before any change:\n" in proc.stderr
    assert "  - required environment variable ROLLWRIGHT_TEST_UNSET_A is not set\n" in proc.stderr
    assert "  - required environment variable ROLLWRIGHT_TEST_UNSET_B is not set" in proc.stderr
    assert ran(project) == []
