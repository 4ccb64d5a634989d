"""After the lb_haproxy role ran: lb1's HAProxy has app1 in maintenance and app2 drained, as its runtime
API reports them (admin state bits of `show servers state`, and `show stat`)."""

from __future__ import annotations

import csv

testinfra_hosts = ["lb"]

SOCKET = "/run/haproxy/admin.sock"  # lab_haproxy_socket
BACKEND = "app"  # lab_haproxy_backend
FORCED_MAINT = 0x01  # srv_admin_state bits (HAProxy's SRV_ADMF_FMAINT, SRV_ADMF_FDRAIN)
FORCED_DRAIN = 0x08


def runtime(host, command):
    return host.check_output(f"echo '{command}' | socat stdio {SOCKET}")


def admin_states(host):
    """server name -> srv_admin_state, from `show servers state BACKEND`."""
    lines = [line for line in runtime(host, f"show servers state {BACKEND}").splitlines()[1:] if line.strip()]
    header = lines[0].lstrip("# ").split()
    rows = [dict(zip(header, line.split(), strict=False)) for line in lines[1:]]
    return {row["srv_name"]: int(row["srv_admin_state"]) for row in rows}


def stats(host):
    """server name -> its `show stat` row, for the backend's servers."""
    text = runtime(host, "show stat").lstrip("# ")
    return {row["svname"]: row for row in csv.DictReader(text.splitlines()) if row["pxname"] == BACKEND}


def test_app1_is_in_maintenance(host):
    assert admin_states(host)["app1"] & FORCED_MAINT
    assert stats(host)["app1"]["status"].startswith("MAINT")


def test_app2_is_drained_not_in_maintenance(host):
    state = admin_states(host)["app2"]
    assert state & FORCED_DRAIN and not state & FORCED_MAINT
