"""What the healthcheck role's modules ask a host: one GET of a URL, and a systemd unit's properties."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request

BODY_READ = 64 * 1024


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
