"""Every embedded module (roles/*/library/*.py) documents itself the way `ansible-doc` reads it: its DOCUMENTATION,
RETURN and EXAMPLES are YAML, and its options are exactly the ones its AnsibleModule(argument_spec=...) takes, with
the same type, default, choices and required. ansible-doc parses the docs but does not hold them against the code,
and a description with an unquoted ", " in a flow mapping is still YAML (it quietly grows a key), so both are
checked here."""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DOC = Path(sys.executable).parent / "ansible-doc"
MODULES = sorted(REPO.glob("roles/*/library/*.py"))
DOC_STRINGS = ("DOCUMENTATION", "EXAMPLES", "RETURN")
OPTION_KEYS = {"description", "type", "required", "default", "choices", "elements", "suboptions", "aliases"}
COMPARED = ("type", "required", "default", "choices", "elements")
RETURN_KEYS = {"description", "returned", "type", "elements", "contains", "sample"}


def _is_text(value: object) -> bool:
    """A description: a non-empty string or list of them (a plain scalar holding ': ' parses as a mapping)."""
    lines = value if isinstance(value, list) else [value]
    return bool(lines) and all(isinstance(line, str) and line for line in lines)


def _id(path: Path) -> str:
    return f"{path.parents[1].name}/{path.stem}"


def _assigned_strings(path: Path) -> dict[str, str]:
    """The module's top-level DOCUMENTATION/EXAMPLES/RETURN strings, read without importing it."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in DOC_STRINGS:
            found[node.targets[0].id] = ast.literal_eval(node.value)
    return found


class _Captured(Exception):
    """Raised by the stand-in AnsibleModule with the argument_spec the module's main() built."""


def _argument_spec(path: Path) -> dict[str, dict[str, Any]]:
    """The argument_spec the module's main() passes to AnsibleModule(...), as it builds it (shared option sets from
    its role's module_utils included): main() is run with a stand-in AnsibleModule that keeps it and stops."""
    def capture(*_args: Any, argument_spec: dict[str, dict[str, Any]], **_kwargs: Any) -> None:
        raise _Captured(argument_spec)

    utils = path.parents[1] / "module_utils"
    saved = {name: sys.modules.get(name) for name in [f"ansible.module_utils.{p.stem}" for p in utils.glob("*.py")]}
    try:
        for util in utils.glob("*.py"):  # the role's module_utils, importable as Ansible makes them
            loaded = importlib.util.spec_from_file_location(f"ansible.module_utils.{util.stem}", util)
            assert loaded and loaded.loader
            sys.modules[loaded.name] = module = importlib.util.module_from_spec(loaded)
            loaded.loader.exec_module(module)
        found = importlib.util.spec_from_file_location(f"_rollwright_module_{path.stem}", path)
        assert found and found.loader
        module = importlib.util.module_from_spec(found)
        found.loader.exec_module(module)
        module.AnsibleModule = capture  # type: ignore[attr-defined]
        try:
            module.main()
        except _Captured as captured:
            return dict(captured.args[0])
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    raise AssertionError(f"{path}: main() never called AnsibleModule(argument_spec=...)")


@functools.cache
def _ansible_doc(library: Path) -> tuple[dict[str, Any], str]:
    """`ansible-doc --json` of every module in one library folder (one call per role): its JSON and stderr."""
    names = sorted(path.stem for path in library.glob("*.py"))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(ANSIBLE_DOC), "-M", str(library), "-t", "module", "--json", *names], cwd=library,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    return json.loads(proc.stdout or "{}"), proc.stderr


def _doc(path: Path) -> dict[str, Any]:
    """ansible-doc's reading of the module, failing with ansible-doc's own complaint when it has none."""
    docs, stderr = _ansible_doc(path.parent)
    assert path.stem in docs, f"ansible-doc cannot read {_id(path)}:\n{stderr}"
    return docs[path.stem]


def test_every_role_library_is_covered() -> None:
    assert len(MODULES) >= 15 and {path.stem for path in MODULES} >= {"healthcheck", "release_stage", "canary_guard"}


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_the_doc_strings_are_yaml_naming_the_module(path: Path) -> None:
    strings = _assigned_strings(path)
    assert {"DOCUMENTATION", "RETURN"} <= strings.keys(), f"{_id(path)} lacks {set(DOC_STRINGS) - strings.keys()}"
    parsed = {}
    for name, text in strings.items():
        try:
            parsed[name] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            pytest.fail(f"{_id(path)}: {name} is not YAML: {err}")
    doc = parsed["DOCUMENTATION"]
    assert doc["module"] == path.stem
    missing = {"short_description", "description", "options", "author"} - doc.keys()
    assert not missing, f"{_id(path)}: DOCUMENTATION lacks {sorted(missing)}"
    assert isinstance(parsed["RETURN"], dict) and parsed["RETURN"]
    assert isinstance(parsed.get("EXAMPLES", []), list)


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_ansible_doc_reads_the_module(path: Path) -> None:
    read = _doc(path)
    assert read["doc"]["module"] == path.stem and read["doc"]["short_description"]
    assert _is_text(read["doc"]["description"]), read["doc"]["description"]
    assert read["return"], f"ansible-doc finds no RETURN in {_id(path)}"


def _disagreements(where: str, documented: dict[str, Any], spec: dict[str, dict[str, Any]]) -> list[str]:
    """How documented options differ from an argument_spec (suboptions against its `options`)."""
    found = []
    if documented.keys() != spec.keys():
        found.append(f"{where}: documented {sorted(documented)}, argument_spec {sorted(spec)}")
    for name in documented.keys() & spec.keys():
        doc, arg = documented[name], spec[name]
        if stray := doc.keys() - OPTION_KEYS:
            found.append(f"{where}.{name}: unknown keys {sorted(stray)} (an unquoted ', ' in a flow mapping?)")
        if not _is_text(doc.get("description")):
            found.append(f"{where}.{name}: no description, or not text: {doc.get('description')!r}")
        for key in COMPARED:
            fallback = {"type": "str", "required": False}.get(key)
            if doc.get(key, fallback) != arg.get(key, fallback):
                found.append(f"{where}.{name}.{key}: documented {doc.get(key)!r}, argument_spec {arg.get(key)!r}")
        if "options" in arg or "suboptions" in doc:
            found += _disagreements(f"{where}.{name}", doc.get("suboptions", {}), arg.get("options", {}))
    return found


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_the_options_are_the_argument_spec(path: Path) -> None:
    wrong = _disagreements(_id(path), _doc(path)["doc"].get("options") or {}, _argument_spec(path))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_every_return_value_says_what_when_and_its_type(path: Path) -> None:
    wrong = [f"{name}: {sorted(value)}" for name, value in _doc(path)["return"].items()
             if value.keys() - RETURN_KEYS or not {"description", "returned", "type"} <= value.keys()
             or not _is_text(value["description"])]
    assert not wrong, f"{_id(path)}: return values with unknown or missing keys (an unquoted ', '?): {wrong}"
