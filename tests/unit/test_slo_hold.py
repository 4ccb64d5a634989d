"""The SLO hold after a rollout (rollout.hold): its baseline window and verdict (roles/canary_guard's slo_hold and
module_utils), what site.yml runs for each strategy, the plan's step and the progress line. The lab runs it for real
(tests/lab/test_strategies.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from role_files import load_role_file
from test_load_balancer_kinds import COMMAND_LB, _project, _spec, _tasks

from rollwright.render.plan import build_plan
from rollwright.render.playbooks import (
    HOLD_END_PLAY,
    HOLD_FAIL_TASK,
    HOLD_PLAY,
    HOLD_START_PLAY,
    HOLD_TASK,
    ROLLOUT_PLAY,
    SWITCH_PLAY,
)
from rollwright.run.progress import Progress
from rollwright.run.records import Record, markdown, now
from rollwright.spec.loader import SpecError, load_spec

LB = {"load_balancer": {"backend": "app"}}
HOLD = {"hold": {"duration_s": 8, "max_error_rate": 0.05}}
LIMITS = {"min_requests": 20, "max_error_rate": 0.01, "max_error_ratio": 2.0, "max_latency_ratio": 2.0,
          "max_latency_ms": 0}


def _counters(**servers: tuple[int, int, int]) -> dict[str, dict[str, int]]:
    """server -> (2xx, 5xx, rtime ms) as a snapshot keeps them."""
    return {name: {"hrsp_2xx": ok, "hrsp_5xx": bad, "wretr": 0, "rtime": ms} for name, (ok, bad, ms) in servers.items()}


def test_the_baseline_is_the_traffic_between_the_deploys_start_and_its_first_switch() -> None:
    hold = load_role_file("canary_guard/library/slo_hold.py")
    start = {"time": 100.0, "servers": _counters(app1=(1000, 5, 4), app2=(1000, 5, 4))}
    switch = {"time": 112.5, "servers": _counters(app1=(1150, 6, 5), app2=(1140, 5, 3))}
    baseline = hold.baseline_window([start, switch], start, 20)
    assert baseline == {"requests": 291, "errors": 1, "error_rate": 0.0034, "avg_ms": 4.0,
                        "source": "before the deploy", "seconds": 12.5}


def test_a_quiet_window_before_the_deploy_falls_back_to_haproxys_counters_since_it_started() -> None:
    hold = load_role_file("canary_guard/library/slo_hold.py")
    start = {"time": 100.0, "servers": _counters(app1=(1000, 10, 4))}
    switch = {"time": 103.0, "servers": _counters(app1=(1005, 10, 4))}
    assert hold.baseline_window([start, switch], start, 20) == {
        "requests": 1015, "errors": 10, "error_rate": 0.0099, "avg_ms": 4.0, "source": "cumulative", "seconds": 0}
    hold_start = {"time": 200.0, "servers": _counters(app1=(50, 0, 2))}  # no snapshot before the switch at all
    assert hold.baseline_window([], hold_start, 20)["requests"] == 50


def test_the_release_is_judged_against_the_baseline_and_named_in_the_reasons() -> None:
    judge = load_role_file("canary_guard/module_utils/slo_judge.py").judge
    release = {"requests": 212, "errors": 42, "error_rate": 0.1981, "avg_ms": 3.0}
    baseline = {"requests": 960, "errors": 1, "error_rate": 0.001, "avg_ms": 2.0}
    assert judge(release, baseline, LIMITS, subject="release") == [
        "release error rate 19.81% (42/212) is above the limit 1.00%",
        "release error rate 19.81% is above 2.0x the baseline's 0.10%"]
    assert judge({**release, "errors": 0, "error_rate": 0.0}, baseline, LIMITS, subject="release") == []
    assert judge({**release, "requests": 3}, baseline, LIMITS, subject="release") == [
        "the release answered 3 requests in the window, fewer than 20 needed to judge it"]


def test_canary_guard_and_the_hold_share_the_haproxy_reading_and_the_judge() -> None:
    guard = load_role_file("canary_guard/library/canary_guard.py")
    hold = load_role_file("canary_guard/library/slo_hold.py")
    assert guard.window is hold.window and guard.judge is hold.judge


def _plays(tmp_path: Path, rollout: dict[str, Any]) -> list[str]:
    return [play["name"] for play in _project(tmp_path, rollout)["site.yml"]]


@pytest.mark.parametrize("strategy", ["rolling", "direct", "canary"])
def test_the_hold_follows_the_rollout_and_its_baseline_ends_right_before_it(tmp_path: Path, strategy: str) -> None:
    names = _plays(tmp_path, {"strategy": strategy, **LB, **HOLD})
    rollout = next(i for i, name in enumerate(names) if name.startswith(ROLLOUT_PLAY))
    assert names.index(HOLD_START_PLAY) < names.index("Stage the release on every app host at once (no traffic "
                                                      "impact)")
    assert names[rollout - 1] == HOLD_END_PLAY and names[rollout + 1] == HOLD_PLAY


def test_blue_green_holds_after_the_switch_and_its_baseline_ends_right_before_it(tmp_path: Path) -> None:
    names = _plays(tmp_path, {"strategy": "blue_green", **LB, **HOLD})
    switch = names.index(SWITCH_PLAY)
    assert names[switch - 1] == HOLD_END_PLAY and names[switch + 1] == HOLD_PLAY
    assert names[switch - 2].startswith(ROLLOUT_PLAY)


def test_the_hold_judges_the_updated_hosts_once_and_stops_every_one_on_a_breach(tmp_path: Path) -> None:
    project = _project(tmp_path, {**LB, **HOLD})
    play = next(play for play in project["site.yml"] if play["name"] == HOLD_PLAY)
    assert play["hosts"] == "app" and play["tags"] == ["hold", "health"]  # --no-health-check skips it too
    judge, stop = play["tasks"]
    assert judge["name"] == HOLD_TASK and judge["ansible.builtin.include_role"] == {"name": "canary_guard",
                                                                                   "tasks_from": "hold"}
    assert judge["when"].startswith("inventory_hostname == ansible_play_batch[0] and (")
    assert "rollwright_host_stale" in judge["when"] and "rollwright_no_switch" in judge["when"]
    assert judge["vars"]["canary_guard_hold_servers"] == "{{ ansible_play_hosts_all }}"
    assert judge["vars"]["canary_guard_max_error_rate"] == "{{ rollwright_hold.max_error_rate }}"
    assert stop["name"] == HOLD_FAIL_TASK and "when" in stop and "ansible.builtin.fail" in stop
    values = project["group_vars/all/rollwright.yml"]["rollwright_hold"]
    assert values["duration_s"] == 8 and values["max_error_rate"] == 0.05 and values["min_requests"] == 20


def test_without_a_hold_nothing_of_it_is_rendered(tmp_path: Path) -> None:
    project = _project(tmp_path, LB)
    assert not [t for t in _tasks(project["site.yml"]) if "hold" in str(t.get("ansible.builtin.include_role"))]
    assert "rollwright_hold" not in project["group_vars/all/rollwright.yml"]


@pytest.mark.parametrize("load_balancer", [None, {"kind": "none"}, COMMAND_LB])
def test_a_hold_needs_haproxy(tmp_path: Path, load_balancer: dict[str, Any] | None) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(_spec(tmp_path, {**HOLD, **({"load_balancer": load_balancer} if load_balancer else {})}))
    assert "'hold' needs 'load_balancer' of kind haproxy" in str(error.value)


def test_the_plan_shows_the_hold_with_its_limits(tmp_path: Path) -> None:
    loaded = load_spec(_spec(tmp_path, {"strategy": "blue_green", **LB, **HOLD}))
    inventory = {"app": ["app1", "app2"], "blue": ["app1"], "green": ["app2"], "lb": ["lb1"]}
    steps = build_plan(loaded.spec, [], inventory, {})
    assert [step.phase for step in steps][-2:] == ["switch", "hold"]
    hold = steps[-1]
    assert hold.hosts == ["lb1"] and hold.title.startswith("SLO hold: 8 s of the new release's traffic on lb's")
    assert "switch the traffic back if the new hosts' 5xx share is above 5.00%" in hold.title


def test_the_verdict_is_said_at_once_and_kept_for_the_record() -> None:
    lines: list[str] = []
    progress = Progress(lines.append)
    res = {"passed": False, "duration_s": 8, "reasons": ["release error rate 19.81% (42/212) is above the limit 1.00%"],
           "release": {"servers": ["app1", "app2"], "requests": 212, "errors": 42, "error_rate": 0.1981, "avg_ms": 3.0},
           "baseline": {"requests": 960, "errors": 1, "error_rate": 0.001, "avg_ms": 2.0, "source": "before the deploy",
                        "seconds": 12.5}}
    progress({"event": "runner_on_ok", "event_data": {"task_action": "slo_hold", "host": "app1", "task": HOLD_TASK,
                                                      "res": res}})
    assert lines == ["    hold 8 s (app1, app2): errors 19.81% (42/212) vs baseline 0.10% (1/960, before the deploy); "
                     "3.0 ms vs 2.0 ms: FAILED: release error rate 19.81% (42/212) is above the limit 1.00%"]
    assert progress.hold["release"]["errors"] == 42 and progress.hold["baseline"]["seconds"] == 12.5
    skipped = Progress(lines.append)
    skipped({"event": "runner_on_ok", "event_data": {"task_action": "slo_hold", "res": {"skipped": True,
                                                                                         "passed": True}}})
    assert skipped.hold == {} and len(lines) == 1


STAT = "cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n"
MEMINFO = "MemTotal:       1000000 kB\nMemFree:          50000 kB\nMemAvailable:   {available} kB\n"


def test_host_triggers_read_proc_and_judge_the_level_held_the_whole_hold() -> None:
    load = load_role_file("canary_guard/module_utils/host_load.py")
    before = load.cpu_times(STAT.format(busy=1000, idle=9000))
    after = load.cpu_times("cpu  1900 0 0 9000 100 0 0 0 0 0\n")  # 900 busy, 100 iowait (idle) of 1000
    assert load.cpu_percent(before, after) == 90.0
    assert load.memory_percent(MEMINFO.format(available=150000)) == 85.0
    cpu = load.summary([95.0, 97.5, 93.0])
    assert cpu == {"lowest": 93.0, "highest": 97.5, "average": 95.2, "samples": 3}
    limits = {"max_cpu_percent": 90, "max_memory_percent": 0}
    assert load.host_reasons("app1", {"cpu_percent": cpu, "memory_percent": load.summary([99.0])}, limits) == [
        "app1: CPU use stayed above 90% for the whole hold (lowest 93.0%, average 95.2% over 3 samples)"]
    spiky = load.summary([99.0, 40.0, 99.0])  # a spike is not sustained
    assert load.host_reasons("app1", {"cpu_percent": spiky}, limits) == []


def test_host_triggers_sample_every_host_at_once_before_the_verdict(tmp_path: Path) -> None:
    project = _project(tmp_path, {**LB, "hold": {"duration_s": 8, "max_cpu_percent": 90}})
    play = next(play for play in project["site.yml"] if play["name"] == HOLD_PLAY)
    start, sample, judge, _ = play["tasks"]
    assert start["vars"]["canary_guard_hold_action"] == "start" and start["when"].startswith(
        "inventory_hostname == ansible_play_batch[0] and (")
    assert sample["vars"]["canary_guard_hold_action"] == "sample" and "inventory_hostname" not in sample["when"]
    assert judge["vars"]["canary_guard_max_cpu_percent"] == "{{ rollwright_hold.max_cpu_percent }}"


def test_the_record_keeps_the_hold_with_its_numbers() -> None:
    record = Record("hello", "lab", "deploy", "2.0.0", "a" * 64, "rolling [1]", now())
    record.hold = {"passed": True, "duration_s": 8, "reasons": [], "hosts": {},
                   "release": {"servers": ["app1"], "requests": 400, "errors": 0, "error_rate": 0.0, "avg_ms": 2.0},
                   "baseline": {"requests": 900, "errors": 0, "error_rate": 0.0, "avg_ms": 1.5,
                                "source": "cumulative", "seconds": 0}}
    text = markdown(record)
    assert "## SLO hold\n\n- hold 8 s (app1): errors 0.00% (0/400) vs baseline 0.00% (0/900, cumulative); " \
           "2.0 ms vs 1.5 ms: passed" in text
