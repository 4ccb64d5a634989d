#!/usr/bin/python
"""Install an app's systemd service in one call: its account, its 0600 env file and its unit, enabled."""

from __future__ import annotations

DOCUMENTATION = r"""
module: service_install
short_description: Create the service account, write the env file and the systemd unit, enable the unit
description:
  - Creates the group O(group) and the system user O(user) (no login shell, home O(home), not created) when
    missing, and sets an existing user's group, shell and home to those.
  - Writes C(/etc/rollwright/<name>.env) (mode 0600, owned by the user) from O(env) and
    C(/etc/systemd/system/<name>.service) (mode 0644, root) from O(unit), each only when it differs, by
    renaming a complete file over it.
  - "O(env) may hold secrets: it is a no_log parameter, never returned, and its diff only says that it changed."
  - "With O(version), the env file ends with the line C(# rollwright: the deployed version (a change here alone
    restarts nothing)) and C(ROLLWRIGHT_VERSION), C(ROLLWRIGHT_RELEASE) (C(<home>/releases/<version>)) and
    C(OTEL_RESOURCE_ATTRIBUTES) (O(env)'s attributes, any C(service.version) left out, then
    C(service.version=<version>)). A change of those lines alone is no reason to restart: a new version restarts
    (or reloads) the service anyway, and a reload must stay a reload although the version in the file changed."
  - Runs C(systemctl daemon-reload) only when the unit changed, and enables the unit. Restarts nothing; sets
    the fact C(service_restart_needed) when the unit or the env file changed, for the rollout to restart.
  - With O(instances) above 1 the unit is a template, C(<name>@.service), enabled as C(<name>@1) to
    C(<name>@N); instances above N that are enabled are stopped and disabled.
options:
  name: {description: systemd unit name (without .service)., type: str, required: true}
  user: {description: System user the service runs as., type: str, required: true}
  group: {description: Its group., type: str, required: true}
  home: {description: The user's home (the release root)., type: path, required: true}
  unit: {description: Content of the unit file., type: str, required: true}
  env: {description: Content of the env file (secret)., type: str, required: true}
  version: {description: "The version deployed, named at the end of the env file; empty, none.", type: str,
            default: ""}
  instances: {description: "Copies of the unit: 1 is a plain unit, more a template unit's instances.", type: int,
              default: 1}
  restart_fact:
    description: The fact set to whether a restart is needed; empty sets none (a loop of processes reads
      C(restart_needed) from each result instead).
    type: str
    default: service_restart_needed
author: rollwright
"""

EXAMPLES = r"""
- name: Install the service
  service_install:
    name: hello
    user: hello
    group: hello
    home: /srv/hello
    unit: "{{ lookup('ansible.builtin.template', 'service.unit.j2') }}"
    env: "{{ lookup('ansible.builtin.template', 'service.env.j2') }}"
"""

RETURN = r"""
account: {description: "What changed of the account (group, user, or user settings).", returned: always, type: list}
unit_changed: {description: Whether the unit file changed., returned: always, type: bool}
env_changed: {description: Whether the env file changed (content or owner and mode)., returned: always, type: bool}
enabled: {description: Whether the unit (or an instance) had to be enabled., returned: always, type: bool}
retired: {description: Surplus instances stopped and disabled., returned: always, type: list}
restart_needed: {description: Whether the unit or the env file content (above the version's lines) changed.,
                 returned: always, type: bool}
units: {description: "The units that run: the unit, or a template's instances.", returned: always, type: list}
ansible_facts: {description: "service_restart_needed, true when the unit or the env file content changed.",
                returned: always, type: dict}
"""

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.service_env import env_changed, replace_file, with_version

ENV_DIR = "/etc/rollwright"
UNIT_DIR = "/etc/systemd/system"
SHELL = "/usr/sbin/nologin"


def account(module, user, group, home):
    """Create or correct the group and the system user; what it did (or would do)."""
    done = []
    try:
        grp.getgrnam(group)
    except KeyError:
        done.append(f"group {group}")
        if not module.check_mode:
            module.run_command(["groupadd", "--system", group], check_rc=True)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        done.append(f"user {user}")
        if not module.check_mode:
            module.run_command(["useradd", "--system", "--gid", group, "--shell", SHELL, "--home-dir", home,
                                "--no-create-home", user], check_rc=True)
        return done
    gid = None if done else grp.getgrnam(group).gr_gid
    if (entry.pw_gid, entry.pw_shell, entry.pw_dir) != (gid, SHELL, home):
        done.append(f"user {user} settings")
        if not module.check_mode:
            module.run_command(["usermod", "--gid", group, "--shell", SHELL, "--home", home, user], check_rc=True)
    return done


