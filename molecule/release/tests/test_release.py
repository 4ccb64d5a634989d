"""What the release role leaves on an app host: the staged release, current, REVISION, shared folders.

Values mirror molecule/shared/vars/hello.yml.
"""

from __future__ import annotations

testinfra_hosts = ["app"]

ROOT = "/srv/hello"
VERSION = "1.0.0"
RELEASE = f"{ROOT}/releases/{VERSION}"
USER = "hello"


def test_release_folder_is_staged(host):
    release = host.file(RELEASE)
    assert release.is_directory
    assert (release.user, release.group, release.mode) == ("root", "root", 0o755)
    for name in ("app.py", "VERSION"):
        assert host.file(f"{RELEASE}/{name}").is_file, name
    assert host.file(f"{RELEASE}/VERSION").content_string == f"{VERSION}\n"


def test_revision_file(host):
    revision = host.file(f"{RELEASE}/REVISION")
    assert revision.is_file
    assert revision.content_string == f"{VERSION}\n"
    assert (revision.user, revision.group, revision.mode) == ("root", "root", 0o644)


def test_current_points_at_the_release(host):
    current = host.file(f"{ROOT}/current")
    assert current.is_symlink
    assert current.linked_to == RELEASE
    assert host.file(f"{ROOT}/history").content_string.split() == [VERSION]


def test_shared_folder_is_linked_and_owned_by_the_service_user(host):
    shared = host.file(f"{ROOT}/shared/log")
    assert shared.is_directory
    assert (shared.user, shared.group, shared.mode) == (USER, USER, 0o755)
    link = host.file(f"{RELEASE}/log")
    assert link.is_symlink
    assert link.linked_to == f"{ROOT}/shared/log"


def test_no_leftovers(host):
    assert not host.file(f"{ROOT}/artifacts/{VERSION}.tar.gz").exists
    assert not host.file(f"{ROOT}/releases/.{VERSION}.partial").exists
    assert host.run(f"ls -A {ROOT}/releases").stdout.split() == [VERSION]


def test_service_user_is_a_system_account(host):
    user = host.user(USER)
    assert user.exists
    assert user.group == USER
    assert user.shell == "/usr/sbin/nologin"
    assert user.home == ROOT
