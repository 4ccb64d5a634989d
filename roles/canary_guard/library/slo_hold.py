#!/usr/bin/python
"""The SLO hold after a rollout: the new release's traffic over the hold, against the window before the deploy."""

from __future__ import annotations

DOCUMENTATION = r"""
module: slo_hold
short_description: Judge a release by its traffic after the rollout, against the traffic before the deploy
description:
  - "O(action=snapshot) reads HAProxy's C(show stat) for the backend and returns its servers' counters and the time
    (RV(snapshot)): the deploy keeps one at its start and one right before its first switch, so the traffic
    between them, all on the old release, is the baseline."
  - "O(action=judge) reads the counters at the start and the end of O(duration_s) seconds and judges the responses
    the release's O(servers) gave in that time against the baseline: the share of 5xx and retried requests
    (absolute, and relative to the baseline's) and the average response time (relative to the baseline's, or
    O(max_latency_ms)); fewer than O(min_requests) responses cannot be judged and fail too. The baseline is every
    server of the backend between the first and the last of O(baseline) (the snapshots); when that window holds
    fewer than O(min_requests) requests, or there are fewer than two snapshots, the counters since HAProxy started
    (at the last snapshot, else at the hold's start) stand in for it."
  - "With O(source=prometheus) the judge asks Prometheus instead (run it on the control node): the release's
    version's series over the hold against the previous version's over as long a time ending at the first
    snapshot, error ratio and p95 (O(max_p95_ms))."
  - The verdict is returned (RV(passed)); the module fails only when it cannot read the statistics.
options:
  action:
    description: snapshot or judge.
    type: str
    choices: [snapshot, judge]
    default: judge
  socket: {description: HAProxy runtime API socket., type: path, default: /run/haproxy/admin.sock}
  backend: {description: Backend holding the servers., type: str, required: true}
  servers: {description: Server names running the new release (judge)., type: list, elements: str, default: []}
  baseline:
    description: Snapshots taken before the first switch, oldest first (judge).
    type: list
    elements: dict
    default: []
  duration_s: {description: "Seconds of the release's traffic judged.", type: int, default: 60}
  max_error_rate: {description: Highest share of 5xx or retried requests (0.01 is 1%)., type: float, default: 0.01}
  max_error_ratio: {description: Highest release/baseline error rate ratio., type: float, default: 2.0}
  max_latency_ratio: {description: Highest release/baseline average response time ratio., type: float, default: 2.0}
  max_latency_ms: {description: Highest average response time (0 means no absolute limit)., type: int, default: 0}
  max_p95_ms: {description: Highest p95 response time where the source measures it (0 means no limit)., type: int,
               default: 0}
  min_requests: {description: Fewest responses of the release in the hold to judge at all., type: int, default: 20}
  started:
    description: "The counters as the hold started (judge): the window is from them to now, no wait (the hosts were
      sampled meanwhile); without them the module reads the counters, waits O(duration_s), reads them again."
    type: dict
  hosts:
    description: "Each release host's CPU and memory use over the hold (host_load's result), for the host triggers."
    type: dict
    default: {}
  max_cpu_percent:
    description: A host whose CPU use stays above this the whole hold fails it (0 is no limit).
    type: int
    default: 0
  max_memory_percent:
    description: A host whose memory use stays above this the whole hold fails it (0 is no limit).
    type: int
    default: 0
  source:
    description: "Where the judge reads the numbers: haproxy (the counters) or prometheus (the release's and the
      previous version's series)."
    type: str
    choices: [haproxy, prometheus]
    default: haproxy
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
  release_version: {description: "The release's version (C($version) in the queries, source prometheus).", type: str,
                    default: ""}
  baseline_version:
    description: "The version before the deploy (source prometheus): its series over as long a time ending at the
      first snapshot is the baseline; empty: no baseline."
    type: str
    default: ""
author: rollwright
"""

RETURN = r"""
snapshot:
  description: "snapshot: time and servers (each server's response, retry and rtime counters)."
  returned: action is snapshot
  type: dict
release:
  description: "requests, errors (5xx and retries), error_rate, avg_ms, p95_ms and servers of the release in the hold
    (from Prometheus: its version)."
  returned: action is judge
  type: dict
baseline:
  description: "The same for the baseline, with source (before the deploy, or cumulative) and seconds."
  returned: action is judge
  type: dict
reasons: {description: Why the release failed (empty when it passed)., returned: action is judge, type: list}
passed: {description: Whether the release met every limit., returned: action is judge, type: bool}
hosts:
  description: "Each host's cpu_percent and memory_percent over the hold (lowest, highest, average)."
  returned: action is judge
  type: dict
duration_s: {description: The hold in seconds., returned: action is judge, type: int}
source: {description: Where the numbers came from (haproxy or prometheus)., returned: action is judge, type: str}
"""

import time

