"""What check mode says a run would change, per host, read from its events (drift, `deploy --check`, and the
already-deployed check)."""

from __future__ import annotations

from typing import Any

from rollwright.run.engine import Event


def _paths(res: dict[str, Any]) -> list[str]:
    """The files a would-be change touches, from its diff headers or its dest/path."""
    diffs = res.get("diff") or []
    diffs = diffs if isinstance(diffs, list) else [diffs]
    found = [str(d.get("before_header") or d.get("after_header")) for d in diffs
             if isinstance(d, dict) and (d.get("before_header") or d.get("after_header"))]
    return found or [str(res[key]) for key in ("dest", "path") if res.get(key)][:1]


class WouldChange:
    """An event handler that keeps, per host, each task check mode says would change (and its files)."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def __call__(self, event: Event) -> None:
        data = event.get("event_data") or {}
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if event.get("event") in ("runner_on_ok", "runner_item_on_ok") and res.get("changed"):
            where = ", ".join(_paths(res))
            self.found.setdefault(str(data.get("host")), []).append(
                f"{data.get('task')}{': ' + where if where else ''}")
