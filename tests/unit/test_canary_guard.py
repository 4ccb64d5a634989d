"""The canary SLO guard's arithmetic on HAProxy `show stat` snapshots (roles/canary_guard)."""

from __future__ import annotations

from types import ModuleType

from role_files import load_role_file

LIMITS = {"min_requests": 20, "max_error_rate": 0.01, "max_error_ratio": 2.0, "max_latency_ratio": 2.0,
          "max_latency_ms": 0}
HEADER = ("# pxname,svname,scur,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,rtime,status\n")


def _guard() -> ModuleType:
    return load_role_file("canary_guard/library/canary_guard.py")


def _stat(rows: dict[str, tuple[int, int, int]]) -> str:
    """server -> (2xx, 5xx, rtime ms) as `show stat` prints them, plus the FRONTEND/BACKEND lines."""
    lines = [f"app,{name},0,0,{ok},0,0,{bad},0,{ms},UP" for name, (ok, bad, ms) in rows.items()]
    return HEADER + "app,BACKEND,0,0,999,0,0,999,0,1,UP\n" + "\n".join(lines) + "\n"


def test_a_canary_answering_5xx_fails_on_both_the_absolute_and_the_relative_rate() -> None:
    guard = _guard()
    before = guard.server_rows(_stat({"app1": (100, 0, 5), "app2": (100, 1, 5), "app3": (100, 0, 5)}), "app")
    after = guard.server_rows(_stat({"app1": (180, 20, 6), "app2": (300, 1, 5), "app3": (290, 1, 5)}), "app")
    canary = guard.window(before, after, ["app1"])
    baseline = guard.window(before, after, ["app2", "app3"])
    assert canary == {"requests": 100, "errors": 20, "error_rate": 0.2, "avg_ms": 6.0}
    assert baseline["requests"] == 391 and baseline["errors"] == 1
    reasons = guard.judge(canary, baseline, LIMITS)
    assert reasons[0] == "canary error rate 20.00% (20/100) is above the limit 1.00%"
    assert "above 2.0x the baseline's 0.26%" in reasons[1]


def test_a_slow_canary_fails_on_latency_and_a_healthy_one_passes() -> None:
    guard = _guard()
    before = guard.server_rows(_stat({"app1": (0, 0, 0), "app2": (0, 0, 0)}), "app")
    slow = guard.server_rows(_stat({"app1": (50, 0, 240), "app2": (200, 0, 8)}), "app")
    reasons = guard.judge(guard.window(before, slow, ["app1"]), guard.window(before, slow, ["app2"]), LIMITS)
    assert reasons == ["canary response time 240.0 ms is above 2.0x the baseline's 8.0 ms (limit 20.0 ms)"]
    fine = guard.server_rows(_stat({"app1": (50, 0, 9), "app2": (200, 0, 8)}), "app")
    assert guard.judge(guard.window(before, fine, ["app1"]), guard.window(before, fine, ["app2"]), LIMITS) == []
    fast = guard.server_rows(_stat({"app1": (50, 0, 3), "app2": (200, 0, 1)}), "app")  # 3 ms vs 1 ms is noise
    assert guard.judge(guard.window(before, fast, ["app1"]), guard.window(before, fast, ["app2"]), LIMITS) == []


def test_too_few_canary_requests_cannot_be_judged() -> None:
    guard = _guard()
    before = guard.server_rows(_stat({"app1": (0, 0, 0)}), "app")
    after = guard.server_rows(_stat({"app1": (5, 0, 3)}), "app")
    reasons = guard.judge(guard.window(before, after, ["app1"]), guard.window(before, after, []), LIMITS)
    assert reasons == ["the canary answered 5 requests in the window, fewer than 20 needed to judge it"]


def test_retried_requests_count_as_errors() -> None:
    """`retry-on 500` sends a failed request to another server: no 5xx is counted, only the retry."""
    guard = _guard()
    header = "# pxname,svname,hrsp_2xx,hrsp_5xx,wretr,rtime\n"
    before = guard.server_rows(header + "app,app1,100,0,0,1\n", "app")
    after = guard.server_rows(header + "app,app1,170,0,30,1\n", "app")
    assert guard.window(before, after, ["app1"]) == {"requests": 100, "errors": 30, "error_rate": 0.3, "avg_ms": 1.0}
