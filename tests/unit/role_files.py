"""The roles' embedded modules and module_utils, loaded from their files (they are not a package) for unit tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROLES = Path(__file__).resolve().parents[2] / "roles"


def load_role_file(relative: str) -> ModuleType:
    """roles/<relative> as a module named after its file."""
    path = ROLES / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
