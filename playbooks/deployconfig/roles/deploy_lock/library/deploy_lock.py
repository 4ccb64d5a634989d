#!/usr/bin/python
"""A per-target deploy lock: a folder made atomically with mkdir, holding who took it and why.

Breaking a lock is atomic too: the lock is renamed aside to a name of its own holder (kept), so two
callers breaking the same stale lock at once cannot both win, nor remove the lock the winner took.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Take, release or read a deploy lock (an atomic mkdir) on the target's first host
description:
  - "O(action=acquire) makes O(path) with C(mkdir), which succeeds for exactly one caller, and writes
    C(holder.json) into it. When the lock is held it fails, naming the holder, unless the holder is a
    deploy the caller knows is gone (O(stale_holder), a process that no longer exists on the same
    control node) and not a maintenance hold (C(hold) in its record, taken by C(rollwright lock acquire)
    with no process behind it): then the lock is broken, with a warning, and taken with the same mkdir. Breaking
    renames the lock to C(<path>.broken-<holder id>), which is kept: of several callers breaking the
    same lock at once exactly one moves it, and the mkdir that follows lets exactly one take it."
  - O(action=release) removes the lock when O(holder.id) holds it; O(force=true) breaks anyone's lock
    (renamed aside the same way).
  - O(action=status) reports the holder, if any, and changes nothing.
options:
  path: {description: Lock folder., type: path, required: true}
  action: {description: What to do., type: str, choices: [acquire, release, status], default: status}
  holder: {description: "Who takes or releases it: id, user, control_host, pid, version, message, and hold (a
           maintenance hold, which only a release ends).", type: dict, default: {}}
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
holder: {description: "The holder's record (with C(since), epoch seconds) or {}.", returned: always, type: dict}
age_s: {description: Seconds since the holder took the lock., returned: when held, type: int}
broken: {description: The holder whose lock was broken (stale or forced)., returned: when a lock was broken,
         type: dict}
"""

import errno
import json
import os
import re
import shutil
import time

from ansible.module_utils.basic import AnsibleModule

HOLDER_FILE = "holder.json"
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def read_holder(path):
    try:
        with open(os.path.join(path, HOLDER_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {"id": "unknown", "note": "lock folder without a readable holder.json"} if os.path.isdir(path) else {}


def read_new_holder(path):
    """The holder of a lock another caller just made: its holder.json follows the mkdir by a moment."""
    for _ in range(20):
        holder = read_holder(path)
        if holder.get("id") != "unknown":
            return holder
        time.sleep(0.05)
    return holder


def describe(holder):
    age = int(time.time() - holder.get("since", time.time()))
    what = "maintenance hold" if holder.get("hold") else "deploy"
    return (f"{holder.get('user', '?')} ({what} {holder.get('id', '?')}, version {holder.get('version') or '-'}, "
            f"for {age}s{', ' + holder['message'] if holder.get('message') else ''})")


def aside_path(path, holder):
    """Where the broken lock of `holder` is kept: one name per holder, so only one caller can move it there."""
    key = holder.get("id", "unknown") if "since" in holder else f"unknown-{time.time_ns()}"
    return f"{path}.broken-{UNSAFE_NAME.sub('_', str(key))}"


def move_aside(path, holder):
    """Rename `holder`'s lock aside and return where; "" when another caller already did (or it is gone).

    A rename is atomic and the aside folder is kept, so of several callers breaking the same lock at
    once exactly one moves it; the others find the aside name taken (and never move the lock someone
    took since), then meet the new holder at the usual mkdir.
    """
    aside = aside_path(path, holder)
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return ""
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return ""
        raise
    if read_holder(aside).get("id") != holder.get("id"):  # replaced behind our back (a hand-made rm -r): put back
        os.rename(aside, path)
        return ""
    return aside


def take(path, me):
    """mkdir the lock (exactly one caller wins) and write the holder's record into it whole."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return None
    record = {**me, "since": int(time.time())}
    partial = os.path.join(path, f".{HOLDER_FILE}.tmp")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    os.replace(partial, os.path.join(path, HOLDER_FILE))
    return record


def release(module, path, me, current):
    if not current:
        module.exit_json(changed=False, held=False, holder={})
    mine = current.get("id") == me.get("id")
    if not mine and not module.params["force"]:
        module.fail_json(msg=f"the deploy lock is held by {describe(current)}, not by this deploy; "
                             "release it with --force only if that deploy is really gone",
                         held=True, holder=current)
    if module.check_mode:
        module.exit_json(changed=True, held=False, holder={}, **({} if mine else {"broken": current}))
    if mine:
        gone = f"{path}.released-{UNSAFE_NAME.sub('_', str(me.get('id')))}"
        shutil.rmtree(gone, ignore_errors=True)  # left by a release interrupted between its two steps
        os.rename(path, gone)  # the lock disappears at once, never half-removed under a new taker
        shutil.rmtree(gone)
        module.exit_json(changed=True, held=False, holder={})
    aside = move_aside(path, current)
    if not aside:
        now = read_holder(path)
        module.exit_json(changed=False, held=bool(now), holder=now,
                         msg=f"the lock of {describe(current)} was already broken by another caller")
    module.warn(f"broke the deploy lock of {describe(current)}; it is kept at {aside}")
    module.exit_json(changed=True, held=False, holder={}, broken=current)


def acquire(module, path, me, current):
    if current and current.get("id") == me.get("id"):
        module.exit_json(changed=False, held=True, holder=current)
    stale = module.params["stale_holder"]
    # a maintenance hold has no process to be gone: only a release ends it
    breaking = bool(current) and bool(stale) and current.get("id") == stale and not current.get("hold")
    if current and not breaking:
        module.fail_json(msg=f"deploy lock held by {describe(current)}", held=True, holder=current,
                         age_s=int(time.time() - current.get("since", time.time())))
    if module.check_mode:
        module.exit_json(changed=True, held=True, holder=me, **({"broken": current} if breaking else {}))
    aside = move_aside(path, current) if breaking else ""
    record = take(path, me)
    if record is None:
        other = read_new_holder(path)
        module.fail_json(msg=f"deploy lock held by {describe(other)}", held=True, holder=other)
    if aside:
        module.warn(f"broke a stale deploy lock: {describe(current)} (its process is gone); it is kept at {aside}")
    module.exit_json(changed=True, held=True, holder=record, **({"broken": current} if aside else {}))


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
        release(module, path, me, current)
    acquire(module, path, me, current)


if __name__ == "__main__":
    main()
