"""A Prometheus query as an SLO source: one version's error ratio, request count and p95 latency over a window.

Read from the control node with urllib (no dependency): the instant query API, `/api/v1/query`, evaluated at
the end of the window. The spec's PromQL names the version and the window with the literal tokens `$version`
and `$window`, replaced as plain strings (never a template engine: PromQL's `{...}` is data)."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request

QUERY_PATH = "/api/v1/query"
# The `prometheus` settings as a module's argument_spec option (every module that reads this source takes them).
OPTION = {"type": "dict", "options": {
    "url": {"type": "str", "required": True},
    "error_ratio": {"type": "str", "required": True},
    "latency_p95": {"type": "str", "required": True},
    "requests": {"type": "str"},
    "timeout_s": {"type": "float", "default": 10},
}}
TOKENS = ("$version", "$window")


class PrometheusError(Exception):
    """Prometheus could not be asked, or answered something no verdict can be read from."""


def promql(template, version, window_s):
    """The spec's query with its tokens replaced: `$version` by the version, `$window` by `<window_s>s`."""
    return template.replace("$version", version).replace("$window", f"{int(window_s)}s")


def ask(url, query, at, timeout_s):
    """The decoded JSON answer of an instant query evaluated at unix time `at`. Prometheus answers an error
    (400 bad_data, 422 execution, 503 timeout) with the same JSON envelope, so a 4xx/5xx body is read too."""
    address = url.rstrip("/") + QUERY_PATH + "?" + urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
    try:
        with urllib.request.urlopen(address, timeout=timeout_s) as answer:  # noqa: S310 (the spec checks http/https)
            body = answer.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if not body.strip().startswith(b"{"):
            raise PrometheusError(f"Prometheus at {url} answered HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PrometheusError(f"cannot reach Prometheus at {url}: {reason}") from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise PrometheusError(f"Prometheus at {url} answered something that is not JSON: {body[:200]!r}") from exc


def value(response, query):
    """The one number an answer holds; None when it holds none (an empty vector, or NaN: 0/0, no traffic).

    A vector must hold one series (the query aggregates, e.g. with `sum`), a scalar is taken as it is; an error
    envelope, another result type, several series or an infinite value (a quantile past the last finite
    bucket) raise PrometheusError naming the query."""
    if not isinstance(response, dict) or response.get("status") != "success":
        kind = response.get("errorType", "unknown") if isinstance(response, dict) else "unknown"
        said = response.get("error", "no error message") if isinstance(response, dict) else repr(response)
        raise PrometheusError(f"Prometheus refused the query {query!r}: {kind}: {said}")
    data = response.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        sample = result
    elif kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"the query {query!r} answered {len(result)} series, one is needed "
                                  "(aggregate it, e.g. sum(...) or sum by (le) (...) inside histogram_quantile)")
        sample = result[0].get("value")
    else:
        raise PrometheusError(f"the query {query!r} answered a {kind} result; an instant vector or a scalar is "
                              "needed")
    try:
        number = float(sample[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise PrometheusError(f"the query {query!r} answered an unreadable sample {sample!r}") from exc
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise PrometheusError(f"the query {query!r} answered {sample[1]}: no verdict can be read from it "
                              "(a quantile past the histogram's last finite bucket?)")
    return number


NO_DATA = {"requests": 0, "errors": 0, "error_rate": 0.0, "avg_ms": None, "p95_ms": None}


def window(settings, version, window_s, at=None, asker=ask):
    """One version's numbers over the window ending at `at` (now), in canary_guard's window shape:
    requests (None without a `requests` query), errors, error_rate, avg_ms (None: not measured here) and
    p95_ms (None when the latency query has no data). An empty or NaN error ratio is no traffic: requests 0,
    so the judge fails the step as it does below min_requests.

    `settings`: url, error_ratio, latency_p95 (seconds, as Prometheus histograms are), requests (optional),
    timeout_s."""
    at = time.time() if at is None else at

    def read(name):
        query = promql(settings[name], version, window_s)
        return value(asker(settings["url"], query, at, settings["timeout_s"]), query)

    rate = read("error_ratio")
    if rate is None:
        return dict(NO_DATA)
    requests = read("requests") if settings.get("requests") else None
    if settings.get("requests") and not requests:
        return dict(NO_DATA)
    p95 = read("latency_p95")
    return {"requests": None if requests is None else int(round(requests)),
            "errors": None if requests is None else int(round(rate * requests)),
            "error_rate": round(rate, 4), "avg_ms": None,
            "p95_ms": None if p95 is None else round(p95 * 1000, 1)}
