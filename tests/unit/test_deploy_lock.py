"""The deploy_lock module on a real folder: breaking a stale lock lets exactly one of its breakers hold it.

Each caller is the embedded module run as Ansible runs it (its own process, its arguments in a file).
A caller can be held just after it has read the lock's holder, the moment two breakers of the same
stale lock both believe they may break it, so the interleavings that matter are forced, not hoped for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "roles/deploy_lock/library/deploy_lock.py"
STALE = {"id": "20261121T000000Z-dead", "user": "ana@bastion", "control_host": "bastion", "pid": 4242,
         "version": "1.0.0", "message": "", "since": 1_700_000_000}
# Runs the module; with a gate folder, its first read of the holder is followed by a pause until `go` exists.
CALLER = """
import importlib.util, pathlib, sys, time
module_path, args_file, gate = sys.argv[1], sys.argv[2], sys.argv[3]
spec = importlib.util.spec_from_file_location("deploy_lock", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if gate:
    read, gate = module.read_holder, pathlib.Path(gate)
    def read_then_wait(path, calls=[]):
        holder = read(path)
        if not calls:
            calls.append(path)
            (gate / f"read-{args_file.rsplit('/', 1)[-1]}").touch()
            while not (gate / "go").exists():
                time.sleep(0.01)
        return holder
    module.read_holder = read_then_wait
sys.argv = [module_path, args_file]
module.main()
"""


def _stale_lock(tmp_path: Path) -> Path:
    lock = tmp_path / "locks" / "hello"
    lock.mkdir(parents=True)
    (lock / "holder.json").write_text(json.dumps(STALE))
    return lock


def _start(lock: Path, caller: str, gate: Path | None, **args: Any) -> subprocess.Popen[str]:
    params = {"path": str(lock), "holder": {"id": caller, "user": caller, "control_host": "here", "pid": 1}, **args}
    args_file = lock.parent.parent / f"{caller}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
    return subprocess.Popen([sys.executable, "-c", CALLER, str(MODULE), str(args_file), str(gate or "")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert out.strip(), err
    return dict(json.loads(out))


def _wait_for(paths: list[Path]) -> None:
    deadline = time.monotonic() + 60
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"the callers never read the lock: {paths}"
        time.sleep(0.01)


def test_a_late_breaker_of_a_stale_lock_never_takes_the_lock_the_first_breaker_took(tmp_path: Path) -> None:
    lock = _stale_lock(tmp_path)
    gate = tmp_path / "gate"
    gate.mkdir()
    late = _start(lock, "late", gate, action="acquire", stale_holder=STALE["id"])
    _wait_for([gate / "read-late.json"])  # it has read the stale holder and now waits
    first = _result(_start(lock, "first", None, action="acquire", stale_holder=STALE["id"]))
    assert first.get("failed") is not True and first["held"] and first["broken"]["id"] == STALE["id"], first
    (gate / "go").touch()
    refused = _result(late)
    assert refused.get("failed") is True, refused
    assert refused["msg"].startswith("deploy lock held by first (deploy first"), refused
    assert json.loads((lock / "holder.json").read_text())["id"] == "first"
    kept = tmp_path / "locks" / f"hello.broken-{STALE['id']}"
    assert json.loads((kept / "holder.json").read_text()) == STALE  # the broken lock, kept aside
    released = _result(_start(lock, "first", None, action="release"))
    assert released["changed"] is True and not lock.exists()
    assert sorted(p.name for p in lock.parent.iterdir()) == [kept.name]


def test_of_breakers_racing_for_the_same_stale_lock_exactly_one_holds_it(tmp_path: Path) -> None:
    lock = _stale_lock(tmp_path)
    gate = tmp_path / "gate"
    gate.mkdir()
    callers = [f"breaker{n}" for n in range(4)]
    procs = [_start(lock, name, gate, action="acquire", stale_holder=STALE["id"]) for name in callers]
    _wait_for([gate / f"read-{name}.json" for name in callers])  # every one has read the stale holder
    (gate / "go").touch()  # and all break it at once
    results = dict(zip(callers, (_result(p) for p in procs), strict=True))
    winners = [name for name, result in results.items() if result.get("failed") is not True]
    assert len(winners) == 1, results
    holder = json.loads((lock / "holder.json").read_text())
    assert holder["id"] == winners[0]
    for name, result in results.items():
        if name != winners[0]:
            assert result["msg"].startswith(f"deploy lock held by {winners[0]} (deploy {winners[0]}"), result
