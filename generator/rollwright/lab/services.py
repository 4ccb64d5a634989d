"""The two service hosts: HAProxy on the load balancer and PostgreSQL on the database host.

Their config files are written into the host's overlay before it boots; the database role is made
once PostgreSQL runs (over SSH, with the password on stdin, never on a command line).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

from rollwright.errors import RollwrightError

HAPROXY_CONFIG = Path("etc/haproxy/haproxy.cfg")
HAPROXY_SOCKET = "/run/haproxy/admin.sock"
HAPROXY_STATS_PORT = 8404
DB_NAME = "app"
DB_USER = "app"


def haproxy_config(backend: str, app_port: int, servers: list[tuple[str, str]]) -> str:
    """HAProxy config: admin socket, stats page, one frontend, and a backend with one server per app host.

    Health checks every second with fall/rise 2, plus retries and redispatch, so a drained or restarting
    server is skipped quickly and a request that hit it is replayed on another one.
    """
    lines = [
        "# Written by rollwright lab.",
        "global",
        "    log stderr format short local0 info",
        f"    stats socket {HAPROXY_SOCKET} mode 660 level admin expose-fd listeners",
        "    stats timeout 30s",
        "    user haproxy",
        "    group haproxy",
        "    maxconn 4096",
        "",
        "defaults",
        "    log global",
        "    mode http",
        "    option httplog",
        "    option dontlognull",
        "    option redispatch",
        "    retries 3",
        "    retry-on all-retryable-errors",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout http-request 10s",
        "    timeout queue 10s",
        "    timeout check 2s",
        "",
        "frontend web",
        "    bind :80",
        f"    default_backend {backend}",
        "",
        f"backend {backend}",
        "    balance roundrobin",
        "    option httpchk GET /health",
        "    http-check expect status 200",
        "    default-server inter 1s fall 2 rise 2",
        *(f"    server {name} {ip}:{app_port} check" for name, ip in servers),
        "",
        "listen stats",
        f"    bind :{HAPROXY_STATS_PORT}",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 5s",
        "",
    ]
    return "\n".join(lines)


def postgres_dir(rootfs: Path) -> Path:
    """The cluster's config dir in the image (relative), e.g. etc/postgresql/15/main."""
    found = sorted(rootfs.glob("etc/postgresql/*/main"))
    if not found:
        raise RollwrightError(f"no PostgreSQL cluster config under {rootfs}/etc/postgresql")
    return found[-1].relative_to(rootfs)


def postgres_listen_conf(address: str) -> str:
    """A conf.d drop-in: listen on the lab address as well as on localhost."""
    return f"# Written by rollwright lab.\nlisten_addresses = 'localhost,{address}'\n"


def postgres_hba(base: str, subnet: IPv4Network) -> str:
    """The image's pg_hba.conf plus password (scram-sha-256) logins from the lab subnet."""
    return base.rstrip("\n") + f"\n# rollwright lab: app hosts\nhost    all    all    {subnet}    scram-sha-256\n"


def database_bootstrap_sql(password: str) -> str:
    """psql input that makes the login role and its database, and (re)sets the password: idempotent."""
    return "\n".join(
        [
            "\\set ON_ERROR_STOP on",
            f"SELECT 'CREATE ROLE {DB_USER} LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{DB_USER}') \\gexec",
            f"ALTER ROLE {DB_USER} WITH LOGIN PASSWORD '{password}';",
            f"SELECT 'CREATE DATABASE {DB_NAME} OWNER {DB_USER}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = '{DB_NAME}') \\gexec",
            "",
        ]
    )
