"""What the healthcheck role's modules ask a host: one GET of a URL, and a systemd unit's properties."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

BODY_READ = 64 * 1024
JOURNAL_LINES = 20  # in a failed gate's result; its message has the last few


def ask(url: str, timeout: float) -> tuple[int | None, str]:
    """(status, body) of one GET, or (None, why) when there was no answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read(BODY_READ).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(BODY_READ).decode("utf-8", "replace")
    except (OSError, ValueError) as error:  # refused, reset, timed out, no such host
        reason = getattr(error, "reason", error)
        return None, f"no answer ({reason})"


def unit_properties(unit: str, names: list[str]) -> dict[str, str]:
    """`systemctl show` properties of a unit (absent ones are missing); {} when systemctl cannot tell."""
    argv = ["systemctl", "show"] + [arg for name in names for arg in ("-p", name)] + ["--", unit]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def journal_tail(unit: str) -> list[str]:
    """The unit's last journal lines: what its process said and what systemd said about it."""
    proc = subprocess.run(["journalctl", "--no-pager", "-q", "-o", "json", "-n", str(JOURNAL_LINES), "-u", unit],
                          capture_output=True, text=True, check=False)
    lines = []
    for line in proc.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("MESSAGE")
        if isinstance(message, list):  # journald gives non-UTF-8 messages as a list of bytes
            message = bytes(message).decode("utf-8", "replace")
        said_by_app = entry.get("_SYSTEMD_UNIT") == (unit if "." in unit else f"{unit}.service")
        lines.append(("" if said_by_app else "systemd: ") + str(message or "")[:300])
    return lines or [line[:300] for line in proc.stderr.splitlines()[-JOURNAL_LINES:]]


def app_said(journal: list[str]) -> list[str]:
    """The journal lines of the app itself (the ones that tell why it crashed), else all of them."""
    own = [line for line in journal if not line.startswith("systemd: ")]
    return own or journal
