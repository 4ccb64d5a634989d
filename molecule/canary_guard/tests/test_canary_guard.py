"""After the canary_guard role ran: it only read lb1's HAProxy, so every server of the backend is as the
lab's config made it (no admin state set, full weight)."""

from __future__ import annotations

testinfra_hosts = ["lb"]

SOCKET = "/run/haproxy/admin.sock"  # lab_haproxy_socket
BACKEND = "app"  # lab_haproxy_backend


def test_the_guard_changed_no_server(host):
    out = host.check_output(f"echo 'show servers state {BACKEND}' | socat stdio {SOCKET}")
    lines = [line for line in out.splitlines()[1:] if line.strip()]
    header = lines[0].lstrip("# ").split()
    rows = [dict(zip(header, line.split(), strict=False)) for line in lines[1:]]
    assert {row["srv_name"] for row in rows} >= {"app1", "app2"}
    for row in rows:
        assert row["srv_admin_state"] == "0", row
        assert row["srv_uweight"] == row["srv_iweight"], row
