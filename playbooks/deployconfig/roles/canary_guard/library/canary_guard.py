#!/usr/bin/python
"""The SLO guard of a canary step: HAProxy's own per-server counters (or a Prometheus query), canary against
baseline."""

from __future__ import annotations

DOCUMENTATION = r"""
module: canary_guard
short_description: Judge a canary from HAProxy's per-server statistics or Prometheus over an analysis window
description:
  - "Reads C(show stat) on the load balancer's runtime socket at the start and at the end of
    O(window_s) seconds, and compares the responses the canary servers gave in that window with the
    baseline servers': the share of 5xx and of retried requests (HAProxy hides a retried 5xx from the
    client), and the average response time (HAProxy's C(rtime), over each server's last 1024 requests)."
  - "Judges, with the numbers: the canary fails when its error rate is above O(max_error_rate), or above
    O(max_error_ratio) times the baseline's, or its response time is above O(max_latency_ratio) times the
    baseline's (or O(max_latency_ms)); a canary that answered fewer than O(min_requests) cannot be
    judged and fails too. The verdict is returned (RV(passed)), so the play decides what to stop; the
    module itself fails only when it cannot read the statistics."
  - "With O(source=prometheus) the numbers come from Prometheus instead (run it where Prometheus is reachable,
    e.g. the control node): at the end of the window, the instant query API answers each version's error ratio,
    p95 latency (seconds) and, optionally, request count, the canary's series named by O(canary_version), the
    baseline's by O(baseline_version) (the literal token C($version) in each query; C($window) is the window,
    C(<window_s>s)). There is no average there: the p95 is judged against O(max_latency_ratio) times the
    baseline's and O(max_p95_ms). An empty or NaN answer is no traffic, judged like too few requests; an
    unreachable Prometheus, an error answer, several series or an infinite value fail the module."
options:
  source: {description: Where the numbers come from., type: str, choices: [haproxy, prometheus], default: haproxy}
  socket: {description: HAProxy runtime API socket., type: path, default: /run/haproxy/admin.sock}
  prometheus:
    description: The Prometheus source (required by O(source=prometheus)).
    type: dict
    suboptions:
      url: {description: "Prometheus' base URL (http or https); the module asks <url>/api/v1/query.", type: str,
            required: true}
      error_ratio: {description: PromQL giving one version's error share (0 to 1) over the window., type: str,
                    required: true}
      latency_p95: {description: PromQL giving one version's p95 latency in seconds (histogram_quantile)., type: str,
                    required: true}
      requests: {description: PromQL giving one version's request count over the window (for O(min_requests))., type: str}
      timeout_s: {description: Seconds to wait for each answer., type: float, default: 10}
  canary_version: {description: "The new release's version (C($version) in the canary's queries).", type: str,
                   default: ""}
  baseline_version: {description: "The previous release's version (empty: no baseline to compare with).", type: str,
                     default: ""}
  backend: {description: Backend holding the servers., type: str, required: true}
  canary: {description: Server names running the new release., type: list, elements: str, required: true}
  baseline: {description: Server names still on the old release (may be empty)., type: list, elements: str,
             default: []}
  window_s: {description: Analysis window in seconds., type: int, default: 30}
  max_error_rate: {description: Highest share of 5xx or retried canary requests (0.01 is 1%)., type: float,
                   default: 0.01}
  max_error_ratio: {description: Highest canary/baseline error rate ratio (when the baseline has errors)., type: float,
                    default: 2.0}
  max_latency_ratio: {description: Highest canary/baseline average response time ratio., type: float, default: 2.0}
  max_latency_ms: {description: Highest canary average response time (0 means no absolute limit)., type: int,
                   default: 0}
  max_p95_ms: {description: Highest canary p95 response time where the source measures it (0 means no limit).,
               type: int, default: 0}
  min_requests: {description: Fewest canary responses in the window to judge at all., type: int, default: 20}
author: rollwright
"""

