"""After the deploy_lock role: the lock folder exists (0700, made by mkdir) with the first holder's
record; the refused second holder left no trace. The stale lock the converge broke is kept aside and
the breaker holds that lock."""

from __future__ import annotations

import json

testinfra_hosts = ["app"]

LOCK = "/var/lib/rollwright/locks/hello"
STALE = "/var/lib/rollwright/locks/stale"


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


def test_the_broken_stale_lock_is_kept_aside_and_the_breaker_holds_the_lock(host):
    record = json.loads(host.file(f"{STALE}/holder.json").content_string)
    assert record["id"] == "molecule-3"
    kept = json.loads(host.file(f"{STALE}.broken-molecule-killed/holder.json").content_string)
    assert kept["id"] == "molecule-killed"
    assert sorted(host.check_output("ls -A /var/lib/rollwright/locks").split()) == [
        "hello", "stale", "stale.broken-molecule-killed"]
