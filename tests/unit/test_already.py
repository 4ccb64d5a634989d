"""When a deploy may end at the already-deployed check, and what counts as a host already running the release
(rollwright.run.already): pure logic; the lab suite runs current.yml itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollwright.run.already import _runs, may_be_current
from rollwright.run.status import HostState
from rollwright.spec.loader import load_spec

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello" / "rollwright.yml"
PLAIN = {"limited": False, "groups_chosen": False, "direct": False, "no_switch": False}


def _spec(tmp_path: Path, edit: str = "") -> Any:
    text = HELLO.read_text()
    path = tmp_path / "rollwright.yml"
    path.write_text(text + edit)
    return load_spec(path).spec


def _newest(spec: Any, **changes: str) -> dict[str, str]:
    """The history row of a successful deploy of the spec's artifact."""
    return {"action": "deploy", "status": "succeeded", "version": spec.artifact.version,
            "sha256": spec.artifact.sha256, **changes}


def test_a_whole_fleet_redeploy_of_the_last_deployed_artifact_may_end_at_the_check() -> None:
    spec = load_spec(HELLO).spec
    assert may_be_current(spec, _newest(spec), **PLAIN) is True


@pytest.mark.parametrize("changes", [{"version": "0.9.0"}, {"sha256": "0" * 64}, {"status": "failed"},
                                     {"action": "rollback"}], ids=["other-version", "other-sha", "failed", "rollback"])
def test_a_release_not_deployed_last_goes_straight_to_the_normal_path(changes: dict[str, str]) -> None:
    spec = load_spec(HELLO).spec
    assert may_be_current(spec, _newest(spec, **changes), **PLAIN) is False
    assert may_be_current(spec, None, **PLAIN) is False  # nothing in this control node's history


@pytest.mark.parametrize("option", ["limited", "groups_chosen", "direct", "no_switch"])
def test_a_narrowed_or_forced_deploy_takes_the_normal_path(option: str) -> None:
    spec = load_spec(HELLO).spec
    assert may_be_current(spec, _newest(spec), **{**PLAIN, option: True}) is False


@pytest.mark.parametrize("hook", ["before_deploy", "after_stage", "after_deploy"])
def test_hooks_take_the_normal_path(tmp_path: Path, hook: str) -> None:
    spec: Any = _spec(tmp_path, f"hooks:\n  {hook}:\n    - echo ran\n")
    assert may_be_current(spec, _newest(spec), **PLAIN) is False


def _state(**changes: object) -> HostState:
    settled = {"name": "app1", "current": "2.0.0", "previous": "1.0.0", "healthy": True, "health_status": 200,
               "running": "2.0.0", "answers": "2.0.0", "lb": {"lb1": "UP"}}
    return HostState(**{**settled, **changes})  # type: ignore[arg-type]


def test_a_settled_host_on_the_release_runs_it() -> None:
    assert _runs(_state(), "2.0.0") is True


@pytest.mark.parametrize("changes", [
    {"current": "1.0.0", "running": "1.0.0", "answers": "1.0.0"},  # another release
    {"running": "1.0.0"},  # current moved ahead of the process (a killed deploy)
    {"running": ""},  # no process to look at: unknown is not "runs it"
    {"active": False},
    {"healthy": False, "health_status": 500},
    {"answers": "1.0.0"},
    {"lb": {"lb1": "MAINT"}},
    {"lb": {"lb1": "DOWN"}},
    {"reachable": False},
], ids=["other-release", "process-behind", "no-process", "inactive", "unhealthy", "answers-other", "drained",
        "down-in-lb", "unreachable"])
def test_anything_else_is_not_already_deployed(changes: dict[str, object]) -> None:
    assert _runs(_state(**changes), "2.0.0") is False
