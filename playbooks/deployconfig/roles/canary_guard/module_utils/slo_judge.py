"""The SLO verdict on a window of traffic against a baseline window, whatever source measured them (HAProxy's
counters, Prometheus): each a dict {requests, errors, error_rate, avg_ms}. Shared by the canary guard and the
hold after a rollout; and the host triggers' arithmetic on /proc readings."""

from __future__ import annotations

# The limits judge() reads, as a module's argument_spec (every module that judges takes them alike).
LIMIT_OPTIONS = {
    "max_error_rate": {"type": "float", "default": 0.01},
    "max_error_ratio": {"type": "float", "default": 2.0},
    "max_latency_ratio": {"type": "float", "default": 2.0},
    "max_latency_ms": {"type": "int", "default": 0},
    "min_requests": {"type": "int", "default": 20},
}
# Below this a baseline's average is noise (HAProxy counts whole ms): 1 ms against 3 ms is no slowdown.
LATENCY_FLOOR_MS = 10


def judge(judged, baseline, limits, subject="canary"):
    """The reasons `judged` fails its SLO, each with its numbers; [] when it passes. `subject` names it in them."""
    reasons = []
    if judged["requests"] < limits["min_requests"]:
        return [f"the {subject} answered {judged['requests']} requests in the window, fewer than "
                f"{limits['min_requests']} needed to judge it"]
    if judged["error_rate"] > limits["max_error_rate"]:
        reasons.append(f"{subject} error rate {judged['error_rate']:.2%} ({judged['errors']}/{judged['requests']}) "
                       f"is above the limit {limits['max_error_rate']:.2%}")
    if baseline["requests"] and judged["error_rate"] > max(baseline["error_rate"], 0.001) * limits["max_error_ratio"]:
        reasons.append(f"{subject} error rate {judged['error_rate']:.2%} is above {limits['max_error_ratio']}x the "
                       f"baseline's {baseline['error_rate']:.2%}")
    slowest = round(max(baseline["avg_ms"], LATENCY_FLOOR_MS) * limits["max_latency_ratio"], 1)
    if baseline["requests"] and judged["avg_ms"] > slowest:
        reasons.append(f"{subject} response time {judged['avg_ms']} ms is above {limits['max_latency_ratio']}x the "
                       f"baseline's {baseline['avg_ms']} ms (limit {slowest} ms)")
    if limits.get("max_latency_ms") and judged["avg_ms"] > limits["max_latency_ms"]:
        reasons.append(f"{subject} response time {judged['avg_ms']} ms is above the limit {limits['max_latency_ms']} ms")
    return reasons
