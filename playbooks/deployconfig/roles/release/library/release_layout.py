#!/usr/bin/python
"""Lay out a release root and say whether a version is staged there: the stage's first and only look."""

from __future__ import annotations

DOCUMENTATION = r"""
module: release_layout
short_description: Create a release root's folders and tell whether a version is already staged
description:
  - Makes C(<root>), C(<root>/releases), C(<root>/shared) and C(<root>/artifacts) folders of O(owner) and
    O(group), mode 0755 (an existing folder, or a link to one, gets that owner and mode).
  - Says whether C(<root>/releases/<version>) is staged (its C(REVISION) names O(version)), so the upload and
    the unpack can be skipped, and where the artifact goes. One task instead of a stat and a file loop.
options:
  root: {description: Release root., type: path, required: true}
  version: {description: Version being deployed., type: str, required: true}
  owner: {description: Owner of the layout folders., type: str, default: root}
  group: {description: Group of the layout folders., type: str, default: root}
author: rollwright
"""

EXAMPLES = r"""
- name: Lay out the release root
  release_layout:
    root: /srv/hello
    version: 1.4.0
  register: release_layout_result
"""

RETURN = r"""
staged: {description: Whether releases/<version> is complete (REVISION names the version)., returned: success,
         type: bool}
release: {description: The release folder of the version., returned: success, type: str}
artifact: {description: Where the artifact is uploaded on the host., returned: success, type: str}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.release_files import Refused, ids, lay_out, layout_changes, paths, staged


def main():
    module = AnsibleModule(argument_spec={
        "root": {"type": "path", "required": True},
        "version": {"type": "str", "required": True},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
    }, supports_check_mode=True)
    root, version = module.params["root"], module.params["version"]
    try:
        uid, gid = ids(module.params["owner"], module.params["group"])
        todo = layout_changes(root, uid, gid)
    except Refused as exc:
        module.fail_json(msg=str(exc))
    if todo and not module.check_mode:
        lay_out(todo, uid, gid)
    where = paths(root, version)
    module.exit_json(changed=bool(todo), staged=staged(root, version), release=where["release"],
                     artifact=where["artifact"], path=root)


if __name__ == "__main__":
    main()
