"""Work on the hosts inside a new release, on real hosts: `release.build` (before any switch, as the service user
with its env file, once per release), host hooks around each host's switch, and an app without a service.

One fleet of the sample app is deployed once for the module; the tests run in file order and build on each
other. The static site is a second app on the same hosts (its own root, no service, no load balancer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fleets import APP_HOSTS, Fleet

from rollwright.lab.fleet import Lab

ROOT = "/srv/hello"
LOG = f"{ROOT}/shared/log"  # shared: outlives the releases, writable by the service user
# What each build proves, written into the release it runs in: who ran it, a service env value, where it ran and
# what was current then (the old release: nothing switched yet). Each run also appends to a log in shared/.
BUILD = ("id -un > built-by && printf '%s\\n' \"$STARTUP_DELAY_S\" > built-env && pwd > built-in && "
         f"readlink {ROOT}/current > current-at-build && echo \"$ROLLWRIGHT_VERSION\" >> {LOG}/builds.log")
HOOK = f"echo \"$ROLLWRIGHT_HOST $ROLLWRIGHT_PHASE $(readlink {ROOT}/current) $(id -un)\" >> {LOG}/hooks.log"
SITE_ROOT = "/srv/site"


def _edit(path: Path, change: dict[str, Any]) -> Path:
    """The spec at `path` with top-level sections replaced (None drops one)."""
    spec = yaml.safe_load(path.read_text())
    for key, value in change.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _hello(fleet: Fleet, version: str, build: list[str]) -> Path:
    spec = fleet.spec(version)
    release = {**yaml.safe_load(spec.read_text())["release"], "owner": "hello", "build": build}
    return _edit(spec, {"release": release, "hooks": {"before_switch": [HOOK], "after_switch": [HOOK]}})


def _site(fleet: Fleet, version: str, hooks: dict[str, list[str]] | None = None) -> Path:
    """A static site: the sample's tarball as plain files, no service, no load balancer."""
    spec = fleet.spec(version, name=f"site-{version}.yml")
    rollout = {"strategy": "rolling", "batches": [1, "100%"]}
    return _edit(spec, {"app": "site", "release": {"root": SITE_ROOT, "keep": 3}, "service": None, "health": None,
                        "rollout": rollout, "hooks": hooks})


def _read(fleet: Fleet, path: str) -> dict[str, str]:
    return {host: fleet.lab.run(host, f"cat {path} 2>/dev/null || true").stdout.strip() for host in APP_HOSTS}


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    fleet = Fleet.beside(lab, tmp_path_factory.mktemp("release_work"))
    first = fleet.deploy(fleet.spec("1.0.0"))
    assert first.returncode == 0, first.stdout + first.stderr
    for host in APP_HOSTS:
        fleet.lab.run(host, f"rm -f {LOG}/builds.log {LOG}/hooks.log")
    return fleet


def test_build_runs_in_the_new_release_before_the_switch_and_hooks_around_each_switch(fleet: Fleet,
                                                                                    tmp_path: Path) -> None:
    spec = _hello(fleet, "1.1.0", [BUILD])
    proc = fleet.deploy(spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "1.1.0")
    release = f"{ROOT}/releases/1.1.0"
    assert _read(fleet, f"{release}/built-by") == dict.fromkeys(APP_HOSTS, "hello")  # the service user
    assert _read(fleet, f"{release}/built-env") == dict.fromkeys(APP_HOSTS, "1")  # its env file's STARTUP_DELAY_S
    assert _read(fleet, f"{release}/built-in") == dict.fromkeys(APP_HOSTS, release)
    assert _read(fleet, f"{release}/current-at-build") == dict.fromkeys(APP_HOSTS, f"{ROOT}/releases/1.0.0")
    hooks = _read(fleet, f"{LOG}/hooks.log")
    for host in APP_HOSTS:  # before the switch on the old release, after it on the new one, as the service user
        assert hooks[host].splitlines() == [f"{host} before_switch {ROOT}/releases/1.0.0 hello",
                                            f"{host} after_switch {release} hello"], hooks

    again = fleet.playbook_again(spec, tmp_path / "again")  # plain ansible-playbook: the build does not run again
    assert {host: again[host]["changed"] for host in APP_HOSTS} == dict.fromkeys(APP_HOSTS, "0"), again
    assert _read(fleet, f"{LOG}/builds.log") == dict.fromkeys(APP_HOSTS, "1.1.0")
    assert _read(fleet, f"{LOG}/hooks.log") == hooks  # no host was switched again


def test_a_failing_build_stops_the_deploy_with_nothing_switched(fleet: Fleet) -> None:
    pids = fleet.main_pids()
    failing = "[ \"$ROLLWRIGHT_HOST\" != app2 ] || { echo 'static files: disk full' >&2; exit 3; }"
    spec = _hello(fleet, "1.2.0", [BUILD, failing])
    proc = fleet.deploy(spec)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "app2" in out and "exited 3" in out and "disk full" in out, out
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "1.1.0")
    assert fleet.main_pids() == pids  # no restart anywhere
    assert not [text for text in _read(fleet, f"{LOG}/hooks.log").values() if "1.2.0" in text]  # no host's switch
    # the hosts whose build passed keep their marker; app2's failed build has none and runs again next time
    marker = {h: fleet.lab.run(h, f"test -e {ROOT}/releases/1.2.0/.rollwright-build && echo yes || echo no")
              .stdout.strip() for h in APP_HOSTS}
    assert marker == {"app1": "yes", "app2": "no", "app3": "yes"}


def test_a_static_site_deploys_redeploys_unchanged_and_rolls_back(fleet: Fleet, tmp_path: Path) -> None:
    first = _site(fleet, "1.0.0")
    proc = fleet.deploy(first)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = fleet.rollwright("status", "-f", str(first), "-t", "lab", "--json")
    hosts = {host["name"]: host for host in json.loads(status.stdout)}
    assert {h: (hosts[h]["current"], hosts[h]["service"]) for h in APP_HOSTS} == dict.fromkeys(
        APP_HOSTS, ("1.0.0", False)), status.stdout
    owners = {h: fleet.lab.run(h, f"stat -c %U {SITE_ROOT}/releases/1.0.0").stdout.strip() for h in APP_HOSTS}
    assert owners == dict.fromkeys(APP_HOSTS, "root")  # release.owner's default
    again = fleet.playbook_again(first, tmp_path / "again")
    assert {host: again[host]["changed"] for host in APP_HOSTS} == dict.fromkeys(APP_HOSTS, "0"), again

    second = _site(fleet, "2.0.0")
    assert fleet.deploy(second).returncode == 0
    assert fleet.versions(second) == dict.fromkeys(APP_HOSTS, "2.0.0")
    back = fleet.rollwright("rollback", "-f", str(second), "-t", "lab")
    assert back.returncode == 0, back.stdout + back.stderr
    assert fleet.versions(second) == dict.fromkeys(APP_HOSTS, "1.0.0")

    restart = fleet.rollwright("app", "restart", "-f", str(second), "-t", "lab")
    assert restart.returncode == 2 and "no service" in restart.stdout + restart.stderr


def test_a_failing_after_switch_hook_rolls_its_host_back(fleet: Fleet) -> None:
    failing = "[ \"$ROLLWRIGHT_HOST\" != app1 ] || exit 4"
    spec = _site(fleet, "3.0.0", {"after_switch": [failing]})
    proc = fleet.deploy(spec)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "app1" in out and "exited 4" in out, out
    assert fleet.versions(spec) == dict.fromkeys(APP_HOSTS, "1.0.0")  # app1 switched back, the others never moved
