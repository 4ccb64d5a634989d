"""The one Debian 12 base image every lab host boots from (read-only lower dir of each host's overlay).

Built once with debootstrap from the machine's own apt mirror and cached outside the repo under a key
that changes with the package list, the suite and this script's version, so editing either rebuilds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rollwright.errors import BadInput
from rollwright.lab.system import Log, remove_tree, run
from rollwright.lab.units import mask_units

CACHE_DIR = Path("/var/cache/rollwright/images")
SUITE = "bookworm"
# Bump when the build steps below change in a way that changes the image.
SCRIPT_VERSION = 1
PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "iproute2",
    "procps",
    "sudo",
    "ca-certificates",
    "curl",
    "haproxy",
    "socat",
    "postgresql",
    "postgresql-client",
    "tar",
    "gzip",
    # a real Django app (examples/django): its framework, its PostgreSQL driver and its WSGI server
    "python3-django",
    "python3-psycopg2",
    "gunicorn",
)
# Units no lab host needs: timers that would wake every host at once, and a console login prompt.
IDLE_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "console-getty.service",
)
SSHD_CONFIG = """\
# Written by rollwright lab: each host gets its own ed25519 host key before first boot.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""
JOURNALD_CONFIG = """\
[Journal]
Storage=volatile
RuntimeMaxUse=16M
"""


def image_key(packages: Iterable[str] = PACKAGES, suite: str = SUITE) -> str:
    """A short hash of what goes into the image: a new key means a new build."""
    recipe = json.dumps({"suite": suite, "packages": sorted(packages), "script": SCRIPT_VERSION})
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _deb822_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """Paragraphs of a deb822 file as field -> value (continuation lines joined, comments dropped)."""
    fields: dict[str, str] = {}
    last = ""
    for raw in [*text.splitlines(), ""]:
        line = raw.rstrip()
        if line.startswith("#"):
            continue
        if not line:
            if fields:
                yield fields
            fields, last = {}, ""
        elif line[0].isspace() and last:
            fields[last] += " " + line.strip()
        elif ":" in line:
            last, value = (part.strip() for part in line.split(":", 1))
            last = last.lower()
            fields[last] = value


def debian_mirror(
    suite: str = SUITE,
    sources_dir: Path = Path("/etc/apt/sources.list.d"),
    sources_list: Path = Path("/etc/apt/sources.list"),
) -> tuple[str, str | None]:
    """The machine's own Debian mirror for suite, and its keyring if the source names one.

    Read at run time from apt's configuration, so no mirror host name is ever written into the repo.
    """
    for path in sorted(sources_dir.glob("*.sources")):
        for para in _deb822_paragraphs(path.read_text()):
            if para.get("enabled", "yes").lower() == "no" or "deb" not in para.get("types", "").split():
                continue
            uris = para.get("uris", "").split()
            if suite in para.get("suites", "").split() and uris:
                return uris[0], para.get("signed-by") or None
    paths = [sources_list, *sorted(sources_dir.glob("*.list"))]
    for path in (p for p in paths if p.exists()):
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1], None
    raise BadInput(f"no apt source for Debian {suite} found in {sources_dir}/*.sources or {sources_list}")


@contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """One build at a time per cache dir, even across processes."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_image(
    log: Log,
    cache_dir: Path = CACHE_DIR,
    packages: tuple[str, ...] = PACKAGES,
    keep: Iterable[Path] = (),
) -> Path:
    """The cached base image's root filesystem, built first if needed.

    Images of older keys are removed after a build unless listed in keep (a running lab's lower dir).
    """
    key = image_key(packages)
    image_dir = cache_dir / key
    with _locked(cache_dir):
        if not (image_dir / "image.json").exists():
            _build(image_dir, packages, log)
            _prune(cache_dir, {image_dir, *(Path(p).parent for p in keep)})
    return image_dir / "rootfs"


def _build(image_dir: Path, packages: tuple[str, ...], log: Log) -> None:
    """debootstrap into a scratch dir, trim it, and move it into place only when complete."""
    partial = image_dir.with_name(image_dir.name + ".partial")
    remove_tree(partial)  # a build killed half-way
    remove_tree(image_dir)
    mirror, keyring = debian_mirror()
    log(f"building the Debian 12 base image with debootstrap from {mirror} (about a minute, once)")
    started = time.monotonic()
    rootfs = partial / "rootfs"
    partial.mkdir(parents=True)
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}"]
    if keyring and Path(keyring).is_file():
        argv.append(f"--keyring={keyring}")
    run([*argv, SUITE, str(rootfs), mirror])
    _trim(rootfs)
    seconds = round(time.monotonic() - started, 1)
    manifest = {"suite": SUITE, "packages": list(packages), "mirror": mirror, "seconds": seconds}
    (partial / "image.json").write_text(json.dumps(manifest, indent=2) + "\n")
    os.rename(partial, image_dir)
    log(f"base image built in {seconds} s: {image_dir}")


def _trim(rootfs: Path) -> None:
    """Make the image a neutral template: no identity, no host keys, no caches, idle units masked."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "etc/ssh/ssh_host_*"):
        for path in rootfs.glob(pattern):
            path.unlink()
    for path in rootfs.glob("var/lib/apt/lists/*"):
        if path.is_file():
            path.unlink()
    for docs in ("usr/share/doc", "usr/share/man", "usr/share/info"):
        remove_tree(rootfs / docs)
        (rootfs / docs).mkdir()
    (rootfs / "etc/machine-id").write_text("")  # systemd makes one per boot unless the overlay has one
    (rootfs / "etc/hostname").unlink(missing_ok=True)
    (rootfs / "etc/ssh/sshd_config.d/rollwright.conf").write_text(SSHD_CONFIG)
    journald = rootfs / "etc/systemd/journald.conf.d"
    journald.mkdir(parents=True, exist_ok=True)
    (journald / "rollwright.conf").write_text(JOURNALD_CONFIG)
    (rootfs / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    mask_units(rootfs, IDLE_UNITS)


def _prune(cache_dir: Path, keep: set[Path]) -> None:
    """Drop images no lab uses any more (each is a few hundred MB)."""
    for path in cache_dir.iterdir():
        if path.is_dir() and path not in keep:
            remove_tree(path)
