"""Shared test helpers: run the CLI in-process, find the repo and the venv's tools."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

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
