"""`rollwright deploy` of command groups on the control node, for real (ansible-runner, local connection):
a failing group stops the deploy unless --continue-on-failure; --group and --skip-group pick groups."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
SPEC = """\
app: groups
groups:
  - name: first
    order: 1
    build_command: "echo first >> @/ran.txt"
    test_command: "test -f @/fail-now && exit 7 || true"
  - name: second
    order: 2
    deploy_command: "echo second {file} >> @/ran.txt"
    file_patterns: ["src/*.txt"]
"""  # @: the test's folder (commands run in the generated project's files/, so what they write goes elsewhere)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "rollwright.yml").write_text(SPEC.replace("@", str(tmp_path)))
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
    lines = proc.stdout.splitlines()  # the plan first, then each step, all before the first play ended
    assert lines[:5] == ["deploying groups to local: command groups first, second",
                         "→ preparing the Ansible project (the playbooks, the roles)",
                         "→ taking the deploy lock (lock.yml)", "→ deploy lock taken",
                         "→ starting ansible-playbook site.yml"]


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


def test_json_progress_is_an_event_stream_ending_with_the_result(project: Path) -> None:
    proc = deploy(project, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "result" and events[-1]["exit_code"] == 0
    assert kinds[:5] == ["plan", "run_phase", "run_phase", "run_phase", "run_phase"]
    assert events[0]["target"] == "local" and events[0]["action"] == "deploy"
    assert "Group 2: second (order 2)" in [e.get("play") for e in events if e["event"] == "play"]
    record = next(e for e in events if e["event"] == "record")
    assert record["status"] == "succeeded" and Path(record["path"]).is_file()
    # what happened and nothing else: no release, so no strategy, artifact or verification; one duration
    saved = json.loads(Path(record["path"]).with_name("record.json").read_text())
    assert (saved["version"], saved["strategy"], saved["verified"], saved["verification"]) == ("", "", False, {})
    row = json.loads(subprocess.run([str(VENV_BIN / "rollwright"), "history", "--json"], cwd=project,
                                    capture_output=True, text=True, check=True).stdout.splitlines()[0])
    assert record["seconds"] == saved["seconds"] == row["seconds"] > 0
    assert f"({saved['seconds']:.1f} s start to finish)" in record["text"]
    logged = Path(record["path"]).read_text()
    assert "| artifact |" not in logged and "| strategy |" not in logged
    assert "| verified | no: verify did not run |" in logged
    refused = deploy(project, "--json", "--group", "nope")
    assert refused.returncode == 2
    assert [json.loads(line)["event"] for line in refused.stdout.splitlines()] == ["error"]
    assert json.loads(refused.stdout)["exit_code"] == 2


@pytest.mark.parametrize(("args", "expected"), [
    (["--group", "second"], ["second src/a b.txt"]),
    (["--skip-group", "second"], ["first"]),
])
def test_group_selection(project: Path, args: list[str], expected: list[str]) -> None:
    proc = deploy(project, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ran(project) == expected


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A webhook receiver on loopback: its URL, and the messages it heard."""
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
        yield f"http://127.0.0.1:{server.server_port}/hook", heard
    finally:
        server.shutdown()


def _here(folder: Path, spec: str, inventory: str = "hosts.yml") -> None:
    """A spec with target `here`: the control node through an inventory (lock and audit log in `folder`)."""
    path = folder / inventory if inventory.endswith(".yml") else folder / inventory / "hosts.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n"
        f"      rollwright_lock_path: {folder}/lock\n      rollwright_audit_log: {folder}/audit.log\n")
    (folder / "rollwright.yml").write_text(spec)


