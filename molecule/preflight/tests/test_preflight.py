"""After the preflight role ran its checks (passing and failing ones) on every host: it only read,
so nothing of a deploy is on any host - no release root, no env folder, no state, no service user."""

from __future__ import annotations

import pytest

testinfra_hosts = ["all"]

ROOT = "/srv/hello"  # hello_root: the release root whose free space preflight measured


def test_no_release_root(host):
    assert not host.file(ROOT).exists
    assert host.file("/srv").is_directory
    assert host.check_output("ls -A /srv") == ""


@pytest.mark.parametrize("path", ["/etc/rollwright", "/var/lib/rollwright", "/var/log/rollwright"])
def test_no_rollwright_folders(host, path):
    assert not host.file(path).exists


def test_no_service_user(host):
    assert not host.user("hello").exists
    assert not host.file("/etc/systemd/system/hello.service").exists
