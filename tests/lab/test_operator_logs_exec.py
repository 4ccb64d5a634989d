"""`rollwright logs` and `rollwright exec` on real hosts, between deploys: one deploy of the sample app (with a
vault secret in its env) serves the whole module.

The sample app logs one line when it starts and one when it stops, so a restart of its unit is what writes
a line while `logs -f` follows.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from fleets import APP_HOSTS, VAULT_ENV, VENV_BIN, Fleet

from rollwright.lab.fleet import Lab

VERSION = "1.0.0"
OPS_TOKEN = "ops-" + secrets.token_hex(12)
HOSTILE = ["$(touch /tmp/pwned)", "`id`", "a; touch /tmp/pwned", "line one\nline two",
           "{{ lookup('pipe','id') }}", "it's", "$HOME ${HOME} $$ $1", "%n", "\\n", "*", "--"]
AUDIT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (?P<id>\S+) exec hello (?P<version>\S+) (?P<status>\S+) "
                   r"by \S+ command=(?P<command>\S+) exit=(?P<exit>\d+)(?P<safe> read-only-safe)?$")
WAIT_S = 60.0  # an upper bound for a line to arrive, never a sleep


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    fleet = Fleet.beside(lab, tmp_path_factory.mktemp("operator"))
    spec = fleet.spec(VERSION)
    assert fleet.rollwright("env", "set", "OPS_TOKEN", "--secret", "-f", str(spec), "-t", "lab",
                            stdin=OPS_TOKEN).returncode == 0
    deployed = fleet.deploy(spec)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    return fleet


@pytest.fixture(scope="module")
def spec(fleet: Fleet) -> str:
    return str(fleet.spec(VERSION))


def _audit_lines(fleet: Fleet, host: str) -> list[re.Match[str]]:
    text = fleet.lab.run(host, "cat /var/log/rollwright/audit.log", check=True).stdout
    return [m for m in map(AUDIT.match, text.splitlines()) if m]


def _until(what: str, done: object) -> None:
    """Poll `done()` until it is true (bounded by WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


class Streaming:
    """A rollwright command left running (in a session of its own, as a terminal's foreground job), its stdout
    read line by line."""

    def __init__(self, fleet: Fleet, *args: str) -> None:
        self.proc = subprocess.Popen([str(VENV_BIN / "rollwright"), *args], cwd=fleet.folder, env=VAULT_ENV,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {WAIT_S:.0f} s; seen: {self.seen[-20:]}")

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def stop(self, number: signal.Signals) -> tuple[int, str]:
        """Send the signal as a terminal would (to the foreground group); returns (exit code, stderr)."""
        os.killpg(self.proc.pid, number)
        _, err = self.proc.communicate(timeout=WAIT_S)
        return self.proc.returncode, err


def test_logs_show_lines_from_every_app_host_prefixed_by_host(fleet: Fleet, spec: str) -> None:
    proc = fleet.rollwright("logs", "--spec", spec, "-t", "lab", "-n", "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sorted({line.split(" | ")[0] for line in lines}) == APP_HOSTS
    assert all(re.match(r"^(app\d) \| \S+ \1 ", line) for line in lines), lines  # each host's own journal
    assert all(1 <= sum(line.startswith(f"{host} | ") for line in lines) <= 5 for host in APP_HOSTS)
    grep = fleet.rollwright("logs", "--spec", spec, "-t", "lab", "--host", "app3,app1", "--grep", "listening on",
                            "-n", "1", "--since", "1d")
    assert grep.returncode == 0, grep.stderr
    assert sorted(line.split(" | ")[0] for line in grep.stdout.splitlines()) == ["app1", "app3"]
    assert all(f"hello: version {VERSION} listening on" in line for line in grep.stdout.splitlines())


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_logs_follow_streams_a_new_line_and_stops_cleanly(fleet: Fleet, spec: str, number: signal.Signals) -> None:
    follow = Streaming(fleet, "logs", "--spec", spec, "-t", "lab", "-f", "-n", "5")
    follow.wait_for(r"^app2 \| ")  # its journalctl follows now
    ssh_pids = follow.children()
    assert len(ssh_pids) == len(APP_HOSTS)
    fleet.lab.run("app2", "systemctl restart hello", check=True)
    pid = fleet.lab.run("app2", "systemctl show -p MainPID --value hello", check=True).stdout.strip()
    follow.wait_for(rf"^app2 \| .* python3\[{pid}\]: hello: version {VERSION} listening")
    code, err = follow.stop(number)
    assert code == 0, err
    for ssh in ssh_pids:
        with pytest.raises(ProcessLookupError):
            os.kill(ssh, 0)
    for host in APP_HOSTS:
        _until(f"journalctl to end on {host}",
               lambda host=host: fleet.lab.run(host, "pgrep -x journalctl").returncode == 1)


def test_exec_runs_as_the_service_user_in_the_release_with_the_service_env(fleet: Fleet, spec: str) -> None:
    proc = fleet.rollwright("exec", "-f", spec, "-t", "lab", "--", "sh", "-c", "id -un; pwd; env")
    assert proc.returncode == 0, proc.stderr
    user, folder, *env = proc.stdout.splitlines()
    assert (user, folder) == ("hello", f"/srv/hello/releases/{VERSION}")
    assert f"OPS_TOKEN={OPS_TOKEN}" in env and "STARTUP_DELAY_S=1" in env
    every = fleet.rollwright("exec", "-f", spec, "-t", "lab", "--all", "--", "id", "-un")
    assert every.returncode == 0, every.stderr
    assert sorted(every.stdout.splitlines()) == [f"{host} | hello" for host in APP_HOSTS]
    assert "app1: exit 0, app2: exit 0, app3: exit 0" in every.stderr
    # the secret reached the command, and nothing else: not the journal, the audit log or any file of ours
    logs = fleet.rollwright("logs", "--spec", spec, "-t", "lab", "-n", "1000")
    assert logs.returncode == 0 and OPS_TOKEN not in logs.stdout + logs.stderr
    for host in APP_HOSTS:
        assert OPS_TOKEN not in fleet.lab.run(host, "cat /var/log/rollwright/audit.log", check=True).stdout
    files = [p for p in (fleet.folder / ".rollwright").rglob("*") if p.is_file()]
    assert [p for p in files if OPS_TOKEN.encode() in p.read_bytes()] == []


def test_exec_prints_hostile_arguments_verbatim_and_evaluates_none(fleet: Fleet, spec: str) -> None:
    proc = fleet.rollwright("exec", "-f", spec, "-t", "lab", "--host", "app2", "--", "printf", "[%s]\\n", *HOSTILE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "".join(f"[{arg}]\n" for arg in HOSTILE)
    assert fleet.lab.run("app2", "test -e /tmp/pwned").returncode == 1


def test_exec_audits_each_host_it_ran_on_and_fails_naming_the_hosts(fleet: Fleet, spec: str) -> None:
    before = {host: len(_audit_lines(fleet, host)) for host in APP_HOSTS}
    proc = fleet.rollwright("exec", "-f", spec, "-t", "lab", "--host", "app3", "--host", "app1", "--",
                            "sh", "-c", 'test "$(hostname)" = app1', "--password=never-logged")
    assert proc.returncode == 1
    assert "app1: exit 0, app3: exit 1" in proc.stderr and "the command failed on app3" in proc.stderr
    assert len(_audit_lines(fleet, "app2")) == before["app2"]
    ids = set()
    for host, status, code in (("app1", "succeeded", "0"), ("app3", "failed", "1")):
        lines = _audit_lines(fleet, host)
        assert len(lines) == before[host] + 1
        line = lines[-1]
        assert (line["version"], line["status"], line["command"], line["exit"]) == (VERSION, status, "sh", code)
        ids.add(line["id"])
    assert len(ids) == 1  # one exec, one id on every host
    assert "never-logged" not in fleet.lab.run("app3", "cat /var/log/rollwright/audit.log").stdout


def test_exec_in_a_staged_release_and_refused_where_it_is_not_staged(fleet: Fleet, spec: str) -> None:
    staged = fleet.rollwright("exec", "-f", spec, "-t", "lab", "--release", VERSION, "--", "cat", "REVISION")
    assert (staged.returncode, staged.stdout.strip()) == (0, VERSION), staged.stderr
    before = len(_audit_lines(fleet, "app1"))
    missing = fleet.rollwright("exec", "-f", spec, "-t", "lab", "--all", "--release", "9.9.9", "--", "true")
    assert missing.returncode == 2
    assert "release 9.9.9 is not staged on app1, app2, app3" in missing.stderr
    assert len(_audit_lines(fleet, "app1")) == before  # nothing ran


def test_exec_on_a_read_only_target_needs_the_operators_word(fleet: Fleet, spec: str) -> None:
    data = yaml.safe_load(Path(spec).read_text())
    data["targets"]["lab"]["read_only"] = True
    read_only = fleet.folder / "hello-read-only.yml"
    read_only.write_text(yaml.safe_dump(data))
    refused = fleet.rollwright("exec", "-f", str(read_only), "-t", "lab", "--", "id", "-un")
    assert refused.returncode == 2 and "target lab is read-only" in refused.stderr
    safe = fleet.rollwright("exec", "-f", str(read_only), "-t", "lab", "--read-only-safe", "--", "id", "-un")
    assert (safe.returncode, safe.stdout) == (0, "hello\n"), safe.stderr
    assert _audit_lines(fleet, "app1")[-1]["safe"] == " read-only-safe"


def test_an_interactive_session_gets_a_terminal_on_one_host(fleet: Fleet, spec: str) -> None:
    command = shlex.join([str(VENV_BIN / "rollwright"), "exec", "-f", spec, "-t", "lab", "--host", "app2", "-i", "--",
                          "sh", "-c", "test -t 0 && tty && id -un && pwd"])
    proc = subprocess.run(["script", "-qec", command, "/dev/null"], cwd=fleet.folder, env=VAULT_ENV, timeout=120,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(rf"/dev/pts/\d+\r?\nhello\r?\n/srv/hello/releases/{VERSION}", proc.stdout), proc.stdout
    assert _audit_lines(fleet, "app2")[-1]["status"] == "succeeded"


def test_ctrl_c_stops_the_command_on_every_host(fleet: Fleet, spec: str) -> None:
    run = Streaming(fleet, "exec", "-f", spec, "-t", "lab", "--all", "--", "sleep", "600")
    for host in APP_HOSTS:
        _until(f"sleep to run on {host}", lambda host=host: fleet.lab.run(host, "pgrep -x sleep").returncode == 0)
    code, err = run.stop(signal.SIGINT)
    assert code == 130, err
    for host in APP_HOSTS:
        _until(f"sleep to end on {host}", lambda host=host: fleet.lab.run(host, "pgrep -x sleep").returncode == 1)
        _until(f"the audit line on {host}", lambda host=host: _audit_lines(fleet, host)[-1]["command"] == "sleep")
        assert _audit_lines(fleet, host)[-1]["status"] == "interrupted"