from ansible.module_utils import slo_prometheus
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.host_load import host_reasons
from ansible.module_utils.slo_haproxy import snapshot, window
from ansible.module_utils.slo_judge import LIMIT_OPTIONS, judge

BEFORE_THE_DEPLOY = "before the deploy"
CUMULATIVE = "cumulative"


def baseline_window(snapshots, fallback, min_requests):
    """The old release's traffic: every server between the first and the last snapshot, or, when that holds
    fewer than `min_requests`, the counters since HAProxy started (at the last snapshot, else at `fallback`)."""
    if len(snapshots) >= 2:
        first, last = snapshots[0], snapshots[-1]
        numbers = window(first["servers"], last["servers"], sorted(last["servers"]))
        if numbers["requests"] >= min_requests:
            return {**numbers, "source": BEFORE_THE_DEPLOY, "seconds": round(last["time"] - first["time"], 1)}
    counters = (snapshots[-1] if snapshots else fallback)["servers"]
    return {**window({}, counters, sorted(counters)), "source": CUMULATIVE, "seconds": 0}


def haproxy_sides(module, params):
    """The release's servers over the hold and the baseline window, from HAProxy's counters (or, for
    action=snapshot, the counters now, returned at once)."""
    try:
        before = params["started"] or snapshot(params["socket"], params["backend"])
        if params["action"] == "snapshot":
            module.exit_json(changed=False, snapshot=before)
        if not params["started"]:
            time.sleep(params["duration_s"])
        after = snapshot(params["socket"], params["backend"])
    except OSError as exc:
        module.fail_json(msg=f"cannot read HAProxy statistics on {params['socket']}: {exc}")
    servers = [name for name in params["servers"] if name in after["servers"]]
    if not servers:
        module.fail_json(msg=f"backend {params['backend']} has none of the release's servers "
                             f"{', '.join(params['servers']) or '(none given)'}")
    release = {**window(before["servers"], after["servers"], servers), "servers": servers}
    return release, baseline_window(params["baseline"], before, params["min_requests"])


def prometheus_sides(module, params):
    """The release's version's series over the hold, and the previous version's over as long a time ending at
    the deploy's first snapshot (the traffic before the deploy); no previous version or snapshot: no baseline."""
    settings, duration = params["prometheus"], params["duration_s"]
    if not params["started"]:
        time.sleep(duration)
    try:
        release = slo_prometheus.window(settings, params["release_version"], duration)
        if params["baseline_version"] and params["baseline"]:
            baseline = slo_prometheus.window(settings, params["baseline_version"], duration,
                                             at=params["baseline"][0]["time"])
        else:
            baseline = dict(slo_prometheus.NO_DATA)
    except slo_prometheus.PrometheusError as exc:
        module.fail_json(msg=str(exc), source="prometheus")
    return ({**release, "servers": params["servers"], "version": params["release_version"]},
            {**baseline, "source": BEFORE_THE_DEPLOY, "seconds": duration, "version": params["baseline_version"]})


def main():
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["snapshot", "judge"], "default": "judge"},
            "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
            "backend": {"type": "str", "required": True},
            "servers": {"type": "list", "elements": "str", "default": []},
            "baseline": {"type": "list", "elements": "dict", "default": []},
            "duration_s": {"type": "int", "default": 60},
            **LIMIT_OPTIONS,
            "started": {"type": "dict"},
            "hosts": {"type": "dict", "default": {}},
            "max_cpu_percent": {"type": "int", "default": 0},
            "max_memory_percent": {"type": "int", "default": 0},
            "source": {"type": "str", "choices": ["haproxy", "prometheus"], "default": "haproxy"},
            "prometheus": slo_prometheus.OPTION,
            "release_version": {"type": "str", "default": ""},
            "baseline_version": {"type": "str", "default": ""},
        },
        required_if=[("source", "prometheus", ("prometheus", "release_version"))],
        supports_check_mode=True,
    )
    params = module.params
    if module.check_mode and params["action"] == "judge":
        module.exit_json(changed=False, skipped=True, passed=True, reasons=[], msg="no hold in check mode")
    if params["action"] == "judge" and params["source"] == "prometheus":
        release, baseline = prometheus_sides(module, params)
    else:
        release, baseline = haproxy_sides(module, params)
    loads = {host: {key: readings.get(key) for key in ("cpu_percent", "memory_percent")}
             for host, readings in sorted(params["hosts"].items()) if isinstance(readings, dict) and readings}
    reasons = judge(release, baseline, params, subject="release")
    reasons += [reason for host, readings in loads.items() for reason in host_reasons(host, readings, params)]
    module.exit_json(changed=False, passed=not reasons, reasons=reasons, duration_s=params["duration_s"],
                     release=release, baseline=baseline, hosts=loads, source=params["source"])


if __name__ == "__main__":
    main()
