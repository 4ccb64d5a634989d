"""The SLO verdict on a window of traffic against a baseline window, whatever source measured them (HAProxy's
counters, Prometheus): each a dict {requests, errors, error_rate, avg_ms, p95_ms}, a number the source does not
measure being None (Prometheus: no average, no count without its query). Shared by the canary guard and the hold
after a rollout."""

from __future__ import annotations

# The limits judge() reads, as a module's argument_spec (every module that judges takes them alike).
LIMIT_OPTIONS = {
    "max_error_rate": {"type": "float", "default": 0.01},
    "max_error_ratio": {"type": "float", "default": 2.0},
    "max_latency_ratio": {"type": "float", "default": 2.0},
    "max_latency_ms": {"type": "int", "default": 0},
    "max_p95_ms": {"type": "int", "default": 0},
    "min_requests": {"type": "int", "default": 20},
}
# Below this a baseline's latency is noise (HAProxy counts whole ms): 1 ms against 3 ms is no slowdown.
LATENCY_FLOOR_MS = 10


def _seen(side):
    """Whether a side answered anything: a count above 0, or numbers from a source that counts no requests."""
    return side["requests"] is None or side["requests"] > 0


def _share(side):
    return f" ({side['errors']}/{side['requests']})" if side["requests"] is not None else ""


def _slower(judged, baseline, limits, key, what, subject):
    """The reason the judged side's `key` latency is above max_latency_ratio times the baseline's, if it is."""
    if judged.get(key) is None or baseline.get(key) is None or not _seen(baseline):
        return []
    slowest = round(max(baseline[key], LATENCY_FLOOR_MS) * limits["max_latency_ratio"], 1)
    if judged[key] <= slowest:
        return []
    return [f"{subject} {what} {judged[key]} ms is above {limits['max_latency_ratio']}x the baseline's "
            f"{baseline[key]} ms (limit {slowest} ms)"]


def _above(judged, limits, key, limit, what, subject):
    """The reason the judged side's `key` latency is above its absolute limit, if one is set and it is."""
    if not limits.get(limit) or (judged.get(key) or 0) <= limits[limit]:
        return []
    return [f"{subject} {what} {judged[key]} ms is above the limit {limits[limit]} ms"]


def judge(judged, baseline, limits, subject="canary"):
    """The reasons `judged` fails its SLO, each with its numbers; [] when it passes. `subject` names it in them.
    A number a source does not measure (None) is not judged."""
    if judged["requests"] is not None and judged["requests"] < limits["min_requests"]:
        return [f"the {subject} answered {judged['requests']} requests in the window, fewer than "
                f"{limits['min_requests']} needed to judge it"]
    reasons = []
    if judged["error_rate"] > limits["max_error_rate"]:
        reasons.append(f"{subject} error rate {judged['error_rate']:.2%}{_share(judged)} "
                       f"is above the limit {limits['max_error_rate']:.2%}")
    if _seen(baseline) and judged["error_rate"] > max(baseline["error_rate"], 0.001) * limits["max_error_ratio"]:
        reasons.append(f"{subject} error rate {judged['error_rate']:.2%} is above {limits['max_error_ratio']}x the "
                       f"baseline's {baseline['error_rate']:.2%}")
    reasons += _slower(judged, baseline, limits, "avg_ms", "response time", subject)
    reasons += _above(judged, limits, "avg_ms", "max_latency_ms", "response time", subject)
    reasons += _slower(judged, baseline, limits, "p95_ms", "p95 response time", subject)
    reasons += _above(judged, limits, "p95_ms", "max_p95_ms", "p95 response time", subject)
    return reasons
