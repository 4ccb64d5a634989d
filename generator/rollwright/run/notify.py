"""Webhook notifications: a JSON message to the target's webhook at start, success, failure and rollback.

A notification never decides a deploy: a receiver that is down or slow costs a warning, at most
TIMEOUT_S seconds. The message carries the record's public fields only (no env values, no output).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

from rollwright.run.records import Record, now

TIMEOUT_S = 5.0
FIELDS = ("id", "app", "target", "action", "version", "sha256", "status", "verified", "user", "started_at",
          "finished_at", "rolled_back_by_gate", "rolled_back_by_runner")


def notify(url: str | None, event: str, record: Record, warn: Callable[[str], None]) -> None:
    """POST {event, at, deploy fields} to url (nothing when the target has no webhook)."""
    if not url:
        return
    body = json.dumps({"event": event, "at": now(), **{key: getattr(record, key) for key in FIELDS}}).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "rollwright"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        warn(f"warning: webhook {event} notification failed: {exc}")
