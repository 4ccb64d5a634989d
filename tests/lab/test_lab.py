"""Acceptance tests of `rollwright lab` on real hosts (issue 3).

Most tests share the session lab; the down/repair test uses a lab of its own, so tearing that one
down never pulls hosts away from the other tests.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollwright.errors import BadInput, RollwrightError
from rollwright.lab import image, machine, network
from rollwright.lab.fleet import Lab
from rollwright.lab.state import LabFiles, load
from rollwright.lab.system import mounts_below

VENV_BIN = Path(sys.executable).parent


def rollwright(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "rollwright"), *args], capture_output=True, text=True, timeout=600, check=False
    )


def test_ansible_setup_reaches_every_host_and_sees_systemd(lab: Lab, tmp_path: Path) -> None:
    tree = tmp_path / "tree"  # the tree callback (ansible-core's own) writes one JSON result per host
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), "all", "-i", str(lab.inventory_path), "-m", "ansible.builtin.setup",
         "--tree", str(tree)],
        cwd=tmp_path,
        env={**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = {path.name: json.loads(path.read_text()) for path in tree.iterdir()}
    assert set(results) == set(lab.hosts) == {"lb1", "db1", "app1", "app2", "app3"}
    for host, result in results.items():
        assert result["ansible_facts"]["ansible_service_mgr"] == "systemd", host
        assert result["ansible_facts"]["ansible_hostname"] == host


def test_inventory_groups_and_host_key_checking(lab: Lab) -> None:
    inventory = lab.inventory_path.read_text()
    assert "StrictHostKeyChecking=yes" in inventory
    groups = {group: sorted(h for h, info in lab.hosts.items() if info.group == group) for group in ("app", "lb", "db")}
    assert groups == {"app": ["app1", "app2", "app3"], "lb": ["lb1"], "db": ["db1"]}
    # Checking is really on: the same connection with an empty known_hosts is refused.
    args = [a.replace(str(lab.files.known_hosts), "/dev/null") for a in lab.ssh_args("app1")]
    proc = subprocess.run([*args, "true"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 255
    assert "Host key verification failed" in proc.stderr


def test_haproxy_answers_show_stat_on_its_admin_socket(lab: Lab) -> None:
    proc = lab.run("lb1", "echo 'show stat' | socat stdio /run/haproxy/admin.sock")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(proc.stdout.lstrip("# ").splitlines()))
    servers = {row["svname"] for row in rows if row["pxname"] == "app"}
    assert servers == {"app1", "app2", "app3", "BACKEND"}
    assert any(row["pxname"] == "stats" for row in rows)
    assert lab.run("app1", "systemctl is-enabled haproxy").stdout.strip() == "masked"


def test_postgresql_accepts_a_connection_from_an_app_host(lab: Lab) -> None:
    password = lab.db_password_file.read_text().strip()
    query = 'read -r PGPASSWORD; export PGPASSWORD; psql "host=db1 user=app dbname=app" -tAc "select current_user"'
    proc = lab.run("app2", query, stdin=password + "\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "app"


def test_up_again_changes_nothing_and_never_prints_the_password(lab: Lab, lab_log: list[str]) -> None:
    pids = {h.name: h.pid for h in lab.status()}
    proc = rollwright("lab", "up", "--name", lab.name, "--inventory", str(lab.inventory_path))
    assert proc.returncode == 0, proc.stderr
    assert "already up" in proc.stdout
    assert {h.name: h.pid for h in lab.status()} == pids
    password = lab.db_password_file.read_text().strip()
    assert password not in proc.stdout + proc.stderr + "\n".join(lab_log)
    assert password not in lab.inventory_path.read_text()
    assert oct(lab.db_password_file.stat().st_mode & 0o777) == "0o600"


def test_status_json_reports_every_host_up_and_reachable(lab: Lab) -> None:
    proc = rollwright("lab", "status", "--name", lab.name, "--json")
    assert proc.returncode == 0, proc.stderr
    hosts = {h["name"]: h for h in json.loads(proc.stdout)}
    assert set(hosts) == set(lab.hosts)
    assert all(h["running"] and h["ssh"] and h["memory_kib"] > 0 for h in hosts.values())


def test_stop_makes_a_host_unreachable_and_start_brings_it_back(lab: Lab) -> None:
    lab.stop("app3")
    assert lab.run("app3", "true", timeout=60).returncode == 255
    status = {h.name: h for h in lab.status()}
    assert not status["app3"].running and not status["app3"].ssh
    assert status["app2"].ssh
    lab.start("app3")
    proc = lab.run("app3", "systemctl is-system-running")
    assert proc.stdout.strip() == "running"


def _leftovers(name: str, pids: list[int]) -> list[str]:
    """Everything of lab name still on the machine: processes, namespaces, links, mounts, files."""
    prefix = network.host_link_name(name, "")
    files = LabFiles(name)
    found = [f"process {pid}" for pid in pids if machine.start_time(pid) is not None]
    found += [f"netns {ns}" for ns in network.namespaces() if ns.startswith(prefix)]
    found += [
        f"link {link}" for link in network.links() if link.startswith(prefix) or link == network.bridge_name(name)
    ]
    found += [f"mount {point}" for point in mounts_below(files.dir)]
    found += [f"mount {line}" for line in Path("/proc/self/mountinfo").read_text().splitlines() if prefix in line]
    found += [f"nspawn dir {path}" for path in Path("/run/systemd/nspawn/propagate").glob(prefix + "*")]
    found += [f"file {files.dir}"] if files.dir.exists() else []
    return found


@pytest.mark.usefixtures("lab_environment")
def test_down_repairs_and_leaves_nothing_behind(tmp_path: Path) -> None:
    fleet = Lab("rwdown", 1, inventory=tmp_path / "hosts.yml")
    pids: list[int] = []
    try:
        fleet.up()
        state = load(fleet.files)
        assert state is not None
        # A host dies behind the lab's back: the next `up` repairs it (boots it again).
        victim = state.hosts["app1"]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while machine.is_running(victim) and time.monotonic() < deadline:
            time.sleep(0.1)
        result = fleet.up()
        assert not result.already_up
        assert fleet.run("app1", "true").returncode == 0
        state = load(fleet.files)
        assert state is not None
        pids = [h.pid for h in state.hosts.values() if h.pid is not None]
        assert len(pids) == 3
    finally:
        fleet.down()
    assert _leftovers("rwdown", pids) == []
    assert not (tmp_path / "hosts.yml").exists()  # a stale inventory would point at unrouted addresses
    # Leftovers of a run killed before it wrote any state are found by name and removed too.
    stray = network.host_link_name("rwdown", "app9")
    subprocess.run(["ip", "netns", "add", stray], check=True)
    fleet.down()
    fleet.down()
    assert _leftovers("rwdown", pids) == []


@pytest.mark.parametrize("argv", [["lab", "up", "--name", "Bad-Name"], ["lab", "up", "--app-hosts", "0"]])
def test_bad_arguments_exit_2_with_a_message(argv: list[str]) -> None:
    proc = rollwright(*argv)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")


def test_not_root_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(BadInput, match="lab needs root"):
        Lab("rwnope").up()


def test_mirror_is_read_from_the_apt_sources(tmp_path: Path) -> None:
    sources = tmp_path / "sources.list.d"
    sources.mkdir()
    (sources / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/security\nSuites: bookworm-security\nComponents: main\n\n"
        "# the main suite\nTypes: deb deb-src\nURIs: http://mirror.invalid/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\nSigned-By: /nonexistent.gpg\n"
    )
    listing = tmp_path / "sources.list"
    assert image.debian_mirror("bookworm", sources, listing) == ("http://mirror.invalid/debian", "/nonexistent.gpg")
    (sources / "debian.sources").unlink()
    listing.write_text("# comment\ndeb [arch=amd64] http://mirror.invalid/old bookworm main\n")
    assert image.debian_mirror("bookworm", sources, listing) == ("http://mirror.invalid/old", None)
    listing.write_text("")
    with pytest.raises(BadInput, match="no apt source"):
        image.debian_mirror("bookworm", sources, listing)


def test_subnet_choice_is_stable_and_avoids_networks_in_use() -> None:
    first = network.pick_subnet("lab", [])
    assert first == network.pick_subnet("lab", [])
    assert first.prefixlen == 24 and first.subnet_of(network.DEFAULT_SUPERNET)
    assert network.pick_subnet("lab", [first]) != first
    with pytest.raises(RollwrightError, match="no free /24"):
        network.pick_subnet("lab", [network.DEFAULT_SUPERNET.supernet(new_prefix=8)])
