"""After the deploy_lock role: the lock folder exists (0700, made by mkdir) with the first holder's
record; the refused second holder left no trace."""

from __future__ import annotations

import json

testinfra_hosts = ["app"]

LOCK = "/var/lib/rollwright/locks/hello"


def test_lock_folder(host):
    lock = host.file(LOCK)
    assert lock.is_directory
    assert (lock.user, lock.mode) == ("root", 0o700)


def test_holder_record_is_the_first_holder(host):
    assert host.check_output(f"ls -A {LOCK}").split() == ["holder.json"]
    record = json.loads(host.file(f"{LOCK}/holder.json").content_string)
    assert record["id"] == "molecule-1"
    assert record["message"] == "molecule scenario"
    assert isinstance(record["since"], int)
