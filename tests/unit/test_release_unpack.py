"""The release_unpack module with the host's GNU tar: a tarball tar refuses fails naming the member and why."""

from __future__ import annotations

import grp
import io
import json
import os
import pwd
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "roles/release/library/release_unpack.py"


def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _unpack(tmp_path: Path, tarball: Path) -> tuple[dict[str, Any], Path]:
    dest = tmp_path / "release"
    dest.mkdir()
    me = {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"src": str(tarball), "dest": str(dest), **me}}))
    proc = subprocess.run([sys.executable, str(MODULE), str(args)], capture_output=True, text=True, timeout=60,
                          check=False)
    return json.loads(proc.stdout), dest


def test_a_member_with_dot_dot_is_named_with_tar_s_reason(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "bad.tar.gz", {"app.py": b"print()\n", "../escape.txt": b"out\n"})
    result, _ = _unpack(tmp_path, tarball)
    assert result["failed"] is True
    assert f"cannot unpack {tarball}: " in result["msg"]
    assert "tar: ../escape.txt: Member name contains '..'" in result["msg"], result["msg"]
    assert not (tmp_path / "escape.txt").exists()


def test_a_truncated_tarball_names_the_member_it_ended_in(tmp_path: Path) -> None:
    whole = _tarball(tmp_path / "whole.tar.gz", {"app.py": b"print()\n", "lib/data.bin": os.urandom(200_000)})
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[:100_000])
    result, _ = _unpack(tmp_path, cut)
    assert result["failed"] is True
    assert result["msg"].startswith(f"cannot unpack {cut} (while unpacking member lib/data.bin): "), result["msg"]
    assert "Unexpected EOF in archive" in result["msg"] and "Exiting" not in result["msg"]


def test_a_good_tarball_is_unpacked_whole(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "good.tar.gz", {"app.py": b"print()\n", "lib/x.txt": b"x\n"})
    result, dest = _unpack(tmp_path, tarball)
    assert result.get("failed") is not True and result["members"] == 2, result
    assert (dest / "lib" / "x.txt").read_bytes() == b"x\n"
