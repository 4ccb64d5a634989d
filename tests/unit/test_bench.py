"""The benchmark's floor: the sum over batches of the slowest host's restart + time-to-healthy."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench.py"


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("rollwright_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


RESTART, HEALTH = "roles/service/tasks/restart.yml", "roles/healthcheck/tasks/main.yml"


def ok(batch: str, host: str, path: str, duration: float) -> dict[str, Any]:
    return {"event": "runner_on_ok",
            "event_data": {"play_uuid": batch, "host": host, "task_path": f"/p/{path}:3", "duration": duration}}


def test_floor_sums_the_slowest_host_of_each_batch(bench: Any) -> None:
    events = [
        ok("b1", "app1", RESTART, 0.5), ok("b1", "app1", HEALTH, 2.0),
        ok("b1", "app2", RESTART, 0.4), ok("b1", "app2", HEALTH, 3.0),
        ok("b2", "app3", RESTART, 1.0), ok("b2", "app3", HEALTH, 1.5),
        # not part of the floor: the include that wraps the restart, another role's task, a drain
        ok("b1", "app1", "site.yml", 9.0), ok("b2", "app3", "roles/release/tasks/main.yml", 9.0),
        ok("b2", "app3", "roles/lb_haproxy/tasks/main.yml", 9.0),
    ]
    assert bench.restart_floor(events) == pytest.approx(3.4 + 2.5)


def test_no_restart_has_no_floor(bench: Any) -> None:
    events = [ok("b1", "app1", "roles/release/tasks/main.yml", 1.0), {"event": "playbook_on_stats"},
              {"event": "runner_on_failed", "event_data": {"play_uuid": "b1", "host": "app1",
                                                           "task_path": "/p/roles/service/tasks/restart.yml:2"}}]
    assert bench.restart_floor(events) is None
