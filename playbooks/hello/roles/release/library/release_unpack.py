#!/usr/bin/python
"""Unpack a release tarball with GNU tar, and when tar refuses it, say which member and why."""

from __future__ import annotations

DOCUMENTATION = r"""
module: release_unpack
short_description: Unpack a release tarball into a folder, naming the member and the reason of a failure
description:
  - Runs GNU C(tar) (which detects the compression) into O(dest), listing each member as it goes, then
    gives every unpacked file to O(owner) and O(group) (the archive's owners are not kept).
  - When tar fails, the message names each member tar refused and its reason (a C(..) in a member name,
    a link out of the folder, a corrupt or truncated archive), and for an archive that ends early, the
    member it was unpacking. C(ansible.builtin.unarchive) says only that it failed to unpack.
options:
  src: {description: Tarball on the host., type: path, required: true}
  dest: {description: Existing folder to unpack into., type: path, required: true}
  owner: {description: Owner of every unpacked file., type: str, required: true}
  group: {description: Group of every unpacked file., type: str, required: true}
author: rollwright
"""

EXAMPLES = r"""
- name: Unpack the artifact
  release_unpack:
    src: /srv/hello/artifacts/1.4.0.tar.gz
    dest: /srv/hello/releases/.1.4.0.partial
    owner: root
    group: root
"""

RETURN = r"""
members: {description: Number of members unpacked., returned: success, type: int}
"""

import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

# tar's closing lines, which name no member and no reason of their own.
TAR_SUMMARY = ("Exiting with failure status due to previous errors", "Error is not recoverable: exiting now")


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


def main():
    module = AnsibleModule(argument_spec={
        "src": {"type": "path", "required": True},
        "dest": {"type": "path", "required": True},
        "owner": {"type": "str", "required": True},
        "group": {"type": "str", "required": True},
    }, supports_check_mode=True)
    src, dest = module.params["src"], module.params["dest"]
    try:
        uid, gid = pwd.getpwnam(module.params["owner"]).pw_uid, grp.getgrnam(module.params["group"]).gr_gid
    except KeyError as exc:
        module.fail_json(msg=f"no such user or group: {exc}")
    if module.check_mode:
        module.exit_json(changed=True)
    tar = module.get_bin_path("tar", required=True)
    rc, out, err = module.run_command([tar, "--extract", "--verbose", "--no-same-owner", "--file", src,
                                       "--directory", dest])
    listed = [line for line in out.splitlines() if line]
    if rc != 0:
        module.fail_json(msg=failure(src, listed, reasons(err, tar)), members=len(listed))
    for line in reasons(err, tar):  # e.g. "Removing leading `/' from member names": unpacked inside dest all the same
        module.warn(line)
    own(dest, uid, gid)
    module.exit_json(changed=True, members=len(listed))


if __name__ == "__main__":
    main()
