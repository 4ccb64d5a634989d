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

import time

from ansible.module_utils import slo_prometheus
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.slo_haproxy import server_rows, show_stat, window
from ansible.module_utils.slo_judge import LIMIT_OPTIONS, judge


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
            "prometheus": slo_prometheus.OPTION,
            "canary_version": {"type": "str", "default": ""},
            "baseline_version": {"type": "str", "default": ""},
            "backend": {"type": "str", "required": True},
            "canary": {"type": "list", "elements": "str", "required": True},
            "baseline": {"type": "list", "elements": "str", "default": []},
            "window_s": {"type": "int", "default": 30},
            **LIMIT_OPTIONS,
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
