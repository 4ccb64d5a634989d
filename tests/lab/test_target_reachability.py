"""`rollwright target test` on the lab: every host answers SSH and becomes root; a host added with
`target update` at a loopback port nothing listens on is named unreachable, and the command fails."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rollwright.lab import sample
from rollwright.lab.fleet import Lab

pytestmark = pytest.mark.lab
VENV_BIN = Path(sys.executable).parent


def rollwright(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(VENV_BIN / "rollwright"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)
    print(proc.stdout, proc.stderr, sep="\n", file=sys.stderr)
    return proc


def _spec(folder: Path, inventory: Path) -> Path:
    artifact, sha = sample.build("1.0.0", folder / "dist")
    return sample.write_spec(folder, inventory, artifact, sha, "1.0.0", name="rollwright.yml")


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_lab_host_is_reachable_and_becomes_root(lab: Lab, tmp_path: Path) -> None:
    spec = _spec(tmp_path, lab.inventory_path)
    proc = rollwright("target", "test", "lab", "-f", str(spec), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[2:-1]}
    assert set(rows) == set(lab.hosts) == {"lb1", "db1", "app1", "app2", "app3"}
    for host, row in rows.items():
        assert row[1] == lab.hosts[host].group and row[2] == lab.hosts[host].address
        assert row[3:5] == ["yes", "yes"], row
    assert "all 5 host(s) reachable" in proc.stdout


def test_a_host_at_a_refused_port_is_named_and_fails_the_test(lab: Lab, tmp_path: Path) -> None:
    inventory = tmp_path / "inventories" / "lab" / "hosts.yml"
    inventory.parent.mkdir(parents=True)
    shutil.copyfile(lab.inventory_path, inventory)
    spec = _spec(tmp_path, inventory)
    port = _refused_port()
    update = rollwright("target", "update", "lab", "-f", str(spec), "--add-host", f"app:ghost=127.0.0.1:{port}",
                        cwd=tmp_path)
    assert update.returncode == 0, update.stdout + update.stderr
    assert "ghost" in inventory.read_text() and "ghost" not in lab.inventory_path.read_text()

    proc = rollwright("target", "test", "lab", "-f", str(spec), "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    hosts = {host["host"]: host for host in result["hosts"]}
    assert result["ok"] is False
    assert hosts["ghost"]["reachable"] is False and hosts["ghost"]["sudo"] is None
    assert "refused" in hosts["ghost"]["reachable_reason"]
    assert hosts["ghost"]["address"] == f"127.0.0.1:{port}" and hosts["ghost"]["groups"] == ["app"]
    assert all(h["reachable"] and h["sudo"] for name, h in hosts.items() if name != "ghost")

    text = rollwright("target", "test", "lab", "-f", str(spec), cwd=tmp_path)
    assert text.returncode == 1
    [row] = [line for line in text.stdout.splitlines() if line.startswith("ghost ")]
    assert "no (connection refused)" in row
    assert "1 of 6 host(s) not ready: ghost" in text.stdout
