"""Build the Django example (examples/django/app) into a byte-reproducible release tarball.

    python examples/django/build.py 1.0.0 [-o OUTDIR]

writes OUTDIR/shop-VERSION.tar.gz: the project's files and VERSION, packed as the hello sample's build packs
(sorted entries, fixed mtime, owner root, no gzip timestamp), so the same inputs give the same sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP = HERE / "app"
HELLO_BUILD = HERE.parent / "hello" / "build.py"


def build(version: str, out_dir: Path, extra: dict[str, bytes] | None = None) -> tuple[Path, str]:
    """Write shop-VERSION.tar.gz into out_dir; return (tarball path, sha256 hex). `extra`: more files (a later
    release's migration, say) by their path in the project."""
    hello = runpy.run_path(str(HELLO_BUILD))  # its reproducible tar and atomic write, shared
    if not hello["VERSION_RE"].fullmatch(version):
        raise ValueError(f"invalid version {version!r}: must match {hello['VERSION_RE'].pattern}")
    files = {path.relative_to(APP).as_posix(): path.read_bytes() for path in sorted(APP.rglob("*"))
             if path.is_file() and "__pycache__" not in path.parts}
    files.update(extra or {}, VERSION=f"{version}\n".encode())
    data = hello["_tar_bytes"](files, hello["_mtime"]())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"shop-{version}.tar.gz"
    hello["_write_atomic"](path, data)
    return path, hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Django example into a reproducible tarball.")
    parser.add_argument("version", help="release version, e.g. 1.0.0")
    parser.add_argument("-o", "--out-dir", type=Path, default=HERE / "dist")
    args = parser.parse_args(argv)
    path, digest = build(args.version, args.out_dir)
    print(f"shop {args.version} {digest} {path.absolute()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
