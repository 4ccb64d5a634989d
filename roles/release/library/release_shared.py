#!/usr/bin/python
"""Link a release's shared paths to <root>/shared without ever replacing a file or folder the deploy did not make."""

from __future__ import annotations

DOCUMENTATION = r"""
module: release_shared
short_description: Link shared paths of a release being staged to the release root's shared folder
description:
  - Each entry of O(paths) is a relative path (no C(..), no empty or C(.) parts) that becomes a symlink
    C(<release>/<path>) to C(<root>/shared/<path>), so logs and uploads survive from release to release.
  - A missing C(<root>/shared/<path>) is created as a folder owned by O(owner) and O(group); an existing
    one (folder, file or a link an operator made) is used as it is and never changed.
  - In the release, a missing path is linked and an empty folder (nothing to lose) is replaced by the link.
    Anything else there (a file, a folder with content, another link), or a symlink among the parent
    folders on either side, fails the task naming the path and changes nothing: the deploy never replaces
    what it did not create, and never writes through a link.
  - Every entry is checked before anything is changed.
options:
  root: {description: Release root (holds shared/)., type: path, required: true}
  release: {description: The release folder being staged., type: path, required: true}
  paths: {description: Shared paths, relative to the release., type: list, elements: str, default: []}
  owner: {description: Owner of the shared folders it creates., type: str, default: root}
  group: {description: Group of the shared folders it creates., type: str, default: root}
  link_owner: {description: Owner of the links and of parent folders it creates in the release., type: str,
               default: root}
  link_group: {description: Group of the links and of parent folders it creates in the release., type: str,
               default: root}
author: rollwright
"""

EXAMPLES = r"""
- name: Link shared paths into the release
  release_shared:
    root: /srv/hello
    release: /srv/hello/releases/.1.4.0.partial
    paths: [log, public/uploads]
    owner: hello
    group: hello
"""

RETURN = r"""
linked: {description: Paths linked (or whose empty folder was replaced by the link)., returned: always, type: list}
created: {description: Folders created under shared/., returned: always, type: list}
"""

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule


class Refused(Exception):
    """A shared path that cannot be linked safely; the message names it."""


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


def plan(root, release, path):
    """What linking one path takes (folders to create, whether an empty folder goes); changes nothing."""
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


def ids(owner, group):
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise Refused(f"no such user or group: {exc}") from None


def make_folder(path, uid, gid):
    os.mkdir(path, 0o755)
    os.chmod(path, 0o755)  # whatever the umask
    os.chown(path, uid, gid)


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "release": {"type": "path", "required": True},
            "paths": {"type": "list", "elements": "str", "default": []},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "link_owner": {"type": "str", "default": "root"},
            "link_group": {"type": "str", "default": "root"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        shared_ids = ids(params["owner"], params["group"])
        link_ids = ids(params["link_owner"], params["link_group"])
        steps = [plan(params["root"], params["release"], path) for path in params["paths"]]
    except Refused as exc:
        module.fail_json(msg=str(exc))
    todo = [s for s in steps if s["action"] != "none" or s["create_target"]]
    result = {"changed": bool(todo), "linked": [s["path"] for s in todo if s["action"] != "none"],
              "created": [s["target"] for s in steps if s["create_target"]]}
    if module.check_mode or not todo:
        module.exit_json(**result)
    for step in todo:
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
    module.exit_json(**result)


if __name__ == "__main__":
    main()
