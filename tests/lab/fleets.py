"""Driving the sample app on the session lab from a folder of builds and specs (shared by the deploy tests)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollwright.lab import sample
from rollwright.lab.fleet import Lab
from rollwright.lab.load import Load, LoadResult

VENV_BIN = Path(sys.executable).parent
APP_HOSTS = ["app1", "app2", "app3"]
VAULT_ENV = {**os.environ, "ROLLWRIGHT_VAULT_PASSWORD": "vault-" + secrets.token_hex(8)}
LOAD_RATE = 150.0  # requests per second, spread evenly over the deploy
LOCK_HOLDER = "rollwright-test-lock-holder"  # the application_name of table_lock_held's session
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<dark>\d+)\s+"
                   r"failed=(?P<failed>\d+)", re.MULTILINE)


def recap(stdout: str) -> dict[str, dict[str, str]]:
    """host -> its PLAY RECAP counts (changed, dark, failed) from ansible-playbook or ansible-runner output."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", stdout)  # ansible-runner forces colour
    return {m["host"]: m.groupdict() for m in RECAP.finditer(plain)}


@dataclass
class Fleet:
    """The session lab plus a folder of sample builds and specs, and the commands to drive it."""

    lab: Lab
    folder: Path
    inventory: Path  # a folder: the lab's hosts.yml, and the values `rollwright env set` keeps in group_vars
    said: list[str]  # everything rollwright printed in this module (searched for secrets)

    @classmethod
    def beside(cls, lab: Lab, folder: Path, inventory: dict[str, Any] | None = None) -> Fleet:
        """A fleet driven from `folder`, with a copy of the lab's inventory (or `inventory`) of its own."""
        (folder / "inventory").mkdir(parents=True)
        hosts = folder / "inventory" / "hosts.yml"
        if inventory is None:
            shutil.copy(lab.inventory_path, hosts)
        else:
            hosts.write_text(yaml.safe_dump(inventory))
        return cls(lab, folder, folder / "inventory", [])

    def spec(self, version: str, **options: object) -> Path:
        build = {key: options.pop(key) for key in ("broken", "broken_on", "error_rate", "delay_ms", "fault",
                                                        "broken_worker", "errors_after_s")
                 if key in options}
        path, sha = sample.build(version, self.folder / "dist", **build)  # type: ignore[arg-type]
        sha = str(options.pop("sha256", sha))
        return sample.write_spec(self.folder, self.inventory, path, sha, version, **options)  # type: ignore[arg-type]

    def rollwright(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(VENV_BIN / "rollwright"), *args], cwd=self.folder, capture_output=True,
                              text=True, timeout=900, check=False, input=stdin, env=VAULT_ENV)
        print(proc.stdout, proc.stderr, sep="\n", file=sys.stderr)
        self.said += [proc.stdout, proc.stderr]
        return proc

    def deploy(self, spec: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.rollwright("deploy", "-f", str(spec), "-t", "lab", *extra)

    def deploy_under_load(self, spec: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], LoadResult]:
        return self.under_load("deploy", "-f", str(spec), "-t", "lab", *extra)

    def under_load(self, *args: str) -> tuple[subprocess.CompletedProcess[str], LoadResult]:
        """A rollwright command while the bounded load goes through the lab's HAProxy."""
        with Load(self.lab.hosts["lb1"].address, 80, rate=LOAD_RATE) as load:
            proc = self.rollwright(*args)
        print(load.result.summary(), file=sys.stderr)
        return proc, load.result

    def playbook_again(self, spec: Path, out: Path) -> dict[str, dict[str, str]]:
        """site.yml of `spec`, generated into `out` and run once more with plain ansible-playbook: its recap."""
        generated = self.rollwright("generate", "-f", str(spec), "-t", "lab", "-o", str(out))
        assert generated.returncode == 0, generated.stdout + generated.stderr
        env = {**VAULT_ENV, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
        proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "site.yml"], cwd=out, env=env, capture_output=True,
                              text=True, timeout=900, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        return recap(proc.stdout)

    def versions(self, spec: Path) -> dict[str, str]:
        proc = self.rollwright("status", "-f", str(spec), "-t", "lab", "--json")
        return sample.fleet_versions(proc.stdout)

    def backend_states(self) -> dict[str, str]:
        """Each app server's status in the lab's HAProxy backend, from `show stat` (UP, MAINT, DOWN...)."""
        stat = self.lab.run("lb1", "echo 'show stat' | socat stdio /run/haproxy/admin.sock").stdout
        return {row[1]: row[17] for row in (r.split(",") for r in stat.splitlines() if r.startswith("app,app"))}

    def main_pids(self) -> dict[str, str]:
        return {h: self.lab.run(h, "systemctl show -p MainPID --value hello").stdout.strip() for h in APP_HOSTS}


def psql(lab: Lab, database: str, query: str) -> str:
    """One query on db1 as postgres; its rows as psql prints them unaligned."""
    return lab.run("db1", f"runuser -u postgres -- psql -X -A -t -d {database} -c \"{query}\"").stdout.strip()


@contextmanager
def table_lock_held(lab: Lab, database: str, table: str, seconds: int = 85) -> Iterator[str]:
    """A psql session on db1 holding ACCESS SHARE on `table` (what a long read holds, and every ALTER TABLE waits
    behind), bounded by `seconds`; started and ended by its pid, which it yields while the lock is held."""
    holder = lab.run("db1", f"PGAPPNAME={LOCK_HOLDER} setsid timeout {seconds + 5} runuser -u postgres -- "
                            f"psql -X -d {database} -c "
                            f"'BEGIN; LOCK TABLE {table} IN ACCESS SHARE MODE; SELECT pg_sleep({seconds});' "
                            "</dev/null >/dev/null 2>&1 & echo $!").stdout.strip()
    assert holder.isdigit(), holder
    try:
        for _ in range(50):
            if psql(lab, database, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE "
                                   f"c.relname = '{table}' AND l.granted AND l.mode = 'AccessShareLock'") != "0":
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the psql session never took its lock on {table}")
        yield holder
        assert lab.run("db1", f"kill -0 {holder}").returncode == 0, "the lock holder ended early"
    finally:  # its backend, asleep in pg_sleep, would not notice psql gone: it is ended by its pid too
        lab.run("db1", f"kill {holder}")
        psql(lab, database, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                            f"'{LOCK_HOLDER}'")
