#!/usr/bin/python
"""The SLO guard of a canary step: HAProxy's own per-server counters, canary against baseline."""

from __future__ import annotations

DOCUMENTATION = r"""
module: canary_guard
short_description: Judge a canary from HAProxy's per-server statistics over an analysis window
description:
  - Reads C(show stat) on the load balancer's runtime socket at the start and at the end of
    O(window_s) seconds, and compares the responses the canary servers gave in that window with the
    baseline servers': the share of 5xx and of retried requests (HAProxy hides a retried 5xx from the
    client), and the average response time (HAProxy's C(rtime), over each server's last 1024 requests).
  - Judges, with the numbers: the canary fails when its error rate is above O(max_error_rate), or above
    O(max_error_ratio) times the baseline's, or its response time is above O(max_latency_ratio) times the
    baseline's (or O(max_latency_ms)); a canary that answered fewer than O(min_requests) cannot be
    judged and fails too. The verdict is returned (RV(passed)), so the play decides what to stop; the
    module itself fails only when it cannot read the statistics.
options:
  socket: {description: HAProxy runtime API socket., type: path, default: /run/haproxy/admin.sock}
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
  min_requests: {description: Fewest canary responses in the window to judge at all., type: int, default: 20}
author: rollwright
"""

RETURN = r"""
canary: {description: "requests, errors (5xx), error_rate, avg_ms of the canary servers in the window.",
         returned: always, type: dict}
baseline: {description: The same for the baseline servers., returned: always, type: dict}
reasons: {description: Why the canary failed (empty when it passed)., returned: always, type: list}
passed: {description: Whether the canary met every limit., returned: always, type: bool}
canary_servers: {description: The canary servers judged., returned: always, type: list}
baseline_servers: {description: The baseline servers judged against., returned: always, type: list}
window_s: {description: The analysis window in seconds., returned: always, type: int}
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.slo_haproxy import server_rows, show_stat, window
from ansible.module_utils.slo_judge import LIMIT_OPTIONS, judge


def main():
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
            "backend": {"type": "str", "required": True},
            "canary": {"type": "list", "elements": "str", "required": True},
            "baseline": {"type": "list", "elements": "str", "default": []},
            "window_s": {"type": "int", "default": 30},
            **LIMIT_OPTIONS,
        },
        supports_check_mode=True,
    )
    params = module.params
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, passed=True, reasons=[], msg="no analysis in check mode")
    try:
        before = server_rows(show_stat(params["socket"]), params["backend"])
        time.sleep(params["window_s"])
        after = server_rows(show_stat(params["socket"]), params["backend"])
    except OSError as exc:
        module.fail_json(msg=f"cannot read HAProxy statistics on {params['socket']}: {exc}")
    missing = [name for name in params["canary"] if name not in after]
    if missing:
        module.fail_json(msg=f"backend {params['backend']} has no server {', '.join(missing)}")
    canary = window(before, after, params["canary"])
    baseline = window(before, after, [name for name in params["baseline"] if name in after])
    reasons = judge(canary, baseline, params)
    module.exit_json(changed=False, passed=not reasons, canary=canary, baseline=baseline, reasons=reasons,
                     canary_servers=params["canary"], baseline_servers=params["baseline"],
                     window_s=params["window_s"])


if __name__ == "__main__":
    main()
