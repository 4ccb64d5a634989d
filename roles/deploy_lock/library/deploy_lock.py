#!/usr/bin/python
"""A per-target deploy lock: a folder made atomically with mkdir, holding who took it and why."""

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Take, release or read a deploy lock (an atomic mkdir) on the target's first host
description:
  - O(action=acquire) makes O(path) with C(mkdir), which succeeds for exactly one caller, and writes
    C(holder.json) into it. When the lock is held it fails, naming the holder, unless the holder is a
    deploy the caller knows is gone (O(stale_holder), a process that no longer exists on the same
    control node): then the lock is broken, with a warning.
  - O(action=release) removes the lock when O(holder.id) holds it; O(force=true) breaks anyone's lock.
  - O(action=status) reports the holder, if any, and changes nothing.
options:
  path: {description: Lock folder., type: path, required: true}
  action: {description: What to do., type: str, choices: [acquire, release, status], default: status}
  holder: {description: "Who takes or releases it: id, user, control_host, pid, version, message.", type: dict,
           default: {}}
  force: {description: Release a lock held by someone else (a warning names them)., type: bool, default: false}
  stale_holder: {description: Id of a holder known to be gone; acquire breaks its lock., type: str, default: ""}
author: rollwright
"""

EXAMPLES = r"""
- name: Take the deploy lock
  deploy_lock:
    path: /var/lib/rollwright/locks/hello
    action: acquire
    holder: {id: 20261121T100000Z-1a2b, user: ops@bastion, control_host: bastion, pid: 4242, version: 2.0.0}
"""

RETURN = r"""
held: {description: Whether the lock is held when the module ends., returned: always, type: bool}
holder: {description: The holder's record (with C(since), epoch seconds) or {}., returned: always, type: dict}
age_s: {description: Seconds since the holder took the lock., returned: when held, type: int}
broken: {description: The holder whose lock was broken (stale or forced)., returned: when a lock was broken,
         type: dict}
"""

import json
import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule

HOLDER_FILE = "holder.json"


def read_holder(path):
    try:
        with open(os.path.join(path, HOLDER_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {"id": "unknown", "note": "lock folder without a readable holder.json"} if os.path.isdir(path) else {}


def describe(holder):
    age = int(time.time() - holder.get("since", time.time()))
    return (f"{holder.get('user', '?')} (deploy {holder.get('id', '?')}, version {holder.get('version', '?')}, "
            f"for {age}s{', ' + holder['message'] if holder.get('message') else ''})")


def main():
    module = AnsibleModule(argument_spec={
        "path": {"type": "path", "required": True},
        "action": {"type": "str", "default": "status", "choices": ["acquire", "release", "status"]},
        "holder": {"type": "dict", "default": {}},
        "force": {"type": "bool", "default": False},
        "stale_holder": {"type": "str", "default": ""},
    }, supports_check_mode=True)
    path, action, me = module.params["path"], module.params["action"], module.params["holder"]
    current = read_holder(path)
    if action == "status":
        module.exit_json(changed=False, held=bool(current), holder=current,
                         **({"age_s": int(time.time() - current.get("since", time.time()))} if current else {}))
    if action == "release":
        if not current:
            module.exit_json(changed=False, held=False, holder={})
        if current.get("id") != me.get("id") and not module.params["force"]:
            module.fail_json(msg=f"the deploy lock is held by {describe(current)}, not by this deploy; "
                                 "release it with --force only if that deploy is really gone",
                             held=True, holder=current)
        if not module.check_mode:
            shutil.rmtree(path)
        broken = {} if current.get("id") == me.get("id") else {"broken": current}
        if broken:
            module.warn(f"broke the deploy lock of {describe(current)}")
        module.exit_json(changed=True, held=False, holder={}, **broken)
    # acquire
    if current and current.get("id") == me.get("id"):
        module.exit_json(changed=False, held=True, holder=current)
    stale = module.params["stale_holder"]
    broken = {"broken": current} if current and stale and current.get("id") == stale else {}
    if current and not broken:
        module.fail_json(msg=f"deploy lock held by {describe(current)}", held=True, holder=current,
                         age_s=int(time.time() - current.get("since", time.time())))
    if module.check_mode:
        module.exit_json(changed=True, held=True, holder=me, **broken)
    if broken:
        shutil.rmtree(path, ignore_errors=True)
        module.warn(f"broke a stale deploy lock: {describe(current)} (its process is gone)")
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        other = read_holder(path)
        module.fail_json(msg=f"deploy lock held by {describe(other)}", held=True, holder=other)
    record = {**me, "since": int(time.time())}
    with open(os.path.join(path, HOLDER_FILE), "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    module.exit_json(changed=True, held=True, holder=record, **broken)


if __name__ == "__main__":
    main()
