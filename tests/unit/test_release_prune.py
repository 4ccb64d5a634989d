"""The release role's cleanup (roles/release/library/release_prune.py), run by ansible on this machine: the
newest releases stay, and so do the ones current and previous point at, however old."""

from __future__ import annotations

import os
from pathlib import Path

from role_files import run_role_module


def _root(tmp_path: Path, versions: list[str], current: str, previous: str) -> Path:
    """A release root with `versions` staged oldest first (mtimes a minute apart) and the two links."""
    root = tmp_path / "srv"
    for age, version in enumerate(reversed(versions)):
        release = root / "releases" / version
        release.mkdir(parents=True)
        (release / "REVISION").write_text(version + "\n")
        os.utime(release, (1_000_000 - 60 * age, 1_000_000 - 60 * age))
    (root / "releases" / ".9.0.partial").mkdir()  # an unpack in progress is not a release
    for name, version in (("current", current), ("previous", previous)):
        (root / name).symlink_to(root / "releases" / version)
    return root


def _left(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "releases").iterdir())


def test_the_newest_are_kept_and_current_and_previous_whatever_their_age(tmp_path: Path) -> None:
    root = _root(tmp_path, ["1", "2", "3", "4", "5", "6"], current="1", previous="2")  # rolled back far
    result = run_role_module("release", "release_prune", {"root": str(root), "keep": 2})
    assert result["failed"] is False and result["changed"] is True, result
    assert sorted(Path(p).name for p in result["removed"]) == ["3", "4"]
    assert _left(root) == [".9.0.partial", "1", "2", "5", "6"]
    again = run_role_module("release", "release_prune", {"root": str(root), "keep": 2})
    assert again["changed"] is False and again["removed"] == [] and _left(root) == [".9.0.partial", "1", "2", "5", "6"]


def test_check_mode_says_what_would_go_and_removes_nothing(tmp_path: Path) -> None:
    root = _root(tmp_path, ["1", "2", "3"], current="3", previous="2")
    result = run_role_module("release", "release_prune", {"root": str(root), "keep": 2}, "--check")
    assert result["changed"] is True and [Path(p).name for p in result["removed"]] == ["1"], result
    assert _left(root) == [".9.0.partial", "1", "2", "3"]


def test_a_root_without_releases_has_nothing_to_remove(tmp_path: Path) -> None:
    result = run_role_module("release", "release_prune", {"root": str(tmp_path / "none"), "keep": 2})
    assert result["failed"] is False and result["changed"] is False and result["removed"] == [], result
