#!/usr/bin/python
"""Stage an uploaded artifact as releases/<version> in one call: verify, unpack, REVISION, shared links, rename."""

from __future__ import annotations

DOCUMENTATION = r"""
module: release_stage
short_description: Verify, unpack and link a release, then move it into place atomically
description:
  - Does nothing when C(<root>/releases/<version>) is staged already (its C(REVISION) names O(version)).
  - Checks the sha256 of C(<root>/artifacts/<version>.tar.gz) first; a mismatch fails with nothing unpacked.
  - Unpacks it with GNU C(tar) into the hidden C(<root>/releases/.<version>.partial) (emptied first), every file
    owned by O(owner) and O(group); when tar refuses the tarball the message names each refused member and tar's
    reason, or for an archive that ends early the member it was unpacking.
  - Writes C(REVISION), then links each entry of O(shared) to C(<root>/shared/<path>). A missing shared folder
    is made (owned by O(shared_owner) and O(shared_group)); an existing one is used as it is. In the release a
    missing path is linked and an empty folder replaced by the link; anything else the artifact ships there, a
    symlink among the parent folders on either side or a path leaving the release fails naming the path, with
    every entry checked before any link is made and the partial folder left as it is for inspection.
  - Renames the partial folder to C(releases/<version>) (replacing an incomplete folder of that name, one
    without a matching C(REVISION)), then removes the artifact. A release folder with a C(REVISION) is complete.
  - In check mode it changes nothing and reports a change when the version is not staged.
options:
  root: {description: "Release root (holds releases/, shared/ and artifacts/).", type: path, required: true}
  version: {description: Version being staged., type: str, required: true}
  sha256: {description: Expected sha256 of the artifact., type: str, required: true}
  owner: {description: Owner of the release files., type: str, default: root}
  group: {description: Group of the release files., type: str, default: root}
  shared: {description: "Shared paths, relative to the release.", type: list, elements: str, default: []}
  shared_owner: {description: Owner of the shared folders it creates., type: str, default: root}
  shared_group: {description: Group of the shared folders it creates., type: str, default: root}
author: rollwright
"""

EXAMPLES = r"""
- name: Stage the uploaded artifact
  release_stage:
    root: /srv/hello
    version: 1.4.0
    sha256: "<sha256>"
    shared: [log, public/uploads]
    shared_owner: hello
    shared_group: hello
"""

RETURN = r"""
release: {description: The release folder., returned: success, type: str}
members: {description: Number of members unpacked., returned: when it unpacked, type: int}
linked: {description: Shared paths linked (or whose empty folder was replaced by the link)., returned: when it
         unpacked, type: list}
created: {description: Folders created under shared/., returned: when it unpacked, type: list}
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.release_files import (Refused, ids, link_shared, make_folder, parts_of, paths, sha256_of,
                                                staged, unpack)


def verify(module, artifact, expected):
    """The artifact's sha256 matches; in check mode an artifact not uploaded (or stale) is a change to come."""
    got = sha256_of(artifact) if os.path.isfile(artifact) else None
    if got == expected.lower():
        return
    if module.check_mode:
        module.exit_json(changed=True, msg=f"{artifact} would be uploaded and staged")
    module.fail_json(msg=f"sha256 mismatch for {artifact}: expected {expected}, got {got or 'no file'}; "
                         "nothing was unpacked")


def write_revision(release, version, uid, gid):
    path = os.path.join(release, "REVISION")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(version + "\n")
    os.chmod(path, 0o644)
    os.chown(path, uid, gid)


def stage(module, root, version, release_ids, shared_ids):
    """Unpack into the partial folder, write REVISION, link shared paths, rename into place."""
    params, where = module.params, paths(root, version)
    partial = where["partial"]
    if os.path.lexists(partial):
        shutil.rmtree(partial)
    make_folder(partial, *release_ids)
    members, warnings = unpack(module, where["artifact"], partial, *release_ids)
    for line in warnings:
        module.warn(line)
    write_revision(partial, version, *release_ids)
    linked, created = link_shared(root, partial, params["shared"], shared_ids, release_ids)
    if os.path.lexists(where["release"]):  # incomplete (no matching REVISION): never staged whole
        shutil.rmtree(where["release"])
    os.rename(partial, where["release"])
    os.unlink(where["artifact"])
    return {"members": members, "linked": linked, "created": created}


def main():
    module = AnsibleModule(argument_spec={
        "root": {"type": "path", "required": True},
        "version": {"type": "str", "required": True},
        "sha256": {"type": "str", "required": True},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
        "shared": {"type": "list", "elements": "str", "default": []},
        "shared_owner": {"type": "str", "default": "root"},
        "shared_group": {"type": "str", "default": "root"},
    }, supports_check_mode=True)
    params = module.params
    root, version = params["root"], params["version"]
    release = paths(root, version)["release"]
    if staged(root, version):
        module.exit_json(changed=False, release=release)
    try:
        for path in params["shared"]:
            parts_of(path)  # a path leaving the release is refused before anything happens
    except Refused as exc:
        module.fail_json(msg=str(exc))
    verify(module, paths(root, version)["artifact"], params["sha256"])
    if module.check_mode:  # (the service user may not exist yet: check mode did not create it)
        module.exit_json(changed=True, release=release)
    try:
        release_ids = ids(params["owner"], params["group"])
        shared_ids = ids(params["shared_owner"], params["shared_group"])
        done = stage(module, root, version, release_ids, shared_ids)
    except Refused as exc:
        module.fail_json(msg=str(exc), release=release)
    module.exit_json(changed=True, release=release, **done)


if __name__ == "__main__":
    main()
