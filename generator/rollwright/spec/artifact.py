"""`--artifact PATH [--version V]`: deploy (plan, generate) a new build without editing the spec.

The spec's artifact section is replaced for this run only, in the loaded spec: the file on disk is never
rewritten, and everything downstream (plan, render, record, history, promotion gates, webhooks) sees the
build's own version and sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError

from rollwright.errors import BadInput
from rollwright.spec.loader import LoadedSpec
from rollwright.spec.model import Artifact

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tar", ".zip")
# the version at the end of a build's name: hello-1.4.0, hello_2.0-rc1, hello-v1.4.0+build.7; a bare number
# (hello-7, hello-x86_64) is too often something else to be taken for one
VERSION_IN_NAME = re.compile(r"[-_]v?(?P<version>\d+(?:\.\d+)+(?:[-+.][A-Za-z0-9]+)*)$")
CHUNK = 1024 * 1024


def version_from_name(name: str) -> str | None:
    """The version a build's file name carries (`hello-1.4.0.tar.gz` -> `1.4.0`), or None when it names none."""
    stem = next((name[:-len(s)] for s in ARCHIVE_SUFFIXES if name.endswith(s) and len(name) > len(s)), None)
    match = VERSION_IN_NAME.search(stem) if stem else None
    return match["version"] if match else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def with_artifact(loaded: LoadedSpec, path: Path, version: str | None = None) -> LoadedSpec:
    """`loaded` with its artifact replaced by the build at `path`: sha256 computed from the file, version
    given or read from the file's name. Refused (BadInput) when the spec ships no release, the file is not a
    readable regular file, or the version cannot be told."""
    if loaded.spec.artifact is None:
        raise BadInput(f"--artifact {path}: {loaded.path} deploys no release (it has no artifact section)")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise BadInput(f"--artifact {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise BadInput(f"--artifact {path}: not a regular file (give the build's tarball)")
    if version is None:
        version = version_from_name(path.name)
        if version is None:
            raise BadInput(f"--artifact {path}: cannot tell the version from the file name (expected one like "
                           f"{loaded.spec.app}-1.4.0.tar.gz); give it with --version")
    try:
        sha256 = file_sha256(path)
    except OSError as exc:
        raise BadInput(f"--artifact {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        signature = loaded.spec.artifact.signature  # how to check it; the signature file is the one beside it
        artifact = Artifact(path=str(path.resolve()), version=version, sha256=sha256,
                            signature=signature.model_copy(update={"path": None}) if signature else None)
    except ValidationError as exc:
        if any(e["loc"] == ("version",) for e in exc.errors()):
            raise BadInput(f"--version {version!r}: expected a version like 1.4.0 (letters, digits, '.', '_', '+', "
                           "'-'; starting with a letter or digit; at most 64 characters)") from None
        raise BadInput(f"--artifact {path}: {exc.errors()[0]['msg']}") from None
    return replace(loaded, spec=loaded.spec.model_copy(update={"artifact": artifact}))
