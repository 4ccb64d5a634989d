"""The sample app (examples/hello) deployed on a lab: its builds and a deploy spec per version.

Shared by the lab tests, the deploy benchmark and `make demo`, so all three deploy the same thing.
The spec's DATABASE_URL is `{{ database_url }}`, which the lab inventory defines as a lookup of the
0600 password file, so the password is never written into a spec, a generated project or an argument.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from rollwright.render.yamlout import dump_yaml

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "examples" / "hello" / "build.py"
DATABASE_URL = "{{ database_url }}"  # the lab inventory defines it (a lookup of the 0600 password file)


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hello_build", BUILD_SCRIPT)
    assert spec and spec.loader, BUILD_SCRIPT
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(version: str, out_dir: Path, *, broken: bool = False, broken_on: list[str] | None = None,
          error_rate: float = 0.0, delay_ms: int = 0, fault: str = "",
          broken_worker: bool | list[str] = False, errors_after_s: int = 0) -> tuple[Path, str]:
    """Build hello-<version>.tar.gz (byte-reproducible) into out_dir; returns (path, sha256).
    fault: "crash" (the app exits at start) or "hang" (/health never answers); broken_worker: worker.py exits
    at start (a list: only on these hosts); errors_after_s: error_rate's errors start that long after start."""
    path, digest = _build_module().build(version, out_dir, broken_on=broken_on, broken=broken,
                                         error_rate=error_rate, delay_ms=delay_ms, fault=fault,
                                         broken_worker=broken_worker, errors_after_s=errors_after_s)
    return Path(path), str(digest)


def write_spec(
    folder: Path,
    inventory: Path,
    artifact: Path,
    sha256: str,
    version: str,
    *,
    batches: list[int | str] | None = None,
    keep: int = 5,
    health_timeout_s: int = 10,
    name: str | None = None,
    production: bool = False,
    smoke: list[dict[str, Any]] | None = None,
    rollout: dict[str, Any] | None = None,
    database: dict[str, Any] | None = None,
    service: dict[str, Any] | None = None,
    processes: dict[str, Any] | None = None,
) -> Path:
    """A deploy spec for the sample app on a lab inventory (target `lab`), next to the artifact's dist/."""
    spec: dict[str, Any] = {
        "app": "hello",
        "artifact": {"path": str(artifact.resolve().relative_to(folder.resolve())), "version": version,
                     "sha256": sha256},
        "release": {"root": "/srv/hello", "keep": keep, "shared": ["log"]},
        "service": {"exec": "/usr/bin/python3 app.py --port 8080", "user": "hello",
                    "env": {"DATABASE_URL": DATABASE_URL, "STARTUP_DELAY_S": "1"}},
        "health": {"path": "/health", "port": 8080, "status": 200, "timeout_s": health_timeout_s, "interval_s": 1},
        "rollout": {"strategy": "rolling", "batches": batches or [1, "50%", "100%"], "max_fail_percentage": 0,
                    "load_balancer": {"hosts": "lb", "backend": "app"}},
        "targets": {"lab": {"inventory": str(inventory), "production": production}},
    }
    spec["rollout"].update(rollout or {})  # e.g. a strategy and its settings
    spec["service"].update(service or {})  # e.g. reload_signal
    if database:
        spec["database"] = database
    if smoke:
        spec["smoke"] = smoke
    if processes:
        spec["processes"] = processes
    path = folder / (name or f"hello-{version}.yml")
    path.write_bytes(dump_yaml(spec, f"Sample app {version} on the lab (written by rollwright.lab.sample)."))
    return path


def fleet_versions(status_json: str) -> dict[str, str]:
    """host -> current release, from `rollwright status --json` output."""
    return {host["name"]: host["current"] for host in json.loads(status_json)}