RETURN = r"""
canary: {description: "requests, errors (5xx), error_rate, avg_ms, p95_ms of the canary in the window (a number the
          source does not measure is null).",
         returned: always, type: dict}
baseline: {description: The same for the baseline servers., returned: always, type: dict}
reasons: {description: Why the canary failed (empty when it passed)., returned: always, type: list}
passed: {description: Whether the canary met every limit., returned: always, type: bool}
canary_servers: {description: The canary servers judged., returned: always, type: list}
baseline_servers: {description: The baseline servers judged against., returned: always, type: list}
window_s: {description: The analysis window in seconds., returned: always, type: int}
source: {description: Where the numbers came from (haproxy or prometheus)., returned: always, type: str}
canary_version: {description: The canary's version (Prometheus source)., returned: always, type: str}
baseline_version: {description: The baseline's version (Prometheus source)., returned: always, type: str}
"""

import csv
import socket
import time

from ansible.module_utils import slo_prometheus
from ansible.module_utils.basic import AnsibleModule

# Below this a baseline's average is noise (HAProxy counts whole ms): 1 ms against 3 ms is no slowdown.
LATENCY_FLOOR_MS = 10
RESPONSE_COLUMNS = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


def show_stat(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"show stat\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode()


def server_rows(text, backend):
    """server name -> its `show stat` row, for one backend."""
    return {row["svname"]: row for row in csv.DictReader(text.lstrip("# ").splitlines())
            if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND")}


def _number(row, column):
    try:
        return int(row.get(column) or 0)
    except ValueError:
        return 0


def window(before, after, servers):
    """Requests, errors and average response time of `servers` between two snapshots.

    An error is a 5xx response or a retry (`wretr`): with `retry-on 500` and the like, HAProxy hides a
    server's 5xx from the client and from `hrsp_5xx` by sending the request to another server, so the
    retries are the only trace of them."""
    requests = errors = answers = 0
    weighted_ms = 0
    for name in servers:
        old, new = before.get(name, {}), after.get(name, {})
        answered = sum(_number(new, c) - _number(old, c) for c in RESPONSE_COLUMNS)
        retried = _number(new, "wretr") - _number(old, "wretr")
        requests += answered + retried
        errors += _number(new, "hrsp_5xx") - _number(old, "hrsp_5xx") + retried
        answers += answered
        weighted_ms += answered * _number(new, "rtime")
    return {"requests": requests, "errors": errors,
            "error_rate": round(errors / requests, 4) if requests else 0.0,
            "avg_ms": round(weighted_ms / answers, 1) if answers else 0.0}


def _seen(side):
    """Whether a side answered anything: a count above 0, or numbers from a source that counts no requests."""
    return side["requests"] is None or side["requests"] > 0


def _share(side):
    return f" ({side['errors']}/{side['requests']})" if side["requests"] is not None else ""


def _slower(canary, baseline, limits, key, what):
    """The reason the canary's `key` latency is above max_latency_ratio times the baseline's, if it is."""
    if canary.get(key) is None or baseline.get(key) is None or not _seen(baseline):
        return []
    slowest = round(max(baseline[key], LATENCY_FLOOR_MS) * limits["max_latency_ratio"], 1)
    if canary[key] <= slowest:
        return []
    return [f"canary {what} {canary[key]} ms is above {limits['max_latency_ratio']}x the baseline's "
            f"{baseline[key]} ms (limit {slowest} ms)"]


def judge(canary, baseline, limits):
    """The reasons the canary fails its SLO, each with its numbers; [] when it passes. A number a source does
    not measure is None (Prometheus: no average, no count without its query) and is not judged."""
    reasons = []
    if canary["requests"] is not None and canary["requests"] < limits["min_requests"]:
        return [f"the canary answered {canary['requests']} requests in the window, fewer than "
                f"{limits['min_requests']} needed to judge it"]
    if canary["error_rate"] > limits["max_error_rate"]:
        reasons.append(f"canary error rate {canary['error_rate']:.2%}{_share(canary)} "
                       f"is above the limit {limits['max_error_rate']:.2%}")
    if _seen(baseline) and canary["error_rate"] > max(baseline["error_rate"], 0.001) * limits["max_error_ratio"]:
        reasons.append(f"canary error rate {canary['error_rate']:.2%} is above {limits['max_error_ratio']}x the "
                       f"baseline's {baseline['error_rate']:.2%}")
    reasons += _slower(canary, baseline, limits, "avg_ms", "response time")
    if limits["max_latency_ms"] and (canary.get("avg_ms") or 0) > limits["max_latency_ms"]:
        reasons.append(f"canary response time {canary['avg_ms']} ms is above the limit {limits['max_latency_ms']} ms")
    reasons += _slower(canary, baseline, limits, "p95_ms", "p95 response time")
    if limits.get("max_p95_ms") and (canary.get("p95_ms") or 0) > limits["max_p95_ms"]:
        reasons.append(f"canary p95 response time {canary['p95_ms']} ms is above the limit "
                       f"{limits['max_p95_ms']} ms")
    return reasons


def prometheus_sides(params):
    """The canary's and the baseline's numbers from Prometheus, each version's own series, at the end of
    the window; no baseline servers left (the last step) or no previous version known: no baseline."""
    settings = params["prometheus"]
    time.sleep(params["window_s"])
    at = time.time()
    canary = slo_prometheus.window(settings, params["canary_version"], params["window_s"], at)
    if not (params["baseline"] and params["baseline_version"]):
        return canary, dict(slo_prometheus.NO_DATA)
    return canary, slo_prometheus.window(settings, params["baseline_version"], params["window_s"], at)


def haproxy_sides(module, params):
    try:
        before = server_rows(show_stat(params["socket"]), params["backend"])
        time.sleep(params["window_s"])
        after = server_rows(show_stat(params["socket"]), params["backend"])
    except OSError as exc:
        module.fail_json(msg=f"cannot read HAProxy statistics on {params['socket']}: {exc}")
    missing = [name for name in params["canary"] if name not in after]
    if missing:
        module.fail_json(msg=f"backend {params['backend']} has no server {', '.join(missing)}")
    return window(before, after, params["canary"]), window(before, after, [name for name in params["baseline"]
                                                                           if name in after])


def main():
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "str", "choices": ["haproxy", "prometheus"], "default": "haproxy"},
            "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
            "prometheus": {"type": "dict", "options": {
                "url": {"type": "str", "required": True},
                "error_ratio": {"type": "str", "required": True},
                "latency_p95": {"type": "str", "required": True},
                "requests": {"type": "str"},
                "timeout_s": {"type": "float", "default": 10},
            }},
            "canary_version": {"type": "str", "default": ""},
            "baseline_version": {"type": "str", "default": ""},
            "backend": {"type": "str", "required": True},
            "canary": {"type": "list", "elements": "str", "required": True},
            "baseline": {"type": "list", "elements": "str", "default": []},
            "window_s": {"type": "int", "default": 30},
            "max_error_rate": {"type": "float", "default": 0.01},
            "max_error_ratio": {"type": "float", "default": 2.0},
            "max_latency_ratio": {"type": "float", "default": 2.0},
            "max_latency_ms": {"type": "int", "default": 0},
            "max_p95_ms": {"type": "int", "default": 0},
            "min_requests": {"type": "int", "default": 20},
        },
        required_if=[("source", "prometheus", ("prometheus", "canary_version"))],
        supports_check_mode=True,
    )
    params = module.params
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, passed=True, reasons=[], msg="no analysis in check mode")
    if params["source"] == "prometheus":
        try:
            canary, baseline = prometheus_sides(params)
        except slo_prometheus.PrometheusError as exc:
            module.fail_json(msg=str(exc), source="prometheus")
    else:
        canary, baseline = haproxy_sides(module, params)
    reasons = judge(canary, baseline, params)
    module.exit_json(changed=False, passed=not reasons, canary=canary, baseline=baseline, reasons=reasons,
                     canary_servers=params["canary"], baseline_servers=params["baseline"],
                     window_s=params["window_s"], source=params["source"],
                     canary_version=params["canary_version"], baseline_version=params["baseline_version"])


if __name__ == "__main__":
    main()
