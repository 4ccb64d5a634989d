"""Build the hello sample app into a byte-reproducible release tarball.

    python examples/hello/build.py 1.2.3 [--broken | --broken-on HOST[,HOST...]] [-o OUTDIR] [--json]

writes OUTDIR/hello-VERSION.tar.gz (top level: app.py, VERSION, and BROKEN when asked) and a sha256sum-format
OUTDIR/hello-VERSION.tar.gz.sha256. The same inputs give the same bytes (sorted entries, fixed mtime, owner root,
no gzip timestamp or name), so a sha256 in a deploy spec keeps meaning "this exact release".

--broken builds a release whose /health always answers 500; --broken-on only on the named hosts. They exist to
prove that a deploy stops and rolls back on a bad release, without editing app code; --fault crash (the app exits
at start, so its unit crash-loops) and --fault hang (/health accepts and never answers) prove the health gate's
deadline and its fail-fast on a failed unit.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP_SOURCE = HERE / "app" / "app.py"
WORKER_SOURCE = HERE / "app" / "worker.py"
DEFAULT_OUT = HERE / "dist"
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
FAULTS = ("", "crash", "hang")
# Fixed timestamp for every entry unless SOURCE_DATE_EPOCH says otherwise (https://reproducible-builds.org).
DEFAULT_MTIME = 1_700_000_000


def _mtime() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return DEFAULT_MTIME
    if not value.isdigit():
        raise ValueError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, got {value!r}")
    return int(value)


def _tar_bytes(files: dict[str, bytes], mtime: int) -> bytes:
    """A gzipped tar of files with every varying field pinned: same files in, same bytes out."""
    raw = io.BytesIO()
    # GzipFile with mtime=0 and filename="" leaves no timestamp or name in the gzip header.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def build(version: str, out_dir: Path, broken_on: list[str] | None = None, broken: bool = False,
          error_rate: float = 0.0, delay_ms: int = 0, fault: str = "",
          broken_worker: bool | list[str] = False, errors_after_s: int = 0) -> tuple[Path, str]:
    """Write hello-VERSION.tar.gz and its .sha256 into out_dir; return (tarball path, sha256 hex).

    broken: /health fails on every host. broken_on: it fails only on these hostnames.
    error_rate: this share of GET / answers 500; delay_ms: GET / answers that much later (health stays fine).
    errors_after_s: the errors start that many seconds after the app starts (past its health gate).
    fault: "crash" (the app exits at start, so its unit crash-loops) or "hang" (/health accepts, never answers).
    broken_worker: worker.py exits at start (the web app stays fine); a list: only on these hostnames.
    Raises ValueError for an invalid version or conflicting/empty broken options.
    """
    if not VERSION_RE.fullmatch(version):
        raise ValueError(f"invalid version {version!r}: must match {VERSION_RE.pattern}")
    hosts = [h.strip() for h in broken_on or [] if h.strip()]
    if broken and broken_on is not None:
        raise ValueError("use either broken or broken_on, not both")
    if broken_on is not None and not hosts:
        raise ValueError("broken_on needs at least one hostname")
    if not 0 <= error_rate <= 1 or not 0 <= delay_ms <= 10000 or not 0 <= errors_after_s <= 3600:
        raise ValueError("error_rate must be within 0..1, delay_ms within 0..10000, errors_after_s within 0..3600")

    files = {"app.py": APP_SOURCE.read_bytes(), "worker.py": WORKER_SOURCE.read_bytes(),
             "VERSION": f"{version}\n".encode()}
    if broken_worker:
        files["BROKEN_WORKER"] = b"" if broken_worker is True else "".join(f"{h}\n" for h in broken_worker).encode()
    if broken:
        files["BROKEN"] = b""  # empty: broken everywhere
    elif hosts:
        files["BROKEN"] = "".join(f"{h}\n" for h in hosts).encode()
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}, got {fault!r}")
    if error_rate or delay_ms or fault:
        faults = {"error_rate": error_rate, "delay_ms": delay_ms, **({"fault": fault} if fault else {}),
                  **({"errors_after_s": errors_after_s} if errors_after_s else {})}
        files["FAULTS"] = json.dumps(faults, sort_keys=True).encode()
    data = _tar_bytes(files, _mtime())
    digest = hashlib.sha256(data).hexdigest()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"hello-{version}.tar.gz"
    _write_atomic(path, data)
    _write_atomic(path.with_name(path.name + ".sha256"), f"{digest}  {path.name}\n".encode())
    return path, digest


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a reader never sees half a tarball."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the hello sample app into a reproducible tarball.")
    parser.add_argument("version", help="release version, e.g. 1.2.3")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--broken", action="store_true", help="the release's /health always answers 500")
    mode.add_argument("--broken-on", metavar="HOST[,HOST...]", help="/health answers 500 only on these hostnames")
    parser.add_argument("--error-rate", type=float, default=0.0, metavar="F",
                        help="this share of GET / answers 500 (health stays fine), e.g. 0.3")
    parser.add_argument("--delay-ms", type=int, default=0, metavar="MS", help="GET / answers MS later")
    parser.add_argument("--errors-after-s", type=int, default=0, metavar="S",
                        help="the --error-rate errors start S seconds after the app starts (past its health gate)")
    parser.add_argument("--fault", choices=[f for f in FAULTS if f], default="",
                        help="crash: the app exits at start (its unit crash-loops); hang: /health never answers")
    parser.add_argument("--broken-worker", action="store_true", help="worker.py exits at start (the web app is fine)")
    parser.add_argument("-o", "--out-dir", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of one line")
    args = parser.parse_args(argv)

    if not VERSION_RE.fullmatch(args.version):
        parser.error(f"invalid version {args.version!r}: must match {VERSION_RE.pattern}")
    broken_on = None if args.broken_on is None else [h for h in args.broken_on.split(",") if h.strip()]
    if broken_on is not None and not broken_on:
        parser.error("--broken-on needs at least one hostname")
    try:
        path, digest = build(args.version, args.out_dir, broken_on=broken_on, broken=args.broken,
                             error_rate=args.error_rate, delay_ms=args.delay_ms, fault=args.fault,
                             broken_worker=args.broken_worker, errors_after_s=args.errors_after_s)
    except ValueError as exc:
        parser.error(str(exc))

    if args.json:
        broken: bool | list[str] = True if args.broken else (broken_on or False)
        print(json.dumps({"version": args.version, "sha256": digest, "path": str(path.absolute()), "broken": broken}))
    else:
        print(f"hello {args.version} {digest} {path.absolute()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
