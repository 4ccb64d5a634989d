#!/usr/bin/python
"""Remove the oldest staged releases beyond the newest kept, never the one current or previous points at."""

from __future__ import annotations

DOCUMENTATION = r"""
module: release_prune
short_description: Keep the newest releases of a release root, never current or previous
description:
  - Lists the release folders under C(<root>/releases) (hidden ones, such as an unpack in progress, are not
    releases), keeps the O(keep) newest by modification time and removes the others, except the ones
    C(current) and C(previous) point at. One task instead of a find, a stat loop and a file loop.
options:
  root: {description: "Release root (holds releases/, current, previous).", type: path, required: true}
  keep: {description: How many of the newest releases to keep., type: int, default: 5}
author: rollwright
"""

EXAMPLES = r"""
- name: Keep the five newest releases
  release_prune:
    root: /srv/hello
    keep: 5
"""

RETURN = r"""
removed: {description: "The release folders removed (or that would be, in check mode).", returned: always,
          type: list, elements: str}
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule


def linked(root):
    """The folders current and previous point at (resolved), so they are never removed."""
    links = [os.path.join(root, name) for name in ("current", "previous")]
    return {os.path.realpath(path) for path in links if os.path.islink(path)}


def beyond_kept(root, keep):
    """Release folders older than the newest `keep`, oldest last, without the linked ones."""
    releases = os.path.join(root, "releases")
    try:
        entries = [entry for entry in os.scandir(releases)
                   if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    entries.sort(key=lambda entry: entry.stat(follow_symlinks=False).st_mtime, reverse=True)
    keep_out = linked(root)
    return [entry.path for entry in entries[keep:] if os.path.realpath(entry.path) not in keep_out]


def main():
    module = AnsibleModule(argument_spec={
        "root": {"type": "path", "required": True},
        "keep": {"type": "int", "default": 5},
    }, supports_check_mode=True)
    if module.params["keep"] < 1:
        module.fail_json(msg=f"keep must be at least 1, not {module.params['keep']}")
    removed = beyond_kept(module.params["root"], module.params["keep"])
    if not module.check_mode:
        for path in removed:
            shutil.rmtree(path)
    module.exit_json(changed=bool(removed), removed=removed)


if __name__ == "__main__":
    main()