def test_webhook_hears_start_and_end_and_the_record_is_written(
        tmp_path: Path, receiver: tuple[str, list[dict[str, object]]],
        closed_stdout: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """A real deploy on the control node, its webhook a receiver on loopback: start and success arrive.
    Its stdout is a pipe whose reader left (`deploy --json | head -1`): the deploy, its record, history
    row and audit line happen all the same, and it ends quietly."""
    url, heard = receiver
    _here(tmp_path, f"app: hooked\ngroups:\n  - {{name: one, order: 1, "
          f"build_command: 'echo built >> {tmp_path}/ran.txt'}}\n"
          f"targets:\n  here: {{inventory: hosts.yml, webhook: '{url}'}}\n")
    proc = closed_stdout([str(VENV_BIN / "rollwright"), "deploy", "--json", "-t", "here"], tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (tmp_path / "ran.txt").read_text() == "built\n"
    assert [(m["event"], m["status"]) for m in heard] == [("start", "running"), ("success", "succeeded")]
    assert heard[0]["id"] == heard[1]["id"] and heard[1]["verified"] is False  # no release, no verify: not verified
    history = subprocess.run([str(VENV_BIN / "rollwright"), "history", "--json"], cwd=tmp_path,
                             capture_output=True, text=True, check=True)
    assert json.loads(history.stdout.splitlines()[0])["id"] == heard[0]["id"]
    assert not (tmp_path / "lock").exists()  # released
    audit = (tmp_path / "audit.log").read_text().splitlines()
    assert len(audit) == 1 and f"{heard[0]['id']} deploy hooked - succeeded by " in audit[0]


def test_a_failed_deploy_runs_the_on_failure_hooks_and_tells_the_webhook(
        tmp_path: Path, receiver: tuple[str, list[dict[str, object]]]) -> None:
    url, heard = receiver
    _here(tmp_path, "app: hooked\ngroups:\n  - {name: one, order: 1, build_command: 'exit 9'}\n"
          "hooks:\n  on_failure: ['echo \"$ROLLWRIGHT_STATUS $ROLLWRIGHT_TARGET $ROLLWRIGHT_ID\""
          f" > {tmp_path}/paged.txt']\n"
          f"targets:\n  here: {{inventory: hosts.yml, webhook: '{url}'}}\n")
    proc = deploy(tmp_path, "-t", "here")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [(m["event"], m["status"]) for m in heard] == [("start", "running"), ("failure", "failed")]
    assert (tmp_path / "paged.txt").read_text().split() == ["failed", "here", str(heard[0]["id"])]
    assert "ran the on_failure hooks" in proc.stdout
    assert not (tmp_path / "lock").exists()


def test_target_env_and_secrets_reach_commands_and_never_the_output(tmp_path: Path) -> None:
    """`env set` values are the commands' environment and satisfy required env vars; the secret is in no
    output, artifact, record or history; without the vault password a deploy is refused before any run."""
    secret = "s3cret-{{ not templated }}-" + tmp_path.name
    _here(tmp_path, "app: hooked\nrequired_env: [API_TOKEN, GREETING]\ngroups:\n"
          f"  - {{name: one, order: 1, build_command: 'printf %s \"$GREETING $API_TOKEN\" > {tmp_path}/seen.txt'}}\n"
          "targets:\n  here: {inventory: inv}\n", inventory="inv")
    env = {**os.environ, "ROLLWRIGHT_VAULT_PASSWORD": "vault-pw-" + tmp_path.name}
    rollwright = [str(VENV_BIN / "rollwright"), "env", "set"]
    subprocess.run([*rollwright, "GREETING", "hello"], cwd=tmp_path, env=env, check=True, capture_output=True)
    subprocess.run([*rollwright, "API_TOKEN", "--secret"], cwd=tmp_path, env=env, check=True, capture_output=True,
                   input=secret + "\n", text=True)

    refused = deploy(tmp_path)
    assert refused.returncode == 2 and "no vault password" in refused.stderr, refused.stdout + refused.stderr
    assert not (tmp_path / "seen.txt").exists()

    proc = subprocess.run([str(VENV_BIN / "rollwright"), "deploy"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "seen.txt").read_text() == f"hello {secret}"
    assert secret not in proc.stdout + proc.stderr
    state = [p for p in (tmp_path / ".rollwright").rglob("*") if p.is_file()]
    names = {p.name for p in state} | {part for p in state for part in p.parts}
    assert {"history.sqlite", "record.json", "record.md", "job_events", "stdout"} <= names  # what is searched
    assert [p for p in state if secret.encode() in p.read_bytes()] == []
    assert [p for p in (tmp_path / "inv").rglob("*") if p.is_file() and secret.encode() in p.read_bytes()] == []

    # A command that fails saying its secrets: its last 20 lines are in the account and the record, masked.
    (tmp_path / "fail.sh").write_text(
        'for n in $(seq 1 30); do echo "step $n"; done\n'
        'echo "django.db.utils.ProgrammingError: relation \\"no_such_table\\" does not exist" >&2\n'
        'echo "token $API_TOKEN, url postgres://app:pw-in-url@db1/app" >&2\n'
        'echo "LINE 1: SELECT * FROM no_such_table" >&2\necho "                      ^" >&2\nexit 1\n')
    (tmp_path / "rollwright.yml").write_text(
        "app: hooked\nrequired_env: [API_TOKEN]\ngroups:\n  - {name: one, order: 1, build_command: 'sh fail.sh'}\n"
        "targets:\n  here: {inventory: inv}\n")
    failed = subprocess.run([str(VENV_BIN / "rollwright"), "deploy"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    account = failed.stdout[failed.stdout.index("what failed:"):]
    assert 'relation "no_such_table" does not exist' in account and "| step 15\n" in account
    assert "token <secret>, url postgres://app:<secret>@db1/app" in account
    assert secret not in failed.stdout + failed.stderr and "pw-in-url" not in failed.stdout
    row = json.loads(subprocess.run([str(VENV_BIN / "rollwright"), "history", "--json"], cwd=tmp_path,
                                    capture_output=True, text=True, check=True).stdout.splitlines()[0])
    saved = json.loads(Path(row["record"]).read_text())
    said, *tail = saved["failures"][0].splitlines()
    assert said.endswith("exit 1: ^") and len(tail) == 20 and tail[0] == "step 15"
    assert 'django.db.utils.ProgrammingError: relation "no_such_table" does not exist' in tail
    for path in (Path(row["record"]), Path(row["record"]).with_name("record.md")):
        assert secret not in path.read_text() and "pw-in-url" not in path.read_text()


def test_missing_env_vars_are_named_and_nothing_runs(project: Path) -> None:
    spec = project / "rollwright.yml"
    spec.write_text(SPEC.replace("@", str(project))
                    + "required_env: [ROLLWRIGHT_TEST_UNSET_A, ROLLWRIGHT_TEST_UNSET_B]\n")
    proc = deploy(project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused before any change:\n" in proc.stderr
    assert "  - required environment variable ROLLWRIGHT_TEST_UNSET_A is not set\n" in proc.stderr
    assert "  - required environment variable ROLLWRIGHT_TEST_UNSET_B is not set" in proc.stderr
    assert ran(project) == []


def test_a_lock_held_elsewhere_refuses_waits_and_is_released_only_with_force(tmp_path: Path) -> None:
    """`lock status|release` and `--lock-wait` against a lock taken from another control node."""
    _here(tmp_path, "app: locked\ngroups:\n  - {name: one, order: 1, "
          f"build_command: 'echo built >> {tmp_path}/ran.txt'}}\n"
          "targets:\n  here: {inventory: hosts.yml}\n")
    (tmp_path / "lock").mkdir()
    holder = {"id": "20261121T000000Z-beef", "user": "ana@bastion2", "control_host": "bastion2", "pid": 4242,
              "version": "9.9.9", "message": "hotfix for INC-7", "since": 1_700_000_000}
    (tmp_path / "lock" / "holder.json").write_text(json.dumps(holder))

    def rollwright(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV_BIN / "rollwright"), *args, "-t", "here"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, check=False)

    status = rollwright("lock", "status")
    assert status.returncode == 1 and "ana@bastion2 (deploy 20261121T000000Z-beef" in status.stdout, status.stdout
    assert "message: hotfix for INC-7" in status.stdout
    waited = rollwright("deploy", "--lock-wait", "3")
    assert waited.returncode == 2, waited.stdout + waited.stderr
    assert "waiting up to 3s for the deploy lock held by ana@bastion2" in waited.stdout
    assert "the target is locked by ana@bastion2" in waited.stderr and ran(tmp_path) == []
    refused = rollwright("lock", "release")
    assert refused.returncode == 2 and "add --force" in refused.stderr, refused.stderr
    assert (tmp_path / "lock").is_dir()
    released = rollwright("lock", "release", "--force")
    assert released.returncode == 0 and "warning: breaking the deploy lock of ana@bastion2" in released.stdout
    assert not (tmp_path / "lock").exists()
    assert rollwright("deploy").returncode == 0 and ran(tmp_path) == ["built"]
