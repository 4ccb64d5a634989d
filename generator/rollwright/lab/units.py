"""systemd unit masks written as plain symlinks into a root tree (base image or a host's overlay).

Writing the links ourselves works before the host has ever booted, without systemctl or a bus.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def mask_units(root: Path, units: Iterable[str]) -> None:
    """Mask units (link to /dev/null) so nothing, not even a dependency, starts them."""
    for unit in units:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
