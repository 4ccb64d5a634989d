"""`rollwright drift`: hosts whose live state differs from what the spec would produce.

First status.yml says where `current` points on every app host: a host not on the spec's version has
drifted. The hosts that are on it get the stage play of site.yml in Ansible check+diff mode (it writes
the release, unit and env file; check mode changes nothing), and every task that would change names
its host and file. (Check mode cannot simulate unpacking a release that is not there, hence the order.)
"""

from __future__ import annotations

import json
from collections.abc import Callable

from rollwright.errors import EXIT_FAILED
from rollwright.run.changes import WouldChange
from rollwright.run.engine import PlaybookRun, run_playbook
from rollwright.run.status import host_states
from rollwright.run.workspace import prepare_workspace
from rollwright.spec.loader import LoadedSpec

Write = Callable[[str], None]


def drift(loaded: LoadedSpec, target: str | None, write: Write, *, as_json: bool = False) -> int:
    """Exit 0 when every host matches the spec, 1 when some drifted (each named with what differs)."""
    workspace = prepare_workspace(loaded, target, ships_artifact=True)
    changes = WouldChange()
    version = loaded.spec.artifact.version if loaded.spec.artifact else ""
    states = [s for s in host_states(workspace) if s.live] if version else []  # blue/green: the idle colour may lag
    for state in states:
        if state.current != version:
            changes.found.setdefault(state.name, []).append(
                f"current is {state.current or 'nothing'}, the spec says {version}")
    # hosts on the spec's version: would the stage play change their files? (the others drifted already)
    on_version = [s.name for s in states if s.current == version]
    run = run_playbook(workspace.project, "site.yml", workspace.runs, changes, tags=["stage"], check=True,
                       limit=",".join(on_version) if version else None)
    return _report(write, run, changes.found, as_json, "no drift: every host matches the spec")


def check(loaded: LoadedSpec, target: str | None, write: Write, *, as_json: bool = False) -> int:
    """`deploy --check`: the whole site.yml in check+diff mode; what would change on each host."""
    workspace = prepare_workspace(loaded, target, ships_artifact=True)
    changes = WouldChange()
    run = run_playbook(workspace.project, "site.yml", workspace.runs, changes, check=True)
    return _report(write, run, changes.found, as_json, "nothing would change")


def _report(write: Write, run: PlaybookRun, found: dict[str, list[str]], as_json: bool, clean: str) -> int:
    if as_json:
        write(json.dumps({"ok": run.ok, "changes": found}, indent=2))
    elif not found:
        write(clean)
    for host, items in ([] if as_json else sorted(found.items())):
        write(f"{host}:")
        for item in items:
            write(f"    {item}")
    if not run.ok:
        write(f"✗ the check did not finish; details: {run.artifact_dir / 'stdout'}")
        return EXIT_FAILED
    return EXIT_FAILED if found else 0
