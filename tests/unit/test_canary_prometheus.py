"""The canary guard's Prometheus source (roles/canary_guard/module_utils/slo_prometheus.py): Prometheus' recorded
answer shapes parsed, a bad canary aborted through canary_guard's judge, the module run by Ansible against a fake
on loopback, and the spec's `rollout.metrics` checked and rendered as data."""

from __future__ import annotations

import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from role_files import load_role_file, run_role_module

from prometheus_fake import QUERIES, FakePrometheus, per_version, shape
from rollwright.cli import main
from rollwright.spec.loader import SpecError, load_spec

LIMITS = {"min_requests": 20, "max_error_rate": 0.01, "max_error_ratio": 2.0, "max_latency_ratio": 2.0,
          "max_latency_ms": 0, "max_p95_ms": 0}
BAD_CANARY = {"2.0.0": {"error_ratio": "0.4", "latency_p95": "0.25", "requests": "300"},
              "1.0.0": {"error_ratio": "0.005", "latency_p95": "0.02", "requests": "600"}}


def _guard() -> ModuleType:
    return load_role_file("canary_guard/library/canary_guard.py")


def _slo() -> ModuleType:
    _guard()  # registers the role's module_utils as Ansible gives them to the module
    import ansible.module_utils.slo_prometheus as slo  # type: ignore[import-not-found]

    return slo


def _settings(url: str = "http://127.0.0.1:9", **extra: Any) -> dict[str, Any]:
    return {"url": url, **QUERIES, "timeout_s": 5, **extra}


def _recorded(answer: Any) -> Any:
    """An asker answering from recorded shapes, keeping the queries it was asked."""
    def asker(url: str, query: str, at: float, timeout_s: float) -> dict[str, Any]:
        asker.asked.append(query)  # type: ignore[attr-defined]
        return answer(query)[1]
    asker.asked = []  # type: ignore[attr-defined]
    return asker


def test_each_recorded_shape_is_read_or_refused_by_name() -> None:
    slo = _slo()
    assert slo.value(shape("vector"), "q") == 0.4
    assert slo.value(shape("scalar"), "q") == 0.25
    assert slo.value(shape("empty"), "q") is None  # no series: no traffic to judge
    assert slo.value(shape("nan"), "q") is None  # 0/0
    refusals = {"bad_data": "Prometheus refused the query 'sum(': bad_data: invalid parameter \"query\": 1:5: parse "
                            "error: unclosed left parenthesis",
                "inf": "answered +Inf: no verdict can be read from it",
                "two_series": "answered 2 series, one is needed",
                "matrix": "answered a matrix result; an instant vector or a scalar is needed"}
    for name, said in refusals.items():
        with pytest.raises(slo.PrometheusError, match=None) as refused:
            slo.value(shape(name), "sum(")
        assert said in str(refused.value), (name, str(refused.value))


def test_a_bad_canary_from_prometheus_is_aborted_by_the_judge_with_its_p95() -> None:
    slo, guard = _slo(), _guard()
    asker = _recorded(per_version(BAD_CANARY))
    canary = slo.window(_settings(), "2.0.0", 30, at=1733349600.0, asker=asker)
    baseline = slo.window(_settings(), "1.0.0", 30, at=1733349600.0, asker=asker)
    assert canary == {"requests": 300, "errors": 120, "error_rate": 0.4, "avg_ms": None, "p95_ms": 250.0}
    assert baseline == {"requests": 600, "errors": 3, "error_rate": 0.005, "avg_ms": None, "p95_ms": 20.0}
    assert asker.asked[0] == ('sum(rate(http_requests_total{service_version="2.0.0",code=~"5.."}[30s])) / '
                              'sum(rate(http_requests_total{service_version="2.0.0"}[30s]))')
    reasons = guard.judge(canary, baseline, {**LIMITS, "max_p95_ms": 200})
    assert reasons == ["canary error rate 40.00% (120/300) is above the limit 1.00%",
                       "canary error rate 40.00% is above 2.0x the baseline's 0.50%",
                       "canary p95 response time 250.0 ms is above 2.0x the baseline's 20.0 ms (limit 40.0 ms)",
                       "canary p95 response time 250.0 ms is above the limit 200 ms"]
    assert guard.judge(baseline, baseline, LIMITS) == []  # the same numbers pass


