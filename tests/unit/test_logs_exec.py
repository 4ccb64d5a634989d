"""`logs` and `exec` without hosts: the ssh and remote argv builders (hostile values reach the command verbatim,
never evaluated), option checks that refuse before anything runs, the multi-host runner, and the exec
wrapper's audit line (run here with sh, a stand-in command in place of systemd-run)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import ansible.inventory.manager  # imported up front: the timing below is the command's own
import ansible.vars.manager  # noqa: F401
import pytest

from rollwright.cli import main
from rollwright.errors import BadInput
from rollwright.run import remote
from rollwright.run.hostexec import RUN_SCRIPT, STOP_SCRIPT, ExecContext, ExecOptions, command_name
from rollwright.run.journal import LogsOptions, journalctl_argv
from rollwright.run.remote import Connection, connection_of, pick_hosts, remote_command, run_on_hosts

HOSTILE = ["$(rm -rf /)", "`id`", "a; rm -rf /", "line one\nline two", "{{ lookup('pipe','id') }}", "it's",
           '"quoted"', "$HOME ${HOME} $$ $1", "%n %i", "\\n \\", "-rf", "--", "", " spaced  out ", "*", "~root"]
SPEC = """\
app: hello
artifact: {path: dist/hello.tar.gz, version: 1.0.0, sha256: "%s"}
release: {root: /srv/hello}
service: {exec: /usr/bin/python3 app.py, user: hello}
health: {path: /health, port: 8080}
targets:
  lab: {inventory: inventory}
  frozen: {inventory: inventory, read_only: true}
""" % ("ab" * 32)
HOSTS = """\
all:
  vars: {ansible_ssh_common_args: -o StrictHostKeyChecking=yes}
  children:
    app:
      hosts:
        app1: {ansible_host: 192.0.2.11}
        app2: {ansible_host: 192.0.2.12, ansible_port: 2222}
        app3: {ansible_host: 192.0.2.13}
