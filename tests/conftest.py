"""Shared test helpers: run the CLI in-process, find the repo and the venv's tools."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session", autouse=True)
def hello_artifact() -> Path:
    """examples/hello's artifact, which the spec pins and every project generated from it carries (the build is
    byte-reproducible, into the example's git-ignored dist/, as `make demo` and `make playbooks` do)."""
    from rollwright.lab import sample

    path, _ = sample.build("1.0.0", REPO / "examples" / "hello" / "dist")
    return path


@pytest.fixture
def tool_env() -> dict[str, str]:
    """Environment in which ansible-playbook / ansible-lint from this venv are found first."""
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}


def run_with_closed_stdout(args: list[str], cwd: Path, env: dict[str, str] | None = None,
                           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command whose stdout is a pipe nobody reads any more (like `| head -1` after its line):
    every write gets a broken pipe, deterministically."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(args, cwd=cwd, env=env, stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, check=False)
    finally:
        os.close(write_end)


@pytest.fixture
def closed_stdout() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_with_closed_stdout


class LabModules(LoadScopeScheduling):
    """Under `pytest -n N`: a lab module runs whole on one worker (its module-scoped fleet is deployed once, and
    its tests build on each other), in the worker's own session lab; each Molecule scenario (a lab of its own)
    and each unit test is a unit by itself, so they spread over the workers. Largest modules go first."""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return path if path.startswith("tests/lab/") and not path.endswith("/test_molecule.py") else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadScopeScheduling:
    """pytest-xdist's scheduler for this suite (its loadgroup marks are lost on pytest 9's node ids)."""
    return LabModules(config, log)
