"""What staging a release does on the host, shared by the release role's modules: the layout, unpacking a
tarball with GNU tar (naming the member and the reason when tar refuses it) and linking shared paths without
ever replacing what the deploy did not make."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat

LAYOUT = ("", "releases", "shared", "artifacts")  # folders under the release root
# tar's closing lines, which name no member and no reason of their own.
TAR_SUMMARY = ("Exiting with failure status due to previous errors", "Error is not recoverable: exiting now")


class Refused(Exception):
    """Something that cannot be staged safely; the message names it."""


def paths(root, version):
    """The release folder, its hidden unpack folder and the uploaded artifact of a version."""
    return {"release": os.path.join(root, "releases", version),
            "partial": os.path.join(root, "releases", f".{version}.partial"),
            "artifact": os.path.join(root, "artifacts", f"{version}.tar.gz")}


def staged(root, version):
    """Whether releases/<version> is complete: its REVISION names the version."""
    try:
        with open(os.path.join(paths(root, version)["release"], "REVISION"), encoding="utf-8") as handle:
            return handle.read().strip() == version
    except (FileNotFoundError, NotADirectoryError):
        return False


def ids(owner, group):
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise Refused(f"no such user or group: {exc}") from None


def make_folder(path, uid, gid):
    os.mkdir(path, 0o755)
    os.chmod(path, 0o755)  # whatever the umask
    os.chown(path, uid, gid)


def layout_changes(root, uid, gid):
    """The layout folders that are missing or not uid:gid 0755 (a link to a folder counts as the folder)."""
    todo = []
    for name in LAYOUT:
        path = os.path.join(root, name) if name else root
        try:
            info = os.stat(path)
        except FileNotFoundError:
            todo.append(path)
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise Refused(f"{path} is not a folder: cannot lay out the release root there")
        if (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) != (uid, gid, 0o755):
            todo.append(path)
    return todo


def lay_out(paths_todo, uid, gid):
    for path in paths_todo:
        if os.path.isdir(path):
            os.chmod(path, 0o755)
            os.chown(path, uid, gid)
        else:
            make_folder(path, uid, gid)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def reasons(stderr, tar):
    """What tar and its decompressor said, once each, without tar's summary lines; tar named `tar`."""
    lines = dict.fromkeys(line.strip().replace(f"{tar}: ", "tar: ", 1) for line in stderr.splitlines() if line.strip())
    return [line for line in lines if not line.endswith(TAR_SUMMARY)]


def failure(src, listed, said):
    """The message for a failed unpack: tar's reasons, each naming its member, or else the member it stopped in."""
    said = said or ["tar failed without saying why"]
    named = any(line.startswith("tar: ") and line.count(": ") >= 2 for line in said)
    where = f" (while unpacking member {listed[-1]})" if listed and not named else ""
    return f"cannot unpack {src}{where}: {'; '.join(said)}"


def own(dest, uid, gid):
    """Every unpacked path, links themselves included, owned by uid:gid."""
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, gid)
    os.lchown(dest, uid, gid)


def unpack(module, src, dest, uid, gid):
    """GNU tar (it detects the compression) into the existing folder dest, then everything owned by uid:gid.
    Returns (members unpacked, tar's warnings); raises Refused naming the member and tar's reason."""
    tar = module.get_bin_path("tar", required=True)
    rc, out, err = module.run_command([tar, "--extract", "--verbose", "--no-same-owner", "--file", src,
                                       "--directory", dest])
    listed = [line for line in out.splitlines() if line]
    if rc != 0:
        raise Refused(failure(src, listed, reasons(err, tar)))
    own(dest, uid, gid)
    return len(listed), reasons(err, tar)  # e.g. "Removing leading `/' from member names": unpacked inside all the same


def parts_of(path):
    """The parts of a relative path that stays inside its folder."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not path or path.startswith("/") or "\0" in path or ".." in parts or not parts:
        raise Refused(f"shared path {path!r} must be relative and stay inside the release (no '..')")
    return parts


def describe(path, info):
    if stat.S_ISLNK(info.st_mode):
        return f"a symlink to {os.readlink(path)}"
    if stat.S_ISDIR(info.st_mode):
        count = len(os.listdir(path))
        return f"a folder with {count} entr{'y' if count == 1 else 'ies'}" if count else "an empty folder"
    return "a file" if stat.S_ISREG(info.st_mode) else "a special file"


def lstat_or_none(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def missing_parents(base, parts, side):
    """Parent folders of base/parts that do not exist yet; refuses a parent that is a link or not a folder."""
    missing, current = [], base
    for part in parts[:-1]:
        current = os.path.join(current, part)
        info = lstat_or_none(current) if not missing else None
        if info is None:
            missing.append(current)
        elif not stat.S_ISDIR(info.st_mode):
            raise Refused(f"{current} ({side}) is {describe(current, info)}, not a folder: refusing to link "
                          "through it")
    return missing


def plan_link(root, release, path):
    """What linking one shared path takes (folders to create, whether an empty folder goes); changes nothing."""
    parts = parts_of(path)
    shared_dir = os.path.join(root, "shared")
    target = os.path.join(shared_dir, *parts)
    link = os.path.join(release, *parts)
    step = {"path": "/".join(parts), "target": target, "link": link,
            "shared_parents": missing_parents(shared_dir, parts, "in shared/"),
            "release_parents": missing_parents(release, parts, "in the release")}
    target_info = None if step["shared_parents"] else lstat_or_none(target)
    step["create_target"] = target_info is None
    link_info = None if step["release_parents"] else lstat_or_none(link)
    step["action"] = "link"
    if link_info is not None:
        if stat.S_ISLNK(link_info.st_mode) and os.readlink(link) == target:
            step["action"] = "none"
        elif stat.S_ISDIR(link_info.st_mode) and not os.listdir(link):
            step["action"] = "replace-empty"
        else:
            raise Refused(f"the release already has {link} ({describe(link, link_info)}) where the shared link "
                          f"'{step['path']}' goes: refusing to replace it. Ship the artifact without it, or take "
                          f"'{step['path']}' out of release.shared")
    return step


def link_shared(root, release, shared, shared_ids, link_ids):
    """Link every shared path of the release to <root>/shared, each checked before anything changes.
    Returns (paths linked, shared folders created)."""
    steps = [plan_link(root, release, path) for path in shared]
    for step in steps:
        for folder in step["shared_parents"]:
            make_folder(folder, *shared_ids)
        if step["create_target"]:
            make_folder(step["target"], *shared_ids)
        for folder in step["release_parents"]:
            make_folder(folder, *link_ids)
        if step["action"] == "replace-empty":
            os.rmdir(step["link"])  # fails, changing nothing, if something appeared in it meanwhile
        if step["action"] != "none":
            os.symlink(step["target"], step["link"])
            os.lchown(step["link"], *link_ids)
    return ([s["path"] for s in steps if s["action"] != "none"],
            [s["target"] for s in steps if s["create_target"]])
