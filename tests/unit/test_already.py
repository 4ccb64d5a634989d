"""When a deploy may end at the already-deployed check, and what counts as a host already running the release
(rollwright.run.already): pure logic; the lab suite runs current.yml itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollwright.run.already import _runs, may_be_current
from rollwright.run.status import HostState
from rollwright.spec.loader import load_spec

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello" / "rollwright.yml"
PLAIN = {"limited": False, "groups_chosen": False, "direct": False, "no_switch": False}


def _spec(tmp_path: Path, edit: str = "") -> object:
    text = HELLO.read_text()
    path = tmp_path / "rollwright.yml"
    path.write_text(text + edit)
    return load_spec(path).spec


def test_a_plain_whole_fleet_deploy_of_the_example_may_end_at_the_check() -> None:
    assert may_be_current(load_spec(HELLO).spec, **PLAIN) is True


@pytest.mark.parametrize("option", ["limited", "groups_chosen", "direct", "no_switch"])
def test_a_narrowed_or_forced_deploy_takes_the_normal_path(option: str) -> None:
    assert may_be_current(load_spec(HELLO).spec, **{**PLAIN, option: True}) is False


def test_hooks_take_the_normal_path(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "hooks:\n  after_deploy:\n    - echo deployed\n")
    assert may_be_current(spec, **PLAIN) is False  # type: ignore[arg-type]


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
