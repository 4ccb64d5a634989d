"""After the rollback role put 1.0.0 back over 1.1.0: current and previous, the release history, both
releases still staged, and the service restarted on 1.0.0, answering /health with the old version.

Values mirror molecule/shared/vars/hello.yml and molecule/rollback/vars/rollback.yml.
"""

from __future__ import annotations

import json

testinfra_hosts = ["app"]

ROOT = "/srv/hello"
OLD = "1.0.0"  # hello_version: deployed first, rolled back to
NEW = "1.1.0"  # rwm_new_version: deployed over it in prepare, rolled back from
URL = "http://127.0.0.1:8080/health"


def test_current_points_at_the_release_before(host):
    current = host.file(f"{ROOT}/current")
    assert current.is_symlink
    assert current.linked_to == f"{ROOT}/releases/{OLD}"


def test_previous_points_at_the_abandoned_release(host):
    previous = host.file(f"{ROOT}/previous")
    assert previous.is_symlink
    assert previous.linked_to == f"{ROOT}/releases/{NEW}"


def test_history_records_the_rollback_once(host):
    # 1.0.0 deployed, 1.1.0 deployed, 1.0.0 rolled back to; the idempotence run added nothing.
    assert host.file(f"{ROOT}/history").content_string.split() == [OLD, NEW, OLD]


def test_both_releases_stay_staged(host):
    assert host.run(f"ls -A {ROOT}/releases").stdout.split() == [OLD, NEW]
    for version in (OLD, NEW):
        assert host.file(f"{ROOT}/releases/{version}/REVISION").content_string == f"{version}\n"


def test_service_was_restarted_on_the_old_release(host):
    service = host.service("hello")
    assert service.is_enabled
    assert service.is_running
    pid = host.check_output("systemctl show hello --property MainPID --value")
    assert pid.isdigit() and int(pid) > 0
    # WorkingDirectory is <root>/current, resolved when the process starts: a process still running
    # from before the rollback would sit in releases/1.1.0.
    assert host.check_output(f"readlink /proc/{pid}/cwd") == f"{ROOT}/releases/{OLD}"


def test_health_answers_with_the_old_version(host):
    status = host.check_output(f"curl --silent --max-time 5 --output /dev/null --write-out '%{{http_code}}' {URL}")
    assert status == "200"
    body = json.loads(host.check_output(f"curl --silent --fail --max-time 5 {URL}"))
    assert body == {"status": "ok", "version": OLD, "database": "ok"}
