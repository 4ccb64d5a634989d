"""The Ansible inventory of a lab: groups app, lb, db, and the SSH settings that keep host key checking on.

Secrets stay out of it: the database password is referenced by path (a 0600 file in the state dir).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from rollwright.lab import services
from rollwright.lab.state import LabFiles, LabState

GROUPS = ("app", "lb", "db")
HEADER = "# Written by `rollwright lab up"


def inventory_data(lab: LabState, files: LabFiles) -> dict[str, Any]:
    """The inventory as a plain dict (YAML inventory format)."""
    common_args = f"-o UserKnownHostsFile={shlex.quote(str(files.known_hosts))} -o StrictHostKeyChecking=yes"
    variables = {
        "ansible_user": "root",
        "ansible_connection": "ssh",
        "ansible_ssh_private_key_file": str(files.key),
        "ansible_ssh_common_args": common_args,
        "ansible_python_interpreter": "/usr/bin/python3",
        "lab_name": lab.name,
        "lab_app_port": lab.app_port,
        "lab_haproxy_backend": lab.backend,
        "lab_haproxy_socket": services.HAPROXY_SOCKET,
        "lab_db_name": services.DB_NAME,
        "lab_db_user": services.DB_USER,
        "lab_db_password_file": str(files.db_password),
        # A template, not the secret: the password is read from its 0600 file when a task needs it.
        "database_url": f"postgresql://{services.DB_USER}:"
                        "{{ lookup('ansible.builtin.file', lab_db_password_file) }}"
                        f"@db1:5432/{services.DB_NAME}",
    }
    children = {
        group: {"hosts": {h.name: {"ansible_host": h.ip} for h in lab.hosts.values() if h.group == group}}
        for group in GROUPS
    }
    return {"all": {"vars": variables, "children": children}}


def write_inventory(path: Path, lab: LabState, files: LabFiles) -> None:
    """Write hosts.yml (rewritten on every `lab up`, so it always matches the running lab)."""
    header = f"{HEADER} --name {lab.name}`; rewritten on every up, removed by down, do not edit.\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(inventory_data(lab, files), sort_keys=False, default_flow_style=False, width=1000)
    path.write_text(header + body)


def remove_inventory(path: Path) -> None:
    """Delete an inventory `lab up` wrote; a file we did not write (no header) is left alone."""
    if path.is_file() and path.read_text().startswith(HEADER):
        path.unlink()
