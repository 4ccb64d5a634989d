"""Shared test helpers: run the CLI in-process, find the repo and the venv's tools."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def tool_env() -> dict[str, str]:
    """Environment in which ansible-playbook / ansible-lint from this venv are found first."""
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
