"""The release role's release_layout and release_stage modules, run by ansible on this machine with GNU tar:
the sha256 is checked before unpacking, a tarball tar refuses fails naming the member and why, a staged
release is complete (REVISION) and a re-run changes nothing."""

from __future__ import annotations

import grp
import hashlib
import io
import os
import pwd
import tarfile
from pathlib import Path
from typing import Any

from role_files import run_role_module

ME = {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}


def _tarball(path: Path, members: dict[str, bytes]) -> tuple[Path, str]:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _module(name: str, args: dict[str, Any], *extra: str) -> dict[str, Any]:
    return run_role_module("release", name, args, *extra)


def _stage(root: Path, tarball: Path, sha: str, *extra: str, **args: Any) -> dict[str, Any]:
    """Lay out root, put the tarball where the upload goes, stage version 1.0.0."""
    layout = _module("release_layout", {"root": str(root), "version": "1.0.0", **ME})
    assert layout["failed"] is False, layout
    if not layout["staged"]:
        Path(layout["artifact"]).write_bytes(tarball.read_bytes())
    return _module("release_stage", {"root": str(root), "version": "1.0.0", "sha256": sha, **ME,
                                     "shared_owner": ME["owner"], "shared_group": ME["group"], **args}, *extra)


def test_a_good_tarball_is_staged_whole_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    tarball, sha = _tarball(tmp_path / "good.tar.gz", {"app.py": b"print()\n", "lib/x.txt": b"x\n"})
    root = tmp_path / "srv"
    result = _stage(root, tarball, sha, shared=["log"])
    assert result["changed"] is True and result["members"] == 2, result
    release = root / "releases" / "1.0.0"
    assert (release / "lib" / "x.txt").read_bytes() == b"x\n"
    assert (release / "REVISION").read_text() == "1.0.0\n"
    assert os.readlink(release / "log") == str(root / "shared" / "log") and (root / "shared" / "log").is_dir()
    assert sorted(p.name for p in (root / "releases").iterdir()) == ["1.0.0"]
    assert list((root / "artifacts").iterdir()) == []  # the unpacked artifact is gone
    layout = _module("release_layout", {"root": str(root), "version": "1.0.0", **ME})
    assert (layout["changed"], layout["staged"]) == (False, True), layout
    again = _module("release_stage", {"root": str(root), "version": "1.0.0", "sha256": sha, **ME})
    assert again["changed"] is False, again


def test_a_sha256_mismatch_is_refused_before_unpacking(tmp_path: Path) -> None:
    tarball, _ = _tarball(tmp_path / "good.tar.gz", {"app.py": b"print()\n"})
    root = tmp_path / "srv"
    result = _stage(root, tarball, "0" * 64)
    artifact = root / "artifacts" / "1.0.0.tar.gz"
    assert result["failed"] is True
    assert result["msg"].startswith(f"sha256 mismatch for {artifact}: expected {'0' * 64}, got "), result
    assert result["msg"].endswith("; nothing was unpacked"), result
    assert sorted(p.name for p in (root / "releases").iterdir()) == []


def test_check_mode_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    layout = _module("release_layout", {"root": str(root), "version": "1.0.0", **ME}, "--check")
    assert (layout["changed"], layout["staged"]) == (True, False) and not root.exists(), layout
    root.mkdir()
    result = _module("release_stage", {"root": str(root), "version": "1.0.0", "sha256": "0" * 64, **ME}, "--check")
    assert result["changed"] is True and result["failed"] is False, result  # it would be uploaded, then staged
    assert list(root.iterdir()) == []


def test_a_member_with_dot_dot_is_named_with_tar_s_reason(tmp_path: Path) -> None:
    tarball, sha = _tarball(tmp_path / "bad.tar.gz", {"app.py": b"print()\n", "../escape.txt": b"out\n"})
    root = tmp_path / "srv"
    result = _stage(root, tarball, sha)
    assert result["failed"] is True
    assert f"cannot unpack {root}/artifacts/1.0.0.tar.gz: " in result["msg"]
    assert "tar: ../escape.txt: Member name contains '..'" in result["msg"], result["msg"]
    assert not (root / "releases" / "escape.txt").exists() and not (root / "releases" / "1.0.0").exists()


def test_a_truncated_tarball_names_the_member_it_ended_in(tmp_path: Path) -> None:
    whole, _ = _tarball(tmp_path / "whole.tar.gz", {"app.py": b"print()\n", "lib/data.bin": os.urandom(200_000)})
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[:100_000])
    root = tmp_path / "srv"
    result = _stage(root, cut, hashlib.sha256(cut.read_bytes()).hexdigest())
    assert result["failed"] is True
    prefix = f"cannot unpack {root}/artifacts/1.0.0.tar.gz (while unpacking member lib/data.bin): "
    assert result["msg"].startswith(prefix), result["msg"]
    assert "Unexpected EOF in archive" in result["msg"] and "Exiting" not in result["msg"]


def test_a_shared_path_leaving_the_release_is_refused_before_anything(tmp_path: Path) -> None:
    tarball, sha = _tarball(tmp_path / "good.tar.gz", {"app.py": b"print()\n"})
    root = tmp_path / "srv"
    result = _stage(root, tarball, sha, shared=["../../x"])
    assert result["failed"] is True and "must be relative and stay inside the release" in result["msg"], result
    assert sorted(p.name for p in (root / "releases").iterdir()) == []