"""


def _as_remote_shell_runs_it(command: str) -> list[str]:
    """What a remote shell given `command` passes as arguments (printf stands in for the program)."""
    out = subprocess.run(["sh", "-c", command], capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


@pytest.mark.parametrize("become", [False, True])
def test_every_hostile_argument_reaches_the_remote_command_verbatim(become: bool) -> None:
    command = remote_command(["printf", "%s\\0", *HOSTILE], become=become)
    if become:
        assert command.startswith("sudo -n -- printf ")
        command = command.removeprefix("sudo -n -- ")
    assert _as_remote_shell_runs_it(command) == HOSTILE


def test_the_ssh_argv_is_built_as_ansible_would_with_host_key_checking_left_on() -> None:
    conn = Connection("app2", "-oProxyCommand=evil", 2222, "deploy", "/keys/id ed25519",
                      ("-o", "ServerAliveInterval=15", "-o", "StrictHostKeyChecking=yes"), become=True)
    argv = conn.ssh(["journalctl", "--grep=$(id)"])
    assert argv[:2] == ["ssh", "-T"]
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "deploy"
    assert argv[argv.index("-i") + 1] == "/keys/id ed25519"
    assert argv[-3:-1] == ["--", "-oProxyCommand=evil"]  # an address is never read as an option
    assert argv[-1] == "sudo -n -- journalctl '--grep=$(id)'"
    assert "BatchMode=yes" in argv and not any("StrictHostKeyChecking=no" in a for a in argv)
    assert conn.ssh(["true"], tty=True)[1] == "-tt"


def test_ansible_cfg_multiplexing_options_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("[privilege_escalation]\nbecome = True\n[ssh_connection]\n"
                                          "ssh_args = -o ControlMaster=auto -o ControlPersist=60s "
                                          "-oControlPath=/tmp/x -o ServerAliveInterval=15\n")
    assert remote.ansible_cfg_ssh(tmp_path) == (["-o", "ServerAliveInterval=15"], True)
    assert remote.without_multiplexing(["-C", "-o", "ControlPersist 30s", "-o", "Compression=yes", "-o"]) == [
        "-C", "-o", "Compression=yes", "-o"]


def test_a_connection_reads_ansible_aliases_and_refuses_what_it_cannot_do_without_ansible() -> None:
    conn = connection_of("app1", {"ansible_ssh_host": "10.0.0.1", "ansible_ssh_user": "ops",
                                  "ansible_private_key_file": "/k", "ansible_ssh_extra_args": "-o Compression=yes",
                                  "ansible_become": "yes"}, ["-o", "ServerAliveInterval=15"], False)
    assert (conn.address, conn.user, conn.key_file, conn.become) == ("10.0.0.1", "ops", "/k", True)
    assert conn.options == ("-o", "ServerAliveInterval=15", "-o", "Compression=yes")
    assert connection_of("app1", {}, [], True).address == "app1"
    for hostvars, said in [({"ansible_host": "{{ lookup('pipe', 'id') }}"}, "is a template"),
                           ({"ansible_connection": "local"}, "need ssh"),
                           ({"ansible_become": True, "ansible_become_method": "su"}, "sudo -n"),
                           ({"ansible_port": "22; id"}, "not a port")]:
        with pytest.raises(BadInput, match=said):
            connection_of("app1", hostvars, [], False)


def test_connections_read_group_vars_and_the_project_become(tmp_path: Path) -> None:
    (tmp_path / "inventory" / "group_vars").mkdir(parents=True)
    (tmp_path / "inventory" / "hosts.yml").write_text(HOSTS)
    (tmp_path / "inventory" / "group_vars" / "app.yml").write_text("ansible_user: deploy\n")
    (tmp_path / "ansible.cfg").write_text("[privilege_escalation]\nbecome = True\n")
    found = remote.connections(tmp_path, ["app1", "app2", "app3"])
    assert [(c.host, c.address, c.port, c.user, c.become) for c in found] == [
        ("app1", "192.0.2.11", None, "deploy", True), ("app2", "192.0.2.12", 2222, "deploy", True),
        ("app3", "192.0.2.13", None, "deploy", True)]


def test_hosts_are_picked_by_name_or_comma_list_in_inventory_order() -> None:
    known = ["app1", "app2", "app3"]
    assert pick_hosts(known, []) == known
    assert pick_hosts(known, ["app3,app1", "app1"]) == ["app1", "app3"]
    with pytest.raises(BadInput, match="unknown host 'app9': the app hosts are app1, app2, app3"):
        pick_hosts(known, ["app1,app9"])


def test_journalctl_argv_keeps_each_value_one_argument() -> None:
    argv = journalctl_argv("hello", LogsOptions(follow=True, since="10m", grep="a'b; $(id)", lines=5))
    assert argv == ["journalctl", "--unit=hello.service", "--no-pager", "--quiet", "--output=short-iso", "--lines=5",
                    "--follow", "--since=-10m", "--grep=a'b; $(id)"]
    assert journalctl_argv("hello", LogsOptions()) == ["journalctl", "--unit=hello.service", "--no-pager", "--quiet",
                                                        "--output=short-iso", "--lines=100"]


@pytest.mark.parametrize("since", ["10m", "30s", "2h", "1d", "1w", "999999d"])
def test_since_takes_relative_ages(since: str) -> None:
    LogsOptions(since=since).check()


@pytest.mark.parametrize(("options", "said"), [
    (LogsOptions(since="10"), "expected an age"), (LogsOptions(since="-10m"), "expected an age"),
    (LogsOptions(since="10 m"), "expected an age"), (LogsOptions(since="yesterday"), "expected an age"),
    (LogsOptions(since="10m; id"), "expected an age"), (LogsOptions(since="0m"), "expected an age"),
    (LogsOptions(since="10m\n"), "expected an age"),
    (LogsOptions(lines=-1), "0 to 10000"), (LogsOptions(lines=10001), "0 to 10000"),
    (LogsOptions(grep="("), "not a valid regular expression"), (LogsOptions(grep=""), "empty"),
])
def test_bad_logs_options_are_refused(options: LogsOptions, said: str) -> None:
    with pytest.raises(BadInput, match=said):
        options.check()


def _project(tmp_path: Path) -> Path:
    (tmp_path / "rollwright.yml").write_text(SPEC)
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text(HOSTS)
    return tmp_path / "rollwright.yml"


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.mark.parametrize("argv", [
    ["logs", "-t", "lab", "--host", "app9"], ["logs", "-t", "lab", "--host", "app1,nope"],
    ["logs", "-t", "lab", "--since", "10x"], ["logs", "-t", "lab", "-n", "100000"],
    ["logs", "-t", "lab", "--grep", "[a-"],
    ["exec", "-t", "lab", "--host", "app9", "--", "id"], ["exec", "-t", "lab"], ["exec", "-t", "lab", "--"],
    ["exec", "-t", "lab", "--all", "--host", "app1", "--", "id"],
    ["exec", "-t", "lab", "--release", "../../etc", "--", "id"],
    ["exec", "-t", "lab", "--release", "1.0\n", "--", "id"],
    ["exec", "-t", "lab", "-i", "--all", "--", "sh"], ["exec", "-t", "frozen", "--", "id"],
])
def test_bad_input_exits_2_at_once_and_runs_nothing(tmp_path: Path, argv: list[str], nothing_runs: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec = _project(tmp_path)
    started = time.monotonic()
    assert main([*argv[:1], "--spec", str(spec), *argv[1:]]) == 2
    assert time.monotonic() - started < 1.0
    assert capsys.readouterr().err.startswith("error: ")


def test_an_unknown_host_is_refused_naming_the_known_ones(tmp_path: Path, nothing_runs: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "--spec", str(_project(tmp_path)), "-t", "lab", "--host", "app9"]) == 2
    assert "unknown host 'app9': the app hosts are app1, app2, app3" in capsys.readouterr().err


def test_a_read_only_target_refuses_exec_unless_marked_safe(tmp_path: Path, nothing_runs: None,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(_project(tmp_path))
    assert main(["exec", "--spec", spec, "-t", "frozen", "--", "id"]) == 2
    assert "target frozen is read-only" in capsys.readouterr().err
    with pytest.raises(AssertionError, match="a process was started"):  # marked safe: it goes as far as ssh
        main(["exec", "--spec", spec, "-t", "frozen", "--read-only-safe", "--", "id"])


def _fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An `ssh` on PATH that cannot reach 192.0.2.12 and runs the remote command here for any other host."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text('#!/bin/sh\nfor last; do :; done\nwhile [ "$1" != -- ]; do shift; done\n'
                                 'if [ "$2" = 192.0.2.12 ]; then echo "ssh: connect to host $2 port 2222: '
                                 'Connection refused" >&2; exit 255; fi\n'
                                 'journalctl() { echo "from $ADDRESS: $*"; }\nADDRESS=$2 eval "$last"\n')
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_logs_prefix_each_line_and_name_a_host_that_cannot_be_reached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _fake_ssh(tmp_path, monkeypatch)
    assert main(["logs", "--spec", str(_project(tmp_path)), "-t", "lab", "--grep", "$(id)", "-n", "7"]) == 1
    said = capsys.readouterr()
    args = "--unit=hello.service --no-pager --quiet --output=short-iso --lines=7 --grep=$(id)"
    assert sorted(said.out.splitlines()) == [f"app1 | from 192.0.2.11: {args}", f"app3 | from 192.0.2.13: {args}"]
    assert "app2 | ssh: connect to host 192.0.2.12 port 2222: Connection refused" in said.err
    assert "app2: cannot be reached (ssh exit 255: ssh: connect to host" in said.err


def test_the_runner_passes_lines_as_they_come_and_each_exit_code() -> None:
    lines: list[tuple[str, str, bool]] = []
    finished, stopped = run_on_hosts({
        "a": ["sh", "-c", "echo one; echo two >&2; printf 'no newline'; exit 3"],
        "b": [sys.executable, "-c", "print('é')"],
    }, lambda host, line, is_stderr: lines.append((host, line, is_stderr)))
    assert not stopped
    assert [(f.host, f.exit_code, f.stderr_tail, f.stopped) for f in finished] == [
        ("a", 3, ["two"], False), ("b", 0, [], False)]
    assert sorted(lines) == [("a", "no newline", False), ("a", "one", False), ("a", "two", True), ("b", "é", False)]


def test_sigterm_stops_the_runner_and_ends_every_process_it_started() -> None:
    script = f"import os, signal, time; time.sleep(0.3); os.kill({os.getpid()}, signal.SIGTERM); time.sleep(60)"
    pids: list[int] = []

    def line(host: str, text: str, is_stderr: bool) -> None:
        pids.append(int(text))

    started = time.monotonic()
    finished, stopped = run_on_hosts({"a": [sys.executable, "-c", f"print(__import__('os').getpid(), flush=True); "
                                            f"{script}"],
                                      "b": ["sh", "-c", "echo $$; exec sleep 60"]}, line)
    assert stopped and all(f.stopped for f in finished)
    assert time.monotonic() - started < 30
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


CONTEXT = ExecContext(id="20261204T120000Z-abcd", app="hello", service="hello", user="hello", group="hello",
                      root="/srv/hello", working_dir="", operator="alice@bastion",
                      command=("printf", "%s\\0", *HOSTILE))


def test_systemd_run_gets_the_service_user_env_file_and_release_folder_and_literal_dollars() -> None:
    argv = CONTEXT.systemd_run("2.0.0")
    assert argv[:argv.index("--")] == [
        "systemd-run", "--unit=rollwright-exec-20261204T120000Z-abcd", "--quiet", "--collect", "--wait", "--pipe",
        "--uid=hello", "--gid=hello", "--property=EnvironmentFile=/etc/rollwright/hello.env",
        "--property=NoNewPrivileges=true", "--working-directory=/srv/hello/releases/2.0.0"]
    assert argv[argv.index("--") + 1:] == ["printf", "%s\\0", *(a.replace("$", "$$") for a in HOSTILE)]
    assert "--pty" in CONTEXT.systemd_run("2.0.0", tty=True)


@pytest.mark.parametrize(("working_dir", "expected"), [
    ("", "/srv/hello/releases/2.0.0"), ("src", "/srv/hello/releases/2.0.0/src"),
    ("./src/", "/srv/hello/releases/2.0.0/src"), ("/srv/hello/current/web", "/srv/hello/releases/2.0.0/web"),
    ("/srv/hello/current", "/srv/hello/releases/2.0.0"),
])
def test_the_working_directory_is_the_units_read_in_the_release(working_dir: str, expected: str) -> None:
    context = ExecContext(**{**CONTEXT.__dict__, "working_dir": working_dir})
    assert context.working_directory("2.0.0") == expected


def test_the_audit_name_is_the_command_name_alone() -> None:
    assert command_name(("/usr/bin/python3", "manage.py", "createsuperuser", "--password=secret")) == "python3"
    assert command_name(("my tool\n", "x")) == "my_tool_"
    assert command_name(("a" * 100,)) == "a" * 64


def _wrapper(tmp_path: Path, command: str, *, stopped: bool = False, safe: bool = False) -> tuple[int, str, str]:
    """RUN_SCRIPT as the host runs it, with `command` in place of systemd-run; returns (exit, stdout, audit)."""
    log, mark = tmp_path / "log" / "audit.log", tmp_path / "stopped"
    if stopped:
        mark.touch()
    argv = ["sh", "-c", RUN_SCRIPT, "rollwright-exec", str(log), "ID exec hello 2.0.0",
            "by alice@bastion command=printf", " read-only-safe" if safe else "", "rollwright-exec-ID", str(mark),
            "sh", "-c", command, "sh", *HOSTILE]
    proc = subprocess.run(["sh", "-c", shlex.join(argv)], capture_output=True, text=True, check=False)
    assert not mark.exists()
    return proc.returncode, proc.stdout, log.read_text()


def test_the_wrapper_appends_the_audit_line_with_how_the_command_ended(tmp_path: Path) -> None:
    code, out, audit = _wrapper(tmp_path, 'printf "%s\\0" "$@"; exit 3')
    assert code == 3 and out.split("\0")[:-1] == HOSTILE
    when, rest = audit.split(" ", 1)
    assert time.strptime(when, "%Y-%m-%dT%H:%M:%SZ")
    assert rest == "ID exec hello 2.0.0 failed by alice@bastion command=printf exit=3\n"
    assert oct((tmp_path / "log" / "audit.log").stat().st_mode & 0o777) == "0o640"
    assert _wrapper(tmp_path, "true")[2].endswith(" succeeded by alice@bastion command=printf exit=0\n")
    assert _wrapper(tmp_path, "true", stopped=True)[2].endswith(" interrupted by alice@bastion command=printf "
                                                                 "exit=0\n")
    assert _wrapper(tmp_path, "true", safe=True)[2].endswith(" succeeded by alice@bastion command=printf exit=0 "
                                                            "read-only-safe\n")
    assert len(audit.splitlines()) == 1 and "$(rm" not in (tmp_path / "log" / "audit.log").read_text()


def test_exec_options_and_the_stop_script_are_data() -> None:
    assert CONTEXT.stop_argv() == ["sh", "-c", STOP_SCRIPT, "rollwright-stop", "rollwright-exec-20261204T120000Z-abcd",
                                   "/run/rollwright/rollwright-exec-20261204T120000Z-abcd.stopped"]
    with pytest.raises(BadInput, match="no command"):
        ExecOptions(command=()).check()
    ExecOptions(command=("id",), release="1.0.0+build.7").check()
