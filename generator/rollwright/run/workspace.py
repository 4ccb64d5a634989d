"""The generated project a run uses: the target's project as the spec is now, in a folder named by its content
under the spec's `.rollwright/<target>/projects/`, kept for a day beyond the newest few (a run may still use one).
Every command that runs playbooks or reaches hosts starts here."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from rollwright.render.project import WORKSPACE_STATE, prepare, render, resolve_target, write_project_once
from rollwright.run.status import Workspace
from rollwright.spec.loader import LoadedSpec

STATE_DIR = ".rollwright"
PROJECTS_KEPT = 5


def prepare_workspace(loaded: LoadedSpec, target: str | None, *, ships_artifact: bool = False) -> Workspace:
    """Generate the target's project as the spec is now, in a folder named by its content. Only a run that
    ships the release (`ships_artifact`) needs the artifact: a rollback or a status works without it."""
    name, _ = resolve_target(loaded, target)
    root = (loaded.base_dir / STATE_DIR / name).resolve()
    projects = root / "projects"
    files = render(prepare(loaded, name, local_state=WORKSPACE_STATE, artifact_required=ships_artifact))
    digest = hashlib.sha256(b"".join(path.encode() + b"\0" + data for path, data in sorted(files.items())))
    project = projects / digest.hexdigest()[:16]
    write_project_once(files, project)
    os.utime(project)
    _prune(projects, keep=project)
    return Workspace(root, project, digest.hexdigest())


def _prune(projects: Path, keep: Path) -> None:
    """Projects not used for a day, beyond the newest PROJECTS_KEPT (a run may still use a recent one)."""
    found = sorted((p for p in projects.iterdir() if p.is_dir() and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in found[PROJECTS_KEPT:]:
        if old != keep and time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
