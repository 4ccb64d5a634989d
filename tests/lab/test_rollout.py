"""Acceptance of issue 4 on real hosts: rolling deploys behind HAProxy, health gates, whole-fleet rollback.

The tests run in file order and build on each other (v1, then v2 under load, then failures that must
leave the fleet on v2), like a day of deploys to one fleet. Every request of the bounded load goes
through the lab's HAProxy; a single failed request fails the test.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fleets import APP_HOSTS, LOAD_RATE, VAULT_ENV, VENV_BIN, Fleet

from rollwright.lab import sample
from rollwright.lab.fleet import Lab
from rollwright.lab.load import Load

MIN_REQUESTS = 2000
API_TOKEN = "tok-" + secrets.token_hex(12)
OTEL = "deployment.environment=lab,service.version=0.0.1"  # the target's own: a service.version is replaced


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """The fleet, with a vault secret for the app set before its first deploy."""
    fleet = Fleet.beside(lab, tmp_path_factory.mktemp("rollout"))
    spec = fleet.spec("1.0.0")
    assert fleet.rollwright("env", "set", "API_TOKEN", "--secret", "-f", str(spec), "-t", "lab",
                            stdin=API_TOKEN).returncode == 0
    assert fleet.rollwright("env", "set", "GREETING", "hi", "-f", str(spec), "-t", "lab").returncode == 0
    assert fleet.rollwright("env", "set", "OTEL_RESOURCE_ATTRIBUTES", OTEL, "-f", str(spec), "-t", "lab",
                            ).returncode == 0
    return fleet


def _environ(fleet: Fleet, host: str) -> dict[str, str]:
    """The environment the service's main process started with (/proc/<MainPID>/environ)."""
    pid = fleet.lab.run(host, "systemctl show -p MainPID --value hello").stdout.strip()
    raw = fleet.lab.run(host, f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def _stat_loops_left(fleet: Fleet) -> str:
    """The live numbers' `show stat` loop still running on lb1 (it ends with its ssh connection), or ''."""
    for _ in range(40):
        left = fleet.lab.run("lb1", "pgrep -af 'rollwright-stat-[e]nd' || true").stdout.strip()
        if not left:
            return ""
        time.sleep(0.25)
    return left


def test_first_deploy_then_zero_downtime_rollout_under_load(fleet: Fleet) -> None:
    first = fleet.deploy(fleet.spec("1.0.0"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert fleet.versions(fleet.spec("1.0.0")) == dict.fromkeys(APP_HOSTS, "1.0.0")

    proc, load = fleet.deploy_under_load(fleet.spec("2.0.0"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert load.sent >= MIN_REQUESTS, load.summary()
    assert load.failed == 0, load.summary()
    assert set(load.versions) == {"1.0.0", "2.0.0"}, load.summary()  # traffic really crossed the switch
    assert fleet.versions(fleet.spec("2.0.0")) == dict.fromkeys(APP_HOSTS, "2.0.0")
    for batch in ("batch 1/3", "batch 2/3", "batch 3/3"):
        assert batch in proc.stdout
    # the load balancer's live numbers: a line per finished batch (plain output), the last with two hosts on the
    # new release taking the traffic; the sampler's ssh and its loop on lb1 are gone with the rollout
    numbers = [line for line in proc.stdout.splitlines() if line.startswith("    load balancer: new release ")]
    assert numbers, proc.stdout
    last = numbers[-1].split("new release ", 1)[1]
    assert float(last.split(" req/s")[0]) > 0 and "; others " in last, numbers
    assert _stat_loops_left(fleet) == ""
    # the deployed version in the service's environment, the target's OTEL attributes kept
    for host in APP_HOSTS:
        environ = _environ(fleet, host)
        assert (environ["ROLLWRIGHT_VERSION"], environ["ROLLWRIGHT_RELEASE"]) == ("2.0.0", "/srv/hello/releases/2.0.0")
        assert environ["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment=lab,service.version=2.0.0"


def test_secrets_never_reach_output_artifacts_records_or_history(fleet: Fleet) -> None:
    """The database password (a 0600 file the inventory reads) and a vault secret (`env set --secret`)."""
    password = fleet.lab.db_password_file.read_text().strip()
    assert len(password) >= 16
    for host in APP_HOSTS:
        env_file = fleet.lab.run(host, "cat /etc/rollwright/hello.env").stdout
        assert password in env_file and f'API_TOKEN="{API_TOKEN}"' in env_file  # the app does get them...
        assert 'GREETING="hi"' in env_file
    files = [p for p in (fleet.folder / ".rollwright").rglob("*") if p.is_file()]
    assert {"history.sqlite", "record.json", "record.md", "job_events"} <= {n for p in files for n in p.parts}
    for secret in (password, API_TOKEN, VAULT_ENV["ROLLWRIGHT_VAULT_PASSWORD"]):
        assert [p for p in files if secret.encode() in p.read_bytes()] == []  # ...but no file of ours holds them
        assert not any(secret in text for text in fleet.said)  # nor anything rollwright printed


def test_redeploying_the_same_version_changes_nothing(fleet: Fleet) -> None:
    """One read-only look (current.yml) says it is deployed: no lock, no rollout, no process restarted."""
    before = fleet.main_pids()
    spec = fleet.spec("2.0.0")
    proc = fleet.deploy(spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "already deployed: every app host runs hello 2.0.0, healthy and in service" in proc.stdout, proc.stdout
    assert "Roll out in batches" not in proc.stdout and " drain" not in proc.stdout and " restart" not in proc.stdout
    assert fleet.main_pids() == before
    record = json.loads(fleet.rollwright("show", _newest_deploy(fleet, spec), "-f", str(spec), "--json").stdout)
    assert (record["status"], record["version"], record["verified"]) == ("succeeded", "2.0.0", False), record
    assert [host["running"] for host in record["hosts"]] == ["2.0.0"] * len(APP_HOSTS)


def test_broken_release_is_rolled_back_without_failing_a_request(fleet: Fleet) -> None:
    proc, load = fleet.deploy_under_load(fleet.spec("3.0.0", broken=True))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert load.failed == 0, load.summary()
    assert "3.0.0" in proc.stdout and '"status": "broken"' in proc.stdout
    assert "release 3.0.0 is not serving anywhere" in proc.stdout
    assert fleet.versions(fleet.spec("2.0.0")) == dict.fromkeys(APP_HOSTS, "2.0.0")


def test_failure_in_a_later_batch_rolls_back_the_earlier_batches(fleet: Fleet) -> None:
    spec = fleet.spec("4.0.0", broken_on=["app3"], batches=[1, 2])
    proc, load = fleet.deploy_under_load(spec)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert load.failed == 0, load.summary()
    assert "rolled back by their health gate: app3" in proc.stdout
    assert "rolled back by the runner: app1, app2" in proc.stdout
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "2.0.0")
    assert "4.0.0" in load.versions  # app1 and app2 really served 4.0.0 before going back


def test_interrupted_deploy_restores_the_fleet(fleet: Fleet) -> None:
    """Ctrl-C while app2 (batch 2) is being switched: app1 and, if it got that far, app2 go back."""
    spec = fleet.spec("4.1.0")
    command = [str(VENV_BIN / "rollwright"), "deploy", "-f", str(spec), "-t", "lab"]
    lines: list[str] = []
    with Load(fleet.lab.hosts["lb1"].address, 80, rate=LOAD_RATE) as load:
        proc = subprocess.Popen(command, cwd=fleet.folder, stdout=subprocess.PIPE, text=True, env=VAULT_ENV)
        try:
            assert proc.stdout is not None
            interrupted = False
            for line in proc.stdout:
                lines.append(line)
                # one Ctrl-C: the restore drains app2 again when app2 got switched, and a second one would stop it
                if line.split() == ["app2", "drain"] and not interrupted:
                    interrupted = True
                    time.sleep(0.3)
                    proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
    out = "".join(lines)
    print(out, load.result.summary(), file=sys.stderr)
    assert code == 1, out
    assert "interrupted; restoring the fleet" in out
    assert "rolling back the hosts this deploy switched: app1" in out
    assert load.result.failed == 0, load.result.summary()
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "2.0.0")
    stat = fleet.lab.run("lb1", "echo 'show stat' | socat stdio /run/haproxy/admin.sock").stdout
    rows = [row.split(",") for row in stat.splitlines() if row.startswith("app,app")]
    assert {row[1]: row[17] for row in rows} == dict.fromkeys(APP_HOSTS, "UP")
    assert fleet.rollwright("lock", "status", "-f", str(spec), "-t", "lab").stdout.strip() == "not locked"


def test_checksum_mismatch_refuses_before_touching_any_host(fleet: Fleet) -> None:
    spec = fleet.spec("5.0.0", sha256="0" * 64)
    proc = fleet.deploy(spec)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused before any change" in proc.stderr and "artifact sha256 mismatch" in proc.stderr
    for host in APP_HOSTS:
        probe = fleet.lab.run(host, "ls /srv/hello/releases /srv/hello/artifacts").stdout
        assert "5.0.0" not in probe, host
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "2.0.0")



def test_every_preflight_problem_is_listed_before_any_change(fleet: Fleet) -> None:
    """Missing env var, checksum mismatch, freeze window, unpromoted artifact, an unreachable host, HAProxy's
    admin socket gone from lb1 and app1's release root out of inodes (a 200-inode tmpfs over it) on a
    production target: one refusal naming all seven, exit 2, no host touched."""
    spec = fleet.spec("5.1.0", sha256="0" * 64)
    data = yaml.safe_load(spec.read_text())
    inventory = yaml.safe_load(fleet.lab.inventory_path.read_text())
    app1 = inventory["all"]["children"]["app"]["hosts"]["app1"]["ansible_host"]
    unused = app1.rsplit(".", 1)[0] + ".250"  # in the lab's own subnet, nobody there
    inventory["all"]["children"]["app"]["hosts"]["app9"] = {"ansible_host": unused}
    (fleet.folder / "prod-hosts.yml").write_text(yaml.safe_dump(inventory))
    now = datetime.now(UTC)
    data["required_env"] = ["ROLLWRIGHT_TEST_NEVER_SET"]
    data["targets"]["prod"] = {
        "inventory": str(fleet.folder / "prod-hosts.yml"), "production": True, "after": "lab",
        "freeze": [{"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat(),
                    "reason": "year-end"}]}
    spec.write_text(yaml.safe_dump(data))
    socket = "/run/haproxy/admin.sock"
    fleet.lab.run("app1", "mount -t tmpfs -o size=1g,nr_inodes=200 rollwright-test /srv/hello", check=True)
    try:
        fleet.lab.run("lb1", f"mv {socket} {socket}.aside", check=True)  # HAProxy still listens, unreachable by path
        try:
            proc = fleet.rollwright("deploy", "-f", str(spec), "-t", "prod")
        finally:
            fleet.lab.run("lb1", f"mv {socket}.aside {socket}", check=True)
    finally:
        fleet.lab.run("app1", "umount /srv/hello", check=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    listed = [line for line in proc.stderr.splitlines() if line.startswith("  - ")]
    assert len(listed) == 7, proc.stderr
    for expected in ("ROLLWRIGHT_TEST_NEVER_SET is not set", "artifact sha256 mismatch", "change freeze on prod",
                     "has no successful, verified deploy on lab", "app9 does not answer",
                     f"lb1: HAProxy's admin socket {socket} is missing on lb1",
                     "app1: only 199 free inodes on /srv/hello for /srv/hello, 10000 needed"):
        assert any(expected in line for line in listed), (expected, proc.stderr)
    assert fleet.versions(fleet.spec("2.0.0")) == dict.fromkeys(APP_HOSTS, "2.0.0")


def test_rollback_command_steps_back_and_to_a_named_version(fleet: Fleet) -> None:
    spec = fleet.spec("2.0.0")
    back = fleet.rollwright("rollback", "-f", str(spec), "-t", "lab")
    assert back.returncode == 0, back.stdout + back.stderr
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "1.0.0")
    assert _environ(fleet, "app1")["ROLLWRIGHT_VERSION"] == "1.0.0"  # the old release's process names its version
    forward = fleet.rollwright("rollback", "-f", str(spec), "-t", "lab", "--to", "2.0.0")
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "2.0.0")
    assert _environ(fleet, "app1")["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment=lab,service.version=2.0.0"



def test_history_show_and_status_agree_with_the_hosts(fleet: Fleet) -> None:
    """Every deploy and rollback above left a record; the newest ones say what the hosts say."""
    spec = fleet.spec("2.0.0")
    rows = [json.loads(line) for line in
            fleet.rollwright("history", "-f", str(spec), "-t", "lab", "--json").stdout.splitlines()]
    seen = [(row["action"], row["version"], row["status"], bool(row["verified"])) for row in reversed(rows)]
    assert seen == [
        ("deploy", "1.0.0", "succeeded", True), ("deploy", "2.0.0", "succeeded", True),
        ("deploy", "2.0.0", "succeeded", False), ("deploy", "3.0.0", "failed", False),  # the no-op: no verify ran
        ("deploy", "4.0.0", "failed", False), ("deploy", "4.1.0", "interrupted", False),
        ("rollback", "1.0.0", "succeeded", False), ("rollback", "2.0.0", "succeeded", False)]  # refusals leave none
    later_batch = json.loads(fleet.rollwright("show", rows[3]["id"], "-f", str(spec), "--json").stdout)
    assert later_batch["rolled_back_by_gate"] == ["app3"] and later_batch["rolled_back_by_runner"] == ["app1", "app2"]
    shown = fleet.rollwright("show", rows[2]["id"], "-f", str(spec))
    assert shown.stdout.startswith("# Deploy hello 4.1.0 to lab: interrupted\n")
    newest = json.loads(fleet.rollwright("show", rows[0]["id"], "-f", str(spec), "--json").stdout)
    assert {h["name"]: h["current"] for h in newest["hosts"]} == fleet.versions(spec)
    # a rollback's own hosts are not a gate's rescue, and no verify ran after it: the record says neither
    assert (newest["failures"], newest["rolled_back_by_gate"], newest["verified"]) == ([], [], False)
    assert "| verified | no: verify did not run |" in fleet.rollwright("show", rows[0]["id"], "-f", str(spec)).stdout
    for row in rows:  # one duration, start to finish, in the history and the record
        record = json.loads(Path(row["record"]).read_text())
        took = (datetime.fromisoformat(record["finished_at"]) - datetime.fromisoformat(record["started_at"]))
        assert row["seconds"] == record["seconds"] and abs(record["seconds"] - took.total_seconds()) <= 1.5, record
    folder = Path(rows[0]["record"]).parent
    assert {p.name for p in folder.iterdir()} == {"record.json", "record.md"}
    touched = [row for row in rows if not json.loads(Path(row["record"]).read_text())["summary"].startswith(
        "already deployed")]  # the no-op redeploy touched no host
    assert len(touched) == len(rows) - 1
    for host in ("app1", "app3", "lb1"):  # every host the deploys concerned (no database here) keeps a line per run
        audit = fleet.lab.run(host, "cat /var/log/rollwright/audit.log").stdout
        assert all(row["id"] in audit for row in touched), host
        assert rows[-3]["id"] not in audit, host
    first = Path(rows[-1]["record"]).parent
    assert {p.name for p in first.iterdir()} == {"record.json", "record.md", "checklist.md", "rollback-plan.md"}



def _start(fleet: Fleet, spec: Path, *extra: str) -> subprocess.Popen[str]:
    command = [str(VENV_BIN / "rollwright"), "deploy", "-f", str(spec), "-t", "lab", *extra]
    return subprocess.Popen(command, cwd=fleet.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=VAULT_ENV)


def _read_until(proc: subprocess.Popen[str], marker: str, lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return
    raise AssertionError("".join(lines))


def test_one_deploy_at_a_time_per_target(fleet: Fleet) -> None:
    """While a deploy runs, a second one is refused naming the holder; with --lock-wait it waits its turn."""
    spec = fleet.spec("2.0.0")
    lines: list[str] = []
    first = _start(fleet, spec, "--message", "friday fix")
    waiting: subprocess.Popen[str] | None = None
    try:
        _read_until(first, "▸ Preflight on the hosts", lines)  # the lock is taken before site.yml starts
        second = fleet.deploy(spec)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "the target is locked by" in second.stderr and "message: friday fix" in second.stderr
        waiting = _start(fleet, spec, "--lock-wait", "300")
        out, _ = first.communicate(timeout=600)
        assert first.returncode == 0, "".join(lines) + out
        waited, _ = waiting.communicate(timeout=600)
        assert waiting.returncode == 0 and "waiting up to 300s for the deploy lock" in waited, waited
    finally:
        for proc in (first, waiting):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert fleet.rollwright("lock", "status", "-f", str(spec), "-t", "lab").stdout.strip() == "not locked"


def test_a_lock_left_by_a_killed_deploy_is_broken_with_a_warning(fleet: Fleet) -> None:
    spec = fleet.spec("2.1.0")  # a release not deployed yet: the normal path, which takes the lock
    lines: list[str] = []
    killed = _start(fleet, spec)
    try:
        _read_until(killed, "▸ Preflight on the hosts", lines)
    finally:
        killed.kill()  # SIGKILL: no chance to release the lock
        killed.wait(timeout=60)
    held = fleet.rollwright("lock", "status", "-f", str(spec), "-t", "lab")
    assert held.returncode == 1 and f"pid {killed.pid}" in held.stdout
    after = fleet.deploy(spec)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "warning: breaking the deploy lock of" in after.stdout and "that process is gone" in after.stdout


def test_a_tarball_tar_refuses_fails_the_deploy_naming_the_member_and_why(fleet: Fleet) -> None:
    built, _ = sample.build("5.9.0", fleet.folder / "dist")
    bad = fleet.folder / "dist" / "hello-5.9.0-dotdot.tar.gz"
    with tarfile.open(built) as good, tarfile.open(bad, "w:gz") as out:
        for member in good.getmembers():
            out.addfile(member, good.extractfile(member) if member.isfile() else None)
        escape = tarfile.TarInfo("../escape.txt")
        escape.size = 4
        out.addfile(escape, io.BytesIO(b"out\n"))
    sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    spec = sample.write_spec(fleet.folder, fleet.inventory, bad, sha, "5.9.0", name="hello-5.9.0-dotdot.yml")
    proc = fleet.deploy(spec)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = proc.stdout + proc.stderr
    assert "cannot unpack /srv/hello/artifacts/5.9.0.tar.gz: " in said, said
    assert "tar: ../escape.txt: Member name contains '..'" in said, said
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "2.1.0")  # where the lock test above left it
    for host in APP_HOSTS:
        left = fleet.lab.run(host, "ls /srv/hello/releases").stdout.split()
        assert "5.9.0" not in left and "escape.txt" not in left, (host, left)


def test_keep_n_releases_after_n_plus_two_deploys(fleet: Fleet) -> None:
    keep = 2  # the least a spec may keep: the fewest deploys that prove it
    versions = [f"6.0.{n}" for n in range(1, keep + 3)]
    for version in versions:  # one batch each: what is kept does not depend on the batches
        proc = fleet.deploy(fleet.spec(version, keep=keep, batches=["100%"]))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in APP_HOSTS:
        releases = fleet.lab.run(host, "ls /srv/hello/releases").stdout.split()
        links = fleet.lab.run(host, "readlink /srv/hello/current /srv/hello/previous").stdout.split()
        assert sorted(releases) == versions[-keep:], host
        assert [Path(link).name for link in links] == [versions[-1], versions[-2]], host
        assert fleet.lab.run(host, f"test -f /srv/hello/releases/{versions[-2]}/REVISION").returncode == 0


def test_limit_deploys_only_the_named_hosts(fleet: Fleet) -> None:
    spec = fleet.spec("6.1.0", keep=3, batches=["50%"])
    proc = fleet.deploy(spec, "--limit", "app1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fleet.versions(spec) == {"app1": "6.1.0", "app2": "6.0.4", "app3": "6.0.4"}
    for host in ("app2", "app3"):
        assert "6.1.0" not in fleet.lab.run(host, "ls /srv/hello/releases").stdout, host  # not even staged


def test_drift_names_a_hand_edited_unit_and_a_deploy_repairs_it(fleet: Fleet) -> None:
    """`drift` and `deploy --check` change nothing and say which host and file differ from the spec."""
    spec = fleet.spec("6.1.0", keep=3, batches=["50%"])
    split = fleet.rollwright("drift", "-f", str(spec), "-t", "lab")
    assert split.returncode == 1 and "current is 6.0.4, the spec says 6.1.0" in split.stdout  # after --limit app1
    assert fleet.deploy(spec).returncode == 0
    clean = fleet.rollwright("drift", "-f", str(spec), "-t", "lab")
    assert clean.returncode == 0 and "no drift" in clean.stdout, clean.stdout
    checked = fleet.deploy(spec, "--check")
    assert checked.returncode == 0 and "nothing would change" in checked.stdout, checked.stdout
    unit = "/etc/systemd/system/hello.service"
    fleet.lab.run("app2", f"sed -i 's/^TimeoutStopSec=.*/TimeoutStopSec=5/' {unit}", check=True)
    drifted = fleet.rollwright("drift", "-f", str(spec), "-t", "lab", "--json")
    assert drifted.returncode == 1
    found = json.loads(drifted.stdout)["changes"]
    assert list(found) == ["app2"] and any(unit in item for item in found["app2"]), found
    would = fleet.deploy(spec, "--check")  # the whole site.yml in check mode: app2 would be updated
    installed = f"Install the service (account, 0600 env file, systemd unit, enabled; no restart): {unit}"
    assert would.returncode == 1 and installed in would.stdout and "Restart" in would.stdout
    assert "app1:" not in would.stdout and "app3:" not in would.stdout
    assert fleet.deploy(spec).returncode == 0  # the unit changed, so app2 is updated (and restarted)
    assert fleet.rollwright("drift", "-f", str(spec), "-t", "lab").returncode == 0


# On an app host: poll the sample app's health until it answers 200, at most 100 tries 0.1 s apart.
WAIT_HEALTHY = ("python3 -c 'import time, urllib.request\n"
                "for _ in range(100):\n"
                "    try:\n"
                "        urllib.request.urlopen(\"http://127.0.0.1:8080/health\", timeout=1); raise SystemExit(0)\n"
                "    except OSError:\n"
                "        time.sleep(0.1)\n"
                "raise SystemExit(1)'")


def test_verify_proves_the_fleet_and_names_a_hand_broken_host(fleet: Fleet) -> None:
    """Issue 7: the generated testinfra suite, through `rollwright verify` and through plain pytest."""
    spec = fleet.spec("6.1.0", keep=3, batches=["50%"])
    passed = fleet.rollwright("verify", "-f", str(spec), "-t", "lab", "--json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert json.loads(passed.stdout)["passed"] >= 7 * len(APP_HOSTS) + 1  # seven checks per app host, and the LB
    record = json.loads(fleet.rollwright("show", _newest_deploy(fleet, spec), "-f", str(spec), "--json").stdout)
    assert record["verification"]["ok"] is True and record["verified"] is True  # the deploy ran it too

    fleet.lab.run("app2", "systemctl stop hello", check=True)
    fleet.lab.run("app3", "ln -sfn /srv/hello/releases/6.0.4 /srv/hello/current", check=True)
    time.sleep(3)  # HAProxy marks app2 down after two failed checks a second apart
    try:
        broken = fleet.rollwright("verify", "-f", str(spec), "-t", "lab")
        assert broken.returncode == 1, broken.stdout + broken.stderr
        failed = [line.split() for line in broken.stdout.splitlines() if line.startswith("    ")]
        assert ["app2", "unit", "is", "enabled", "and", "running:", "hello.service", "is", "not", "running"] in failed
        assert any(line[:5] == ["app3", "current", "is", "the", "deployed"] for line in failed), broken.stdout
        assert any(line[0] == "lb1" and "app2" in line for line in failed), broken.stdout  # not ready in the LB
        assert not any(line[0] == "app1" for line in failed), broken.stdout
        told = fleet.rollwright("status", "-f", str(spec), "-t", "lab").stdout.splitlines()  # what runs, not current
        assert told[3].split()[:2] == ["app3", "6.1.0"] and "current is 6.0.4 but the process runs 6.1.0" in told[3]
        assert "the service is not running" in told[2] and "DOWN in lb1" in told[2], told
    finally:
        fleet.lab.run("app3", "ln -sfn /srv/hello/releases/6.1.0 /srv/hello/current", check=True)
        fleet.lab.run("app2", "systemctl start hello", check=True)
    fleet.lab.run("app2", WAIT_HEALTHY, check=True)  # the restarted app answers 503 while it warms up

    project = max((fleet.folder / ".rollwright" / "lab" / "projects").iterdir(), key=lambda p: p.stat().st_mtime)
    plain = subprocess.run([sys.executable, "-m", "pytest", "verify/test_app.py", "--hosts=ansible://app",
                            "--ansible-inventory=inventory", "-q"], cwd=project, capture_output=True, text=True,
                           timeout=300, check=False, env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
                                                          "ANSIBLE_VAULT_PASSWORD_FILE": str(_vault_password(fleet))})
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert f"{7 * len(APP_HOSTS)} passed" in plain.stdout, plain.stdout


def _newest_deploy(fleet: Fleet, spec: Path) -> str:
    rows = [json.loads(line) for line in
            fleet.rollwright("history", "-f", str(spec), "-t", "lab", "--json").stdout.splitlines()]
    return str(next(row["id"] for row in rows if row["action"] == "deploy" and row["status"] == "succeeded"))


def _vault_password(fleet: Fleet) -> Path:
    """A vault password file, as a plain pytest run takes it (ansible-inventory opens the target's vault)."""
    path = fleet.folder / "vault-password"
    path.write_text(VAULT_ENV["ROLLWRIGHT_VAULT_PASSWORD"] + "\n")
    path.chmod(0o600)
    return path


def test_a_failed_smoke_check_rolls_the_whole_fleet_back(fleet: Fleet) -> None:
    """Issue 7's prove step: through the load balancer after the rollout; failing, like a failed health gate."""
    lb = fleet.lab.hosts["lb1"].address
    smoke = [{"url": f"http://{lb}/", "contains": "version 6.2.0"},
             {"name": "the page names a version that is not there", "url": f"http://{lb}/",
              "contains": "no-such-version", "attempts": 2, "delay_s": 1}]
    proc, load = fleet.deploy_under_load(fleet.spec("6.2.0", keep=3, smoke=smoke))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Smoke check 2 passed" in proc.stdout and "smoke check failed after 2 attempt(s)" in proc.stdout
    assert "rolling back the hosts this deploy switched: app1, app2, app3" in proc.stdout
    assert load.failed == 0, load.summary()
    assert fleet.versions(fleet.spec("6.1.0", keep=3)) == dict.fromkeys(APP_HOSTS, "6.1.0")


def test_a_stopped_service_is_restarted_by_the_next_deploy_through_the_health_gate(fleet: Fleet) -> None:
    spec = fleet.spec("6.1.0", keep=3, batches=["50%"])
    assert fleet.deploy(spec).returncode == 0  # the whole fleet on 6.1.0 (nothing to do after the tests above)
    fleet.lab.run("app2", "systemctl stop hello", check=True)
    proc = fleet.deploy(spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "    app2         restart" in proc.stdout  # restart and health gate are one call on the host
    assert "app1         restart" not in proc.stdout and "app3         restart" not in proc.stdout
    assert fleet.lab.run("app2", "systemctl is-active hello").stdout.strip() == "active"
    assert "verified:" in proc.stdout


def test_spec_and_cli_text_is_data_never_run(fleet: Fleet) -> None:
    """Issue 18: Jinja and shell payloads in the health path, a service env value, smoke checks, a hook and
    `--message` are deployed as text: the deploy passes and no marker appears on the control node or a host."""
    def jinja(name: str) -> str:  # no spaces: it sits in a URL too
        return f"{{{{lookup('pipe','touch${{IFS}}/tmp/rwi-{name}')}}}}"

    def shell(name: str) -> str:
        return f"$(touch${{IFS}}/tmp/rwi-{name}-sh)"

    hosts = ["lb1", "db1", *APP_HOSTS]
    for host in hosts:
        fleet.lab.run(host, "rm -f /tmp/rwi-*", check=True)
    for marker in Path("/tmp").glob("rwi-*"):
        marker.unlink()
    lb = fleet.lab.hosts["lb1"].address
    spec = fleet.spec("7.0.0", keep=3, smoke=[
        {"name": f"the site {jinja('smoke-name')}", "url": f"http://{lb}/?{jinja('smoke-url')}{shell('smoke-url')}"},
        {"command": f'test -n "{jinja("smoke-command")}"'}])
    data = yaml.safe_load(spec.read_text())
    data["health"]["path"] = f"/health?x={jinja('health')}{shell('health')}"
    data["service"]["env"]["NOTE"] = f"{shell('env')} `touch /tmp/rwi-env-tick`"
    data["hooks"] = {"after_deploy": [f': "{jinja("hook")}"']}
    spec.write_text(yaml.safe_dump(data))
    proc = fleet.deploy(spec, "--message", f"{jinja('message')} {shell('message')}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "7.0.0")
    assert "rwi-env-sh" in fleet.lab.run("app1", "cat /etc/rollwright/hello.env").stdout  # it got there, as text
    assert [str(p) for p in Path("/tmp").glob("rwi-*")] == []
    for host in hosts:
        assert fleet.lab.run(host, "ls /tmp | grep rwi- || true").stdout.split() == [], host


def test_a_crash_looping_or_hanging_release_fails_its_gate_naming_why(fleet: Fleet) -> None:
    """Issue 18: the gate's timeout is a deadline, and a unit that keeps restarting fails it at once, with what
    its journal says (here long before the 120 s deadline, or the reason would be the deadline); a /health that
    accepts and never answers cannot stretch a 10 s gate (its requests are cut at the deadline)."""
    crash = fleet.deploy(fleet.spec("8.0.0", keep=3, fault="crash", health_timeout_s=120))
    assert crash.returncode == 1, crash.stdout + crash.stderr
    assert "unit hello keeps restarting" in crash.stdout or "unit hello failed" in crash.stdout, crash.stdout
    assert "CRASH build: exits at start" in crash.stdout  # the journal's last lines, in the failure
    hang = fleet.deploy(fleet.spec("8.0.1", keep=3, fault="hang", health_timeout_s=10))
    assert hang.returncode == 1, hang.stdout + hang.stderr
    assert "not healthy within 10s: no answer (timed out)" in hang.stdout, hang.stdout
    assert fleet.versions(fleet.spec("7.0.0", keep=3)) == dict.fromkeys(APP_HOSTS, "7.0.0")


def _process_release(fleet: Fleet, host: str) -> str:
    """The release folder the app's process really runs in, read on the host."""
    cwd = fleet.lab.run(host, "readlink /proc/$(systemctl show -p MainPID --value hello)/cwd").stdout.strip()
    return cwd.removeprefix("/srv/hello/releases/")


def test_a_deploy_after_a_killed_control_node_repairs_the_half_done_hosts(fleet: Fleet) -> None:
    """SIGKILL of the runner while batch 2 (app2) restarts: no finally runs. status must tell the truth about
    app2 (drained, and what its process runs), and the next deploy repairs it first, then rolls out: one
    version everywhere, every server UP, no failed request."""
    base = fleet.spec("6.1.0", keep=3)
    if fleet.versions(base) != dict.fromkeys(APP_HOSTS, "6.1.0"):  # run alone: a verified fleet to return to
        assert fleet.deploy(base).returncode == 0
    spec = fleet.spec("6.3.0", keep=3)
    command = [str(VENV_BIN / "rollwright"), "deploy", "-f", str(spec), "-t", "lab", "--json"]
    killed = subprocess.Popen(command, cwd=fleet.folder, stdout=subprocess.PIPE, text=True, env=VAULT_ENV)
    events: list[dict[str, object]] = []
    try:
        assert killed.stdout is not None
        for line in killed.stdout:
            events.append(json.loads(line))
            if events[-1].get("event") == "phase" and events[-1].get("host") == "app2" and \
                    events[-1].get("phase") == "restart":
                os.kill(killed.pid, signal.SIGKILL)  # the runner only: its ansible-playbook may live on
                break
    finally:
        if killed.poll() is None:
            killed.kill()
        killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL, events
    time.sleep(3)  # let whatever the orphaned playbook still does on the hosts happen

    status = fleet.rollwright("status", "-f", str(spec), "-t", "lab", "--json")
    found = {host["name"]: host for host in json.loads(status.stdout)}
    assert status.returncode == 1, status.stdout  # a host is not settled
    assert found["app2"]["current"] == "6.3.0" and found["app2"]["lb"] == {"lb1": "MAINT"}
    assert {h: found[h]["running"] for h in APP_HOSTS} == {h: _process_release(fleet, h) for h in APP_HOSTS}
    assert found["app1"]["running"] == "6.3.0" and found["app3"]["running"] == "6.1.0"
    told = fleet.rollwright("status", "-f", str(spec), "-t", "lab").stdout
    assert "MAINT in lb1" in told.splitlines()[2], told
    if found["app2"]["running"] != "6.3.0":
        assert "current is 6.3.0 but the process runs 6.1.0" in told

    proc, load = fleet.deploy_under_load(spec)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "warning: breaking the deploy lock of" in out and "that process is gone" in out
    assert "found half-done hosts" in out and "    app2         " in out.split("found half-done hosts")[1]
    assert "repaired: app2 serves 6.1.0, healthy and in service" in out
    assert load.failed == 0, load.summary()
    after = {host["name"]: host for host in json.loads(fleet.rollwright(
        "status", "-f", str(spec), "-t", "lab", "--json").stdout)}
    assert {h: (after[h]["current"], after[h]["running"], after[h]["answers"]) for h in APP_HOSTS} == \
        dict.fromkeys(APP_HOSTS, ("6.3.0", "6.3.0", "6.3.0"))
    assert {h: _process_release(fleet, h) for h in APP_HOSTS} == dict.fromkeys(APP_HOSTS, "6.3.0")
    assert fleet.backend_states() == dict.fromkeys(APP_HOSTS, "UP")


def test_a_load_balancer_lost_mid_rollout_is_blamed_and_recover_restores_one_version(fleet: Fleet) -> None:
    """lb1 powered off while app2 (batch 2) restarts: the account names the load balancer, not the app host it
    worked for; once lb1 is back, `rollwright recover` puts every host on one version, in service."""
    base = fleet.spec("6.3.0", keep=3)
    if fleet.versions(base) != dict.fromkeys(APP_HOSTS, "6.3.0"):  # run alone: the fleet the test above leaves
        assert fleet.deploy(base).returncode == 0
    spec = fleet.spec("6.4.0", keep=3)
    killed_lb = False
    lines: list[str] = []
    proc = _start(fleet, spec)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            # powered off before app2's undrain: its switch, restart and health gate (2 s at least) leave a loaded
            # machine time to power lb1 off
            if line.split() == ["app2", "switch"] and not killed_lb:
                killed_lb = True
                fleet.lab.stop("lb1")
        code = proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
        fleet.lab.start("lb1")
    out = "".join(lines)
    print(out, file=sys.stderr)
    assert code == 3, out
    blamed = [line.split() for line in out.split("what failed:")[1].splitlines()[1:] if line.startswith("    ")]
    assert blamed[0][:4] == ["lb1", "unreachable", "(the", "load"], out
    assert blamed[0][6] in ("app2's", "app3's"), out  # the undrain of app2, or the drain after it
    assert not any(line.split()[:2] in (["app2", "✗"], ["app3", "✗"]) for line in lines), out
    assert "the load balancer lb1 is unreachable" in out

    recovered = fleet.rollwright("recover", "-f", str(spec), "-t", "lab")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "repaired:" in recovered.stdout or "nothing to repair" in recovered.stdout
    after = {host["name"]: host for host in json.loads(fleet.rollwright(
        "status", "-f", str(spec), "-t", "lab", "--json").stdout)}
    assert len({(after[h]["current"], after[h]["running"]) for h in APP_HOSTS}) == 1, after
    assert all(after[h]["healthy"] and after[h]["lb"] == {"lb1": "UP"} for h in APP_HOSTS), after
    assert fleet.backend_states() == dict.fromkeys(APP_HOSTS, "UP")
