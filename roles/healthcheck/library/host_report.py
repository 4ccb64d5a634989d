#!/usr/bin/python
"""What a host really serves, in one look: the release links, the folder the service's process runs in,
the unit's state and one answer of the health URL. One task instead of four round trips (status runs
after every deploy)."""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.health_probe import ask, unit_properties

DOCUMENTATION = r"""
module: host_report
short_description: Report the release a host serves, its service's state and its health answer
description:
  - "Reads where C(<root>/current) and C(<root>/previous) point, the systemd unit's C(ActiveState) and the
    folder its main process runs in (C(/proc/<MainPID>/cwd): a killed deploy can leave C(current) ahead of
    the process), and asks the health URL once. Changes nothing; runs in check mode."
options:
  root: {type: path, required: true, description: Release root (holds current and previous).}
  unit: {type: str, default: "", description: The systemd unit that serves the app; empty when the app has no service.}
  url: {type: str, default: "", description: "Health URL, asked once from the host; empty = not asked."}
  status: {type: int, default: 200, description: The status that counts as healthy.}
  timeout_s: {type: int, default: 5, description: Seconds the health request may take.}
  units:
    type: list
    elements: str
    default: []
    description: The app's other processes' units (workers), each reported like the service's.
author: rollwright
"""

EXAMPLES = r"""
- name: Report what this host serves
  host_report:
    root: /srv/hello
    unit: hello
    url: http://127.0.0.1:8080/health
  register: healthcheck_report
"""

RETURN = r"""
current: {description: Release current points at (empty when none)., returned: always, type: str}
previous: {description: Release previous points at (empty when none)., returned: always, type: str}
root: {description: The release root., returned: always, type: str}
active: {description: The unit's ActiveState (empty when unknown)., returned: always, type: str}
process_dir: {description: Folder the unit's main process runs in (empty when none)., returned: always, type: str}
health_status: {description: "Status the health URL answered, -1 for no answer (or not asked).", returned: always,
               type: int}
healthy: {description: Whether it answered the expected status., returned: always, type: bool}
units: {description: "Each of I(units): its ActiveState (C(active)) and the folder its main process runs in
        (C(process_dir)).", returned: always, type: dict}
health_body: {description: The first 500 characters of the answer (or why there was none)., returned: always,
              type: str}
"""

BODY_REPORTED = 500


def link_target(path: str) -> str:
    """Basename of the release a symlink points at, or ''."""
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else ""


def process_dir(pid: str) -> str:
    """The working folder of a process, or '' when there is none (pid 0) or it is gone."""
    try:
        return os.readlink(f"/proc/{int(pid)}/cwd") if int(pid) > 0 else ""
    except (OSError, ValueError):
        return ""


def process_of(unit: str) -> dict[str, str]:
    """A unit's ActiveState and its main process's folder."""
    props = unit_properties(unit, ["ActiveState", "MainPID"])
    return {"active": props.get("ActiveState", ""), "process_dir": process_dir(props.get("MainPID", "0"))}


def main() -> None:
    module = AnsibleModule(argument_spec={
        "root": {"type": "path", "required": True},
        "unit": {"type": "str", "default": ""},
        "url": {"type": "str", "default": ""},
        "status": {"type": "int", "default": 200},
        "timeout_s": {"type": "int", "default": 5},
        "units": {"type": "list", "elements": "str", "default": []},
    }, supports_check_mode=True)
    p = module.params
    unit = process_of(p["unit"]) if p["unit"] else {"active": "", "process_dir": ""}
    status, body = ask(p["url"], p["timeout_s"]) if p["url"] else (None, "")
    module.exit_json(
        changed=False,
        current=link_target(os.path.join(p["root"], "current")),
        previous=link_target(os.path.join(p["root"], "previous")),
        root=p["root"],
        active=unit["active"],
        process_dir=unit["process_dir"],
        health_status=-1 if status is None else status,
        healthy=status == p["status"],
        health_body=body[:BODY_REPORTED],
        units={name: process_of(name) for name in p["units"]},
    )


if __name__ == "__main__":
    main()
