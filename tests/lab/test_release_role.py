"""The release role on a real host: linking shared paths never replaces what the artifact ships, never writes
through a link and never leaves the release root (issue 18: a shared '../../../x' replaced a folder in /srv)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from rollwright.lab.fleet import Lab

VENV_BIN = Path(sys.executable).parent
ROLES = Path(__file__).resolve().parents[2] / "roles"
ROOT = "/srv/shared-check"
HOST = "app1"


def _artifact(folder: Path, version: str, entries: dict[str, str | None]) -> tuple[Path, str]:
    """A tarball of `entries`: text for a file, None for an empty folder, '->target' for a symlink."""
    path = folder / f"{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif content.startswith("->"):
                info.type, info.linkname = tarfile.SYMTYPE, content[2:]
                tar.addfile(info)
            else:
                data = content.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _stage(lab: Lab, folder: Path, version: str, entries: dict[str, str | None],
           shared: list[str]) -> subprocess.CompletedProcess[str]:
    artifact, sha = _artifact(folder, version, {"app.py": "print('hi')\n", **entries})
    playbook = folder / f"stage-{version}.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Stage a release", "hosts": HOST, "gather_facts": False,
        "tasks": [{"name": "Stage it", "ansible.builtin.include_role": {"name": "release"},
                   "vars": {"release_root": ROOT, "release_version": version, "release_artifact_path": str(artifact),
                            "release_artifact_sha256": sha, "release_shared": shared}}]}]))
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(lab.inventory_path), str(playbook)],
                          cwd=folder, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "ANSIBLE_ROLES_PATH": str(ROLES), "ANSIBLE_HOST_KEY_CHECKING": "True"})
    print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
    return proc


def _sh(lab: Lab, command: str) -> str:
    return lab.run(HOST, command, check=True).stdout.strip()


def test_shared_links_never_replace_what_the_deploy_did_not_create(lab: Lab, tmp_path: Path) -> None:
    _sh(lab, f"rm -rf {ROOT} /srv/c13-sentinel /c13-sentinel && mkdir -p {ROOT}/shared/log /srv/c13-sentinel && "
             f"echo old > {ROOT}/shared/log/old.log && echo mine > /srv/c13-sentinel/data")

    # The artifact ships log/ with content where the shared link goes: refused, nothing replaced.
    proc = _stage(lab, tmp_path, "1.0.0", {"log": None, "log/keep.txt": "shipped\n"}, ["log"])
    assert proc.returncode != 0
    partial = f"{ROOT}/releases/.1.0.0.partial"
    assert f"the release already has {partial}/log (a folder with 1 entry)" in proc.stdout
    assert "refusing to replace it" in proc.stdout
    assert _sh(lab, f"test ! -L {partial}/log && cat {partial}/log/keep.txt") == "shipped"
    assert _sh(lab, f"test -e {ROOT}/releases/1.0.0 && echo staged || echo absent") == "absent"

    # An empty folder is replaced by the link (nothing lost); missing parents are made; shared content stays.
    proc = _stage(lab, tmp_path, "2.0.0", {"tmp": None, "public": None, "public/index.html": "<p>hi</p>\n"},
                  ["log", "tmp", "public/uploads", "data/cache"])
    assert proc.returncode == 0, proc.stdout
    release = f"{ROOT}/releases/2.0.0"
    links = _sh(lab, f"cd {release} && for p in log tmp public/uploads data/cache; do readlink $p; done")
    assert links.splitlines() == [f"{ROOT}/shared/{p}" for p in ("log", "tmp", "public/uploads", "data/cache")]
    assert _sh(lab, f"cat {release}/public/index.html {ROOT}/shared/log/old.log") == "<p>hi</p>\nold"
    assert _sh(lab, f"test -d {ROOT}/shared/public/uploads && test -d {ROOT}/shared/data/cache && echo ok") == "ok"

    # A link shipped as a parent folder is never written through (public -> /etc would make /etc/uploads).
    proc = _stage(lab, tmp_path, "3.0.0", {"public": "->/etc"}, ["public/uploads"])
    assert proc.returncode != 0
    assert f"{ROOT}/releases/.3.0.0.partial/public (in the release) is a symlink to /etc" in proc.stdout
    assert _sh(lab, "test -e /etc/uploads && echo made || echo none") == "none"

    # The traversal, given to the role directly (the spec refuses it at validate time).
    proc = _stage(lab, tmp_path, "4.0.0", {}, ["../../../c13-sentinel"])
    assert proc.returncode != 0
    assert "must be relative and stay inside the release" in proc.stdout
    assert _sh(lab, "test ! -L /srv/c13-sentinel && cat /srv/c13-sentinel/data") == "mine"
    assert _sh(lab, "test -e /c13-sentinel && echo made || echo none") == "none"
    _sh(lab, f"rm -rf {ROOT} /srv/c13-sentinel")
