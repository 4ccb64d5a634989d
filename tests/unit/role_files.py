"""The roles' embedded modules and module_utils, loaded from their files (they are not a package) for unit tests."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROLES = Path(__file__).resolve().parents[2] / "roles"


def load_role_file(relative: str) -> ModuleType:
    """roles/<relative> as a module named after its file; an embedded module finds its role's module_utils
    as `ansible.module_utils.<name>`, as Ansible gives them to it on the host."""
    path = ROLES / relative
    if path.parent.name == "library":
        for utils in sorted((path.parents[1] / "module_utils").glob("*.py")):
            sys.modules.setdefault(f"ansible.module_utils.{utils.stem}", _load(utils, utils.stem))
    return _load(path, path.stem)


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_role_module(role: str, name: str, args: dict[str, Any], *extra: str) -> dict[str, Any]:
    """Role `role`'s embedded module `name` run by ansible on localhost (it finds the role's module_utils);
    its result, with `failed` read from ansible's verdict."""
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-o", "-m", name,
                           "-a", json.dumps(args), *extra], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "ANSIBLE_LIBRARY": str(ROLES / role / "library"),
                               "ANSIBLE_MODULE_UTILS": str(ROLES / role / "module_utils"),
                               "ANSIBLE_STDOUT_CALLBACK": "minimal", "ANSIBLE_LOCALHOST_WARNING": "false"})
    assert " => " in proc.stdout, proc.stdout + proc.stderr
    said, result = proc.stdout.split(" => ", 1)
    return {**json.loads(result), "failed": "FAILED!" in said}