def test_no_data_for_the_canary_fails_the_step_and_no_request_query_skips_min_requests() -> None:
    slo, guard = _slo(), _guard()
    silent = _recorded(per_version({"1.0.0": BAD_CANARY["1.0.0"]}))
    canary = slo.window(_settings(), "2.0.0", 30, asker=silent)
    assert canary == slo.NO_DATA
    assert guard.judge(canary, slo.NO_DATA, LIMITS) == [
        "the canary answered 0 requests in the window, fewer than 20 needed to judge it"]
    uncounted = {key: value for key, value in _settings().items() if key != "requests"}
    healthy = _recorded(per_version({"2.0.0": {"error_ratio": "0", "latency_p95": "0.021"},
                                     "1.0.0": {"error_ratio": "0", "latency_p95": "0.02"}}))
    canary = slo.window(uncounted, "2.0.0", 30, asker=healthy)
    baseline = slo.window(uncounted, "1.0.0", 30, asker=healthy)
    assert canary["requests"] is None and canary["p95_ms"] == 21.0
    assert guard.judge(canary, baseline, LIMITS) == []
    slow = _recorded(per_version({"2.0.0": {"error_ratio": "0", "latency_p95": "0.5"},
                                  "1.0.0": {"error_ratio": "0", "latency_p95": "0.02"}}))
    assert guard.judge(slo.window(uncounted, "2.0.0", 30, asker=slow), slo.window(uncounted, "1.0.0", 30, asker=slow),
                       LIMITS) == ["canary p95 response time 500.0 ms is above 2.0x the baseline's 20.0 ms "
                                   "(limit 40.0 ms)"]


def test_ask_reads_prometheus_over_http_and_names_what_went_wrong() -> None:
    slo = _slo()
    with FakePrometheus(lambda query: (400, shape("bad_data")) if query == "sum(" else (200, shape("scalar"))) as fake:
        assert slo.value(slo.ask(fake.url, "vector(0.25)", 1733349600.5, 5), "vector(0.25)") == 0.25
        assert fake.asked == [{"query": "vector(0.25)", "time": "1733349600.500"}]
        with pytest.raises(slo.PrometheusError, match="bad_data: invalid parameter"):
            slo.value(slo.ask(fake.url, "sum(", 1733349600.5, 5), "sum(")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(slo.PrometheusError, match=f"cannot reach Prometheus at {closed}"):
        slo.ask(closed, "up", 0, 2)


def test_the_module_aborts_a_bad_canary_and_fails_on_a_refused_query() -> None:
    """canary_guard run by Ansible (AnsibleModule, the role's module_utils shipped with it) against the fake."""
    args = {"source": "prometheus", "backend": "hello", "canary": ["app1"], "baseline": ["app2", "app3"],
            "canary_version": "2.0.0", "baseline_version": "1.0.0", "window_s": 0}
    with FakePrometheus(per_version(BAD_CANARY)) as fake:
        result = run_role_module("canary_guard", "canary_guard", {**args, "prometheus": _settings(fake.url)})
        assert not result["failed"] and result["passed"] is False, result
        assert result["canary"]["p95_ms"] == 250.0 and result["baseline"]["error_rate"] == 0.005
        assert result["source"] == "prometheus" and result["reasons"][0].startswith("canary error rate 40.00%")
        assert {params["query"].count('"2.0.0"') + params["query"].count('"1.0.0"') for params in fake.asked} == {1, 2}
    with FakePrometheus(lambda query: (400, shape("bad_data"))) as fake:
        result = run_role_module("canary_guard", "canary_guard", {**args, "prometheus": _settings(fake.url)})
    assert result["failed"] and "bad_data" in result["msg"], result


def test_the_hold_judges_the_release_against_the_previous_version_before_the_deploy() -> None:
    """slo_hold with source prometheus, run by Ansible against the fake: the release's series over the hold (now),
    the previous version's over as long a time ending at the deploy's first snapshot."""
    before = 1_700_000_000.0
    args = {"source": "prometheus", "backend": "hello", "servers": ["app1", "app2"], "duration_s": 0,
            "release_version": "2.0.0", "baseline_version": "1.0.0",
            "baseline": [{"time": before, "servers": {}}, {"time": before + 30, "servers": {}}]}
    with FakePrometheus(per_version(BAD_CANARY)) as fake:
        result = run_role_module("canary_guard", "slo_hold", {**args, "prometheus": _settings(fake.url)})
    assert not result["failed"] and result["passed"] is False, result
    assert result["source"] == "prometheus" and result["reasons"][0].startswith("release error rate 40.00%"), result
    assert (result["release"]["version"], result["release"]["p95_ms"]) == ("2.0.0", 250.0), result
    assert (result["baseline"]["version"], result["baseline"]["error_rate"]) == ("1.0.0", 0.005), result
    baseline_times = {float(params["time"]) for params in fake.asked if '"1.0.0"' in params["query"]}
    assert baseline_times == {before}, fake.asked  # the window before the deploy, not now


