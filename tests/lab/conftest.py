"""Lab tests run against real hosts: systemd-nspawn machines booted on this machine (needs root).

Every test under tests/lab/ is marked `lab`. The session fixture `lab` brings one lab up for all of
them and takes it down at the end, even when tests fail. Without root the lab tests fail with a
clear message instead of skipping: CI runs as root, and a silently skipped suite would hide that.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollwright.lab.fleet import Lab

LAB_DIR = Path(__file__).parent
# Another name runs beside a CI run; under pytest-xdist every worker boots a session lab of its own.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
SESSION_LAB = os.environ.get("ROLLWRIGHT_TEST_LAB", "rwtest") + WORKER
SESSION_APP_HOSTS = 3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this directory `lab` (hooks in a conftest see the whole session's items)."""
    for item in items:
        if LAB_DIR in item.path.parents:
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab_environment() -> None:
    """Fail, not skip, where a lab cannot run."""
    if os.geteuid() != 0:
        pytest.fail(
            "lab tests need root (network namespaces, bridges, systemd-nspawn): run them as root, as CI does",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def lab_log() -> list[str]:
    """Every progress line the session lab printed (tests check no secret is among them)."""
    return []


@pytest.fixture(scope="session")
def lab(lab_environment: None, tmp_path_factory: pytest.TempPathFactory, lab_log: list[str]) -> Iterator[Lab]:
    """A running lab (lb1, db1, app1..app3) with its inventory in a session temp dir; down at the end."""

    def log(message: str) -> None:
        lab_log.append(message)
        print(message, file=sys.stderr, flush=True)

    inventory = tmp_path_factory.mktemp("lab") / "hosts.yml"
    fleet = Lab(SESSION_LAB, SESSION_APP_HOSTS, inventory=inventory, log=log)
    try:
        fleet.down()  # a lab of this name left up by a killed session would carry its state (colours, releases) in
        fleet.up()
        yield fleet
    finally:
        fleet.down()
