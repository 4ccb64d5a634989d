#!/usr/bin/python
"""Name another version at the end of a service's env file: a rollback restarts the service in another release."""

from __future__ import annotations

DOCUMENTATION = r"""
module: service_version
short_description: Rewrite the deployed version's lines at the end of a service's env file
description:
  - "Rewrites the lines under C(# rollwright: the deployed version ...) of C(/etc/rollwright/<name>.env) (see
    service_install) for O(version): C(ROLLWRIGHT_VERSION), C(ROLLWRIGHT_RELEASE) and C(OTEL_RESOURCE_ATTRIBUTES).
    The file's own lines (which may hold secrets) stay as they are and are never returned; its owner and mode
    stay too."
  - Used before a rollback's restart, so the process started in the old release names that release.
  - Does nothing when the file is missing or names O(version) already.
options:
  name: {description: systemd unit name (without .service)., type: str, required: true}
  root: {description: The release root., type: path, required: true}
  version: {description: The release the service restarts in., type: str, required: true}
author: rollwright
"""

EXAMPLES = r"""
- name: Name the release the service restarts in
  service_version:
    name: hello
    root: /srv/hello
    version: 1.3.0
"""

RETURN = r"""
path: {description: The env file., returned: always, type: str}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.service_env import own_lines, replace_file, with_version

ENV_DIR = "/etc/rollwright"


def main():
    module = AnsibleModule(argument_spec={
        "name": {"type": "str", "required": True},
        "root": {"type": "path", "required": True},
        "version": {"type": "str", "required": True},
    }, supports_check_mode=True)
    params = module.params
    path = os.path.join(ENV_DIR, f"{params['name']}.env")
    try:
        with open(path, encoding="utf-8") as handle:
            before = handle.read()
            info = os.fstat(handle.fileno())
    except FileNotFoundError:
        module.exit_json(changed=False, path=path)
    after = with_version(own_lines(before), params["version"], params["root"])
    if after == before or module.check_mode:
        module.exit_json(changed=after != before, path=path)
    replace_file(path, after, info.st_uid, info.st_gid, info.st_mode & 0o7777)
    module.exit_json(changed=True, path=path)


if __name__ == "__main__":
    main()