def test_metrics_serve_a_hold_on_any_strategy(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {"source": "prometheus", "prometheus": {"url": "http://p:9090", **QUERIES}})
    text = spec.read_text().replace("strategy: canary", "strategy: rolling").replace(
        "  canary: {window_s: 10, max_p95_ms: 300}\n", "  hold: {duration_s: 30, max_p95_ms: 300}\n")
    spec.write_text(text)
    assert load_spec(spec).spec.rollout.source.prometheus is not None
    spec.write_text(text.replace("  hold: {duration_s: 30, max_p95_ms: 300}\n", ""))
    with pytest.raises(SpecError) as refused:
        load_spec(spec)
    assert "needs strategy 'canary' or a 'hold'" in str(refused.value), str(refused.value)


SPEC = """\
app: shop
artifact:
  path: dist/shop-1.0.0.tgz
  version: 1.0.0
  sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
release: {root: /srv/shop}
service: {exec: bin/shop, user: shop}
health: {path: /health, port: 8080}
rollout:
  strategy: canary
  load_balancer: {backend: shop}
  canary: {window_s: 10, max_p95_ms: 300}
  metrics: METRICS
targets: {staging: {inventory: inv}}
"""


def _spec(tmp_path: Path, metrics: dict[str, Any]) -> Path:
    (tmp_path / "dist").mkdir(exist_ok=True)
    (tmp_path / "dist" / "shop-1.0.0.tgz").write_bytes(b"x")
    (tmp_path / "inv").mkdir(exist_ok=True)
    (tmp_path / "inv" / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "app": {"hosts": {"app1": {}, "app2": {}}}, "lb": {"hosts": {"lb1": {}}}}}}))
    spec = tmp_path / "rollwright.yml"
    spec.write_text(SPEC.replace("METRICS", yaml.safe_dump(metrics, default_flow_style=True, width=10_000).strip()))
    return spec


@pytest.mark.parametrize(("metrics", "said"), [
    ({"source": "prometheus"}, "source 'prometheus' needs the 'prometheus' settings"),
    ({"prometheus": {"url": "http://p:9090", **QUERIES}}, "'prometheus' settings need source 'prometheus'"),
    ({"source": "prometheus", "prometheus": {"url": "http://ops:secret@p:9090", **QUERIES}},
     "credentials in the Prometheus URL"),
    ({"source": "prometheus", "prometheus": {"url": "ftp://p", **QUERIES}}, "must start with http:// or https://"),
    ({"source": "prometheus", "prometheus": {"url": "http://p:9090", **QUERIES, "latency_p95": "up"}},
     "must name the version with the token $version"),
    ({"source": "prometheus", "prometheus": {"url": "http://p:9090", **QUERIES, "timeout_s": 0}},
     "timeout_s"),
])
def test_bad_metrics_settings_are_refused_by_field(tmp_path: Path, metrics: dict[str, Any], said: str) -> None:
    with pytest.raises(SpecError) as refused:
        load_spec(_spec(tmp_path, metrics))
    assert said in str(refused.value), str(refused.value)
    assert "rollout.metrics" in str(refused.value)


def test_the_queries_reach_the_playbooks_as_data_and_the_plan_names_prometheus(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, {"source": "prometheus", "prometheus": {"url": "http://prometheus.internal:9090",
                                                                    **QUERIES}})
    assert main(["generate", "-f", str(spec), "-t", "staging", "-o", str(tmp_path / "out")]) == 0
    values = (tmp_path / "out" / "group_vars" / "all" / "rollwright.yml").read_text()
    assert f"error_ratio: !unsafe '{QUERIES['error_ratio']}'" in values
    site = yaml.safe_load((tmp_path / "out" / "site.yml").read_text())
    guard = next(task for play in site for task in play.get("tasks", []) if task.get("name", "").startswith(
        "Canary analysis"))["vars"]
    assert guard["canary_guard_source"] == "prometheus"
    assert guard["canary_guard_prometheus"] == "{{ rollwright_metrics.prometheus }}"
    assert "healthcheck_report.current" in guard["canary_guard_baseline_version"]
    capsys.readouterr()
    assert main(["plan", "-f", str(spec), "-t", "staging"]) == 0
    plan = capsys.readouterr().out
    assert "a 10 s analysis of Prometheus at http://prometheus.internal:9090" in plan
    assert "their p95 response time is above 2.0x the baseline's or above 300 ms" in plan
