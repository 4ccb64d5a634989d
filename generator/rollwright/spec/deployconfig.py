"""The deployment-config JSON format (ordered command groups plus a health check), as a spec.

Such a file loads unchanged: its groups keep their fields, `health_check` becomes the spec's
site health check, and the app is named after the file's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from rollwright.spec.model import CommandGroup, Spec, Strict, Url


class HealthCheck(Strict):
    """`health_check` as the deployment-config format writes it."""

    url: Url = Field(examples=["https://api.example.com/health"], description="The site's health URL, asked "
                          "from the control node after the deploy.")
    expected_status: int = Field(200, ge=100, le=599, description="The HTTP status a healthy answer has (default "
                                                                  "200).")
    timeout_seconds: int = Field(30, ge=1, le=86400, description="Seconds the check may take before the deploy "
                                                                 "counts as failed (default 30).")


class DeployConfig(Strict):
    """The whole deployment-config document: command groups, a health check, or both (rollwright names the app
    after the file's folder)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # else it is a spec without `app`

    groups: list[CommandGroup] = Field([], description=Spec.model_fields["groups"].description)
    health_check: HealthCheck | None = Field(None, description="The site health check after the deploy.")


def looks_like(tree: Any) -> bool:
    """A deployment config has groups or a health_check and none of the spec's own sections."""
    return "app" not in tree and ("groups" in tree or "health_check" in tree)


def to_spec_data(config: DeployConfig, path: Path) -> dict[str, Any]:
    """The spec (as plain data, validated again by the Spec model) that the config describes."""
    data: dict[str, Any] = {
        "app": app_name_for(path),
        "groups": [group.model_dump(exclude_defaults=True) for group in config.groups],
    }
    if config.health_check:
        check = config.health_check
        data["health"] = {
            "url": check.url,
            "status": check.expected_status,
            "timeout_s": check.timeout_seconds,
        }
    return data


def app_name_for(path: Path) -> str:
    """A valid app name from the folder holding the config (`My API/` -> `my-api`)."""
    return safe_name(path.resolve().parent.name)


def safe_name(text: str) -> str:
    """`text` as a name the spec accepts: lowercase letters, digits, '-' and '_', starting with a letter."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    if not name or not name[0].isalpha():
        name = f"app-{name}" if name else "app"
    return name[:63].rstrip("-_")
