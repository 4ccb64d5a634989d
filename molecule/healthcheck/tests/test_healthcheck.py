"""After the healthcheck role passed: the app's health endpoint answers 200 from the host itself,
with the deployed version and a reachable database (db1 of the same lab)."""

from __future__ import annotations

import json

testinfra_hosts = ["app"]

URL = "http://127.0.0.1:8080/health"


def test_health_endpoint_answers_200(host):
    status = host.check_output(f"curl --silent --max-time 5 --output /dev/null --write-out '%{{http_code}}' {URL}")
    assert status == "200"


def test_health_body_names_the_version_and_the_database(host):
    body = json.loads(host.check_output(f"curl --silent --fail --max-time 5 {URL}"))
    assert body == {"status": "ok", "version": "1.0.0", "database": "ok"}
