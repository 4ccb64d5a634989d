#!/usr/bin/python
"""Point `current` at a staged release atomically, keeping a history so rollback knows where to go."""

from __future__ import annotations

DOCUMENTATION = r"""
module: release_switch
short_description: Switch the current symlink of a release root, with a release history
description:
  - Keeps C(<root>/history), the releases that were made current, oldest first. O(action=push) makes
    O(version) current and appends it; O(action=pop) abandons the current release and makes the one
    before it current again (a rollback), so a rollback never lands on a release it abandoned before.
  - C(current) and C(previous) are symlinks into C(<root>/releases/), each replaced by renaming a
    temporary symlink over it (atomic). C(previous) always names the entry before C(current).
  - The target must be a staged release (it has a REVISION file). One task instead of a chain of
    stat/link/rename tasks, because every task costs time inside a rollout batch.
options:
  root: {description: "Release root (holds releases/, current, previous, history).", type: path, required: true}
  version: {description: Release to make current with O(action=push)., type: str}
  action: {description: push (deploy or roll to a named release) or pop (roll back one step)., type: str,
           choices: [push, pop], default: push}
author: rollwright
"""

EXAMPLES = r"""
- name: Make 1.4.0 current
  release_switch:
    root: /srv/hello
    version: 1.4.0
- name: Roll back one step
  release_switch:
    root: /srv/hello
    action: pop
"""

RETURN = r"""
current: {description: Release current points at afterwards., returned: always, type: str}
previous: {description: Release previous points at afterwards (empty when none)., returned: always, type: str}
switched_from: {description: Release current pointed at before (empty when none)., returned: always, type: str}
"""

import os

from ansible.module_utils.basic import AnsibleModule

HISTORY_KEPT = 100


def link_target(path):
    """Basename of the release a symlink points at, or ''."""
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else ""


def read_history(root):
    """Releases made current, oldest first; seeded from the links on hosts deployed before the history."""
    path = os.path.join(root, "history")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    seeded = [link_target(os.path.join(root, name)) for name in ("previous", "current")]
    return [v for i, v in enumerate(seeded) if v and v not in seeded[:i]]


def replace(path, write):
    """Write a sibling temp file or link with `write(tmp)`, then rename it over `path` (atomic)."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    write(tmp)
    os.replace(tmp, path)


def point(root, name, version):
    """Make <root>/<name> a symlink to releases/<version>, or remove it when version is ''."""
    path = os.path.join(root, name)
    if not version:
        if os.path.lexists(path):
            os.unlink(path)
        return
    replace(path, lambda tmp: os.symlink(os.path.join(root, "releases", version), tmp))


def save_history(root, history):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("".join(v + "\n" for v in history[-HISTORY_KEPT:]))
        os.chmod(tmp, 0o644)

    replace(os.path.join(root, "history"), write)


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "version": {"type": "str"},
            "action": {"type": "str", "choices": ["push", "pop"], "default": "push"},
        },
        required_if=[("action", "push", ["version"])],
        supports_check_mode=True,
    )
    root, action = module.params["root"], module.params["action"]
    current = link_target(os.path.join(root, "current"))
    history = read_history(root)
    if history and history[-1] != current:
        history.append(current)  # someone moved current by hand: believe the link
    if action == "pop":
        if len(history) < 2:
            module.fail_json(msg=f"{root}: no release before {current or 'nothing'} to roll back to "
                                 f"(history: {', '.join(history) or 'empty'})", current=current)
        history = history[:-1]
        target = history[-1]
    else:
        target = module.params["version"]
        if target != current:
            history.append(target)
    if not os.path.isfile(os.path.join(root, "releases", target, "REVISION")):
        module.fail_json(msg=f"{root}/releases/{target} is not a staged release (no REVISION file)", current=current)
    previous = next((v for v in reversed(history[:-1]) if v != target), "")
    changed = target != current or link_target(os.path.join(root, "previous")) != previous
    result = {"changed": changed, "current": target, "previous": previous, "switched_from": current}
    if changed and not module.check_mode:
        point(root, "previous", previous)
        point(root, "current", target)
        save_history(root, history)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
