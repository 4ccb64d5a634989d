"""The Molecule scenarios under molecule/ pass: `molecule test -s <scenario>` for each, on its own lab.

Every scenario folder with a molecule.yml is run, release, service, healthcheck and migrate first.

Each scenario boots its own lab (ROLLWRIGHT_MOLECULE_LAB in its molecule.yml: rwmrel, rwmsvc, ...),
converges the role, checks idempotence, runs its testinfra tests and takes the lab down. The lab is
taken down here as well, whatever happened, so a killed or timed-out run leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REQUIRED = ["release", "service", "healthcheck", "migrate"]  # first: the roles every deploy runs
SCENARIOS = REQUIRED + sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml")
                              if p.parent.name not in REQUIRED)
TIMEOUT_S = 900  # one run takes about a minute; a loaded CI machine (or a cold lab image) takes longer


def _lab_name(scenario: str) -> str:
    config = yaml.safe_load((REPO / "molecule" / scenario / "molecule.yml").read_text())
    name = config["ansible"]["env"]["ROLLWRIGHT_MOLECULE_LAB"]
    assert name.startswith("rwm"), f"molecule/{scenario}: labs of the molecule scenarios are named rwm..., not {name}"
    return str(name)


def _run(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """Run argv in its own process group; on timeout kill the whole group (ansible-playbook, ssh, pytest)."""
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return None, output


def test_the_required_scenarios_exist_each_with_a_lab_of_its_own() -> None:
    missing = [s for s in REQUIRED if not (REPO / "molecule" / s / "molecule.yml").is_file()]
    assert not missing, f"molecule scenarios missing: {missing}"
    labs = [_lab_name(s) for s in SCENARIOS]
    assert len(set(labs)) == len(labs), f"two scenarios share a lab: {dict(zip(SCENARIOS, labs, strict=True))}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, tool_env: dict[str, str]) -> None:
    lab = _lab_name(scenario)
    env = {**tool_env, "PY_COLORS": "0", "ANSIBLE_FORCE_COLOR": "0"}
    env.pop("PYTEST_ADDOPTS", None)  # meant for this session, not for the testinfra run inside Molecule
    started = time.monotonic()
    try:
        rc, output = _run([str(VENV_BIN / "molecule"), "test", "-s", scenario], env, TIMEOUT_S)
    finally:
        down = subprocess.run([str(VENV_BIN / "rollwright"), "lab", "down", "--name", lab], cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=False)
    took = time.monotonic() - started
    if rc != 0 or down.returncode != 0:
        print(output)
        print(f"rollwright lab down --name {lab}: rc {down.returncode}\n{down.stdout}{down.stderr}")
    assert rc is not None, f"molecule test -s {scenario} did not finish within {TIMEOUT_S} s"
    assert rc == 0, f"molecule test -s {scenario} failed (rc {rc}) after {took:.0f} s; its output is above"
    assert down.returncode == 0, f"rollwright lab down --name {lab} failed"