def read(path):
    """(content, (uid, gid, mode)) of a file, or (None, None) when there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            return handle.read(), (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
    except FileNotFoundError:
        return None, None


def ensure_file(module, path, content, owner, group, mode):
    """Write content to path (temp file renamed over it) unless it is there with owner, group and mode.
    Returns (content changed, attributes changed, the content before)."""
    before, attrs = read(path)
    try:
        wanted = (pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid, mode)
    except KeyError:
        if not module.check_mode:
            raise
        wanted = None  # check mode: the account is not there yet, so the file would be written anyway
    content_changed = before != content
    attrs_changed = not content_changed and wanted is not None and attrs != wanted
    if module.check_mode or not (content_changed or attrs_changed):
        return content_changed, attrs_changed, before
    uid, gid, _ = wanted
    if content_changed:
        replace_file(path, content, uid, gid, mode)
    else:
        os.chmod(path, mode)
        os.chown(path, uid, gid)
    return content_changed, attrs_changed, before


def env_folder(module):
    """/etc/rollwright, root 0755; whether it changed."""
    try:
        info = os.stat(ENV_DIR)
    except FileNotFoundError:
        if not module.check_mode:
            os.mkdir(ENV_DIR, 0o755)
            os.chmod(ENV_DIR, 0o755)
        return True
    if (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o755):
        return False
    if not module.check_mode:
        os.chmod(ENV_DIR, 0o755)
        os.chown(ENV_DIR, 0, 0)
    return True


def enable(module, name):
    """Enable the unit unless it is; whether it had to be."""
    systemctl = module.get_bin_path("systemctl", required=True)
    _, out, _ = module.run_command([systemctl, "is-enabled", f"{name}.service"])
    if out.strip() == "enabled":
        return False
    if not module.check_mode:
        module.run_command([systemctl, "enable", f"{name}.service"], check_rc=True)
    return True


def retire_instances(module, name, units):
    """Stop and disable the enabled instances of a template unit that are no longer wanted; their names."""
    wants = os.path.join(UNIT_DIR, "multi-user.target.wants")
    try:
        enabled = [entry[:-len(".service")] for entry in os.listdir(wants)
                   if entry.startswith(f"{name}@") and entry.endswith(".service")]
    except FileNotFoundError:
        return []
    surplus = sorted(unit for unit in enabled if unit not in units)
    if surplus and not module.check_mode:
        systemctl = module.get_bin_path("systemctl", required=True)
        module.run_command([systemctl, "disable", "--now", *(f"{unit}.service" for unit in surplus)], check_rc=True)
    return surplus


def main():
    module = AnsibleModule(argument_spec={
        "name": {"type": "str", "required": True},
        "user": {"type": "str", "required": True},
        "group": {"type": "str", "required": True},
        "home": {"type": "path", "required": True},
        "unit": {"type": "str", "required": True},
        "env": {"type": "str", "required": True, "no_log": True},
        "version": {"type": "str", "default": ""},
        "instances": {"type": "int", "default": 1},
        "restart_fact": {"type": "str", "default": "service_restart_needed"},
    }, supports_check_mode=True)
    params = module.params
    name, user, group = params["name"], params["user"], params["group"]
    template = params["instances"] > 1
    units = [f"{name}@{i}" for i in range(1, params["instances"] + 1)] if template else [name]
    env_path, unit_path = f"{ENV_DIR}/{name}.env", f"{UNIT_DIR}/{name}{'@' if template else ''}.service"
    made = account(module, user, group, params["home"])
    folder_changed = env_folder(module)
    content = with_version(params["env"], params["version"], params["home"])
    env_content, env_attrs, env_before = ensure_file(module, env_path, content, user, group, 0o600)
    env_restart = env_content and env_changed(env_before, params["env"])
    unit_content, unit_attrs, unit_before = ensure_file(module, unit_path, params["unit"], "root", "root", 0o644)
    if unit_content and not module.check_mode:
        module.run_command([module.get_bin_path("systemctl", required=True), "daemon-reload"], check_rc=True)
    enabled = [unit for unit in units if enable(module, unit)]
    retired = retire_instances(module, name, units) if template else []
    diff = []
    if unit_content and module._diff:
        diff.append({"before": unit_before or "", "after": params["unit"], "before_header": unit_path,
                     "after_header": unit_path})
    if (env_content or env_attrs) and module._diff:  # never its content: it holds secrets
        diff.append({"before_header": env_path, "after_header": env_path,
                     "prepared": f"{env_path} changed (its content is secret, not shown)\n"})
    module.exit_json(
        changed=bool(made or folder_changed or env_content or env_attrs or unit_content or unit_attrs or enabled
                     or retired),
        account=made, unit_changed=unit_content or unit_attrs, env_changed=env_content or env_attrs,
        enabled=bool(enabled), retired=retired, units=units, restart_needed=env_restart or unit_content, diff=diff,
        ansible_facts={params["restart_fact"]: env_restart or unit_content} if params["restart_fact"] else {})


if __name__ == "__main__":
    main()
