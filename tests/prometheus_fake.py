"""A stand-in for Prometheus' instant query API on 127.0.0.1, answering the recorded shapes in tests/prometheus/
(shared by the unit and the lab tests of the canary guard's Prometheus source)."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "prometheus"
Answer = tuple[int, dict[str, Any]]


def shape(name: str, value: str | None = None) -> dict[str, Any]:
    """The recorded answer `name`, its one sample set to `value` when given."""
    answer = json.loads((FIXTURES / f"{name}.json").read_text())
    if value is not None:
        result = answer["data"]["result"]
        (result if answer["data"]["resultType"] == "scalar" else result[0]["value"])[1] = value
    return answer


class FakePrometheus:
    """`GET /api/v1/query` on 127.0.0.1 (a free port), each query answered by `answer(query)` as (HTTP status,
    JSON body); every request's parameters kept in `asked`."""

    def __init__(self, answer: Callable[[str], Answer]) -> None:
        self.answer, self.asked = answer, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                address = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(address.query))
                fake.asked.append(params)
                status, body = (fake.answer(params.get("query", "")) if address.path == "/api/v1/query"
                                else (404, {"status": "error", "errorType": "not_found", "error": "no such path"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                """Quiet: the tests read `asked`."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePrometheus:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


# The spec's queries in these tests: each names the version and the window by the tokens the module replaces.
QUERIES = {
    "error_ratio": 'sum(rate(http_requests_total{service_version="$version",code=~"5.."}[$window])) / '
                   'sum(rate(http_requests_total{service_version="$version"}[$window]))',
    "latency_p95": 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service_version='
                   '"$version"}[$window])))',
    "requests": 'sum(increase(http_requests_total{service_version="$version"}[$window]))',
}
VERSION = re.compile(r'service_version="([^"]*)"')


def kind(query: str) -> str:
    """Which of QUERIES `query` is, tokens replaced."""
    return "latency_p95" if "histogram_quantile" in query else "requests" if "increase(" in query else "error_ratio"


def per_version(numbers: dict[str, dict[str, str]]) -> Callable[[str], Answer]:
    """Answers by version and query kind, `numbers[version][kind]` as a one-series vector; a version or kind
    without a number matches no series (an empty vector), as Prometheus answers for a version it never saw."""
    def answer(query: str) -> Answer:
        found = VERSION.search(query)
        value = numbers.get(found.group(1) if found else "", {}).get(kind(query))
        return 200, shape("empty") if value is None else shape("vector", value)
    return answer
