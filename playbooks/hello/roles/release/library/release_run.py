#!/usr/bin/python
"""Run the spec's commands inside a staged release, as the app's user with the service's own env file."""

from __future__ import annotations

DOCUMENTATION = r"""
module: release_run
short_description: Run commands inside a staged release as the app's user, with the service's env file
description:
  - "Runs each of O(commands) as C(/bin/sh -c COMMAND) in C(<root>/releases/<version>), in a transient systemd
    unit (C(systemd-run --uid --gid -p EnvironmentFile=...)), the way C(rollwright exec) runs a command: the
    service's env file is read on the host, so its secrets never pass through the control node."
  - Stops at the first command that fails; the message names it, its exit code and the end of its output.
  - "With O(marker), a file of that name is written into the release after every command passed, holding a
    digest of the commands: while it matches, the commands do not run again (a second deploy changes nothing;
    a failed or changed build runs again). Without it the commands run every time the task runs."
  - In check mode nothing runs; changed says whether the commands would run.
options:
  root: {description: Release root (holds releases/)., type: path, required: true}
  version: {description: The staged release to run in., type: str, required: true}
  commands: {description: "Commands for /bin/sh -c, in order.", type: list, elements: str, required: true}
  user: {description: Who the commands run as., type: str, default: root}
  group: {description: Their group., type: str, default: root}
  env_file: {description: An EnvironmentFile for the commands (the service's); empty for none., type: str,
             default: ""}
  env: {description: "More environment variables (plain data, never secrets).", type: dict, default: {}}
  marker: {description: File name in the release that records a finished run; empty to run every time.,
           type: str, default: ""}
author: rollwright
"""

EXAMPLES = r"""
- name: Build inside the new release
  release_run:
    root: /srv/hello
    version: 1.4.0
    commands: ["python manage.py collectstatic --noinput"]
    user: hello
    group: hello
    env_file: /etc/rollwright/hello.env
    marker: .rollwright-build
"""

RETURN = r"""
ran: {description: The commands that ran (none when the marker said they had)., returned: always, type: list}
release: {description: The release folder they ran in., returned: always, type: str}
"""

import hashlib
import json
import os
import uuid

from ansible.module_utils.basic import AnsibleModule

OUTPUT_TAIL = 2000  # characters of a failed command's output kept in the message


def digest(commands):
    return hashlib.sha256(json.dumps(commands).encode()).hexdigest()


def literal_for_systemd(arg):
    """systemd expands `$NAME` in a unit's command line: `$$` is its literal `$`."""
    return arg.replace("$", "$$")


def systemd_run(params, release, command):
    env = [f"--setenv={key}={value}" for key, value in sorted(params["env"].items())]
    env_file = [f"--property=EnvironmentFile={params['env_file']}"] if params["env_file"] else []
    return ["systemd-run", f"--unit=rollwright-run-{uuid.uuid4().hex[:12]}", "--quiet", "--collect", "--wait",
            "--pipe", f"--uid={params['user']}", f"--gid={params['group']}", *env_file, *env,
            "--property=NoNewPrivileges=true", f"--working-directory={release}", "--",
            "/bin/sh", "-c", literal_for_systemd(command)]


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "version": {"type": "str", "required": True},
            "commands": {"type": "list", "elements": "str", "required": True},
            "user": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "env_file": {"type": "str", "default": ""},
            "env": {"type": "dict", "default": {}},
            "marker": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    commands = params["commands"]
    release = os.path.join(params["root"], "releases", params["version"])
    if not os.path.isfile(os.path.join(release, "REVISION")):
        module.fail_json(msg=f"{release} is not a staged release (no REVISION file)", ran=[], release=release)
    marker = os.path.join(release, params["marker"]) if params["marker"] else ""
    done = False
    if marker and os.path.isfile(marker):
        with open(marker, encoding="utf-8") as handle:
            done = handle.read().strip() == digest(commands)
    if done or not commands or module.check_mode:
        module.exit_json(changed=bool(commands) and not done, ran=[], release=release)
    ran = []
    for index, command in enumerate(commands, 1):
        rc, out, err = module.run_command(systemd_run(params, release, command), data="")
        ran.append(command)
        if rc != 0:
            tail = (out + err).strip()[-OUTPUT_TAIL:]
            module.fail_json(msg=f"command {index} `{command}` exited {rc} in {release}" + (f": {tail}" if tail
                                                                                             else ""),
                             ran=ran, release=release, rc=rc)
    if marker:
        with open(marker + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(digest(commands) + "\n")
        os.chmod(marker + ".tmp", 0o644)
        os.replace(marker + ".tmp", marker)
    module.exit_json(changed=True, ran=ran, release=release)


if __name__ == "__main__":
    main()
