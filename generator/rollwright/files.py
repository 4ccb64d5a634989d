"""Writing the user's own files (spec, inventories, their group_vars) so that no one ever sees half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def replace_file(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` whole and at once: a reader, or a crash, sees the old file or the new one. The new
    file gets `mode`, or else the old file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(temporary, mode)
        elif path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
