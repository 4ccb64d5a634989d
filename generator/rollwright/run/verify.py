"""`rollwright verify`: the generated testinfra suite run against the target's hosts, one line per failure.

pytest runs in a subprocess from the generated project (its `verify/`, `inventory/` and
`ansible.cfg`), one process whose conftest reads every host at once; the JUnit XML it writes says which
check failed on which host, and why, in the assertion's own words.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rollwright.errors import BadInput
from rollwright.run.engine import ansible_env, run_ident

Write = Callable[[str], None]
TIMEOUT_S = 900
HOST_IN_NAME = re.compile(r"^(?P<check>[^\[]+)\[(?:ansible://)?(?P<host>[^\]]+)\]$")


@dataclass(frozen=True)
class Failure:
    host: str
    check: str
    message: str


@dataclass
class Verification:
    """What the suite found: checks passed, failures by host and check, and where its report is."""

    passed: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    report: str = ""
    error: str = ""  # the suite could not run (collection error, pytest crash)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.error and self.passed > 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "passed": self.passed, "failures": [asdict(f) for f in self.failures],
                "seconds": self.seconds, "report": self.report, "error": self.error}


def run_verify(project: Path, runs: Path, colours: tuple[str, list[str]] | None = None) -> Verification:
    """Run the project's verify/ suite. `colours` (blue/green): the group of app hosts that must run the
    release, and the backend servers that must be ready (the live colour's; after `--no-switch`, the other
    colour's)."""
    if not (project / "verify").is_dir() or not any((project / "verify").glob("test_*.py")):
        raise BadInput(f"{project}: the spec gives nothing to verify (no release, load balancer or sql migrations)")
    report = runs / "verify" / f"{run_ident('verify')}.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ansible_env(project, runs)}
    if colours:
        env.update(ROLLWRIGHT_VERIFY_HOSTS=colours[0], ROLLWRIGHT_VERIFY_SERVERS=",".join(colours[1]))
    command = [sys.executable, "-m", "pytest", "verify", "--ansible-inventory=inventory", f"--junitxml={report}",
               "-q", "--color=no", "-p", "no:xdist"]  # one process: the hosts are read at once by its threads
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        return Verification(seconds=TIMEOUT_S, error=f"the verify suite took longer than {TIMEOUT_S}s")
    result = _read_report(report) if report.is_file() else Verification()
    result.seconds, result.report = round(time.perf_counter() - start, 1), str(report)
    if proc.returncode not in (0, 1) or (not result.passed and not result.failures):
        tail = [line for line in (proc.stdout + proc.stderr).strip().splitlines() if line.strip()][-5:]
        result.error = f"pytest exit {proc.returncode}: " + " / ".join(tail)
    return result


def _read_report(path: Path) -> Verification:
    result = Verification()
    for case in ET.parse(path).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            continue
        if problem is None:
            result.passed += 1
            continue
        if problem.get("message") == "collection failure":  # the file did not load: nothing was checked
            said = [line for line in (problem.text or "").splitlines() if line.startswith("E ")]
            result.error = f"{case.get('name')}: {' '.join(said[-1].split()[1:]) if said else 'collection failure'}"
            continue
        match = HOST_IN_NAME.match(case.get("name", ""))
        host, check = (match["host"], match["check"]) if match else ("?", case.get("name", "?"))
        result.failures.append(Failure(host, check.removeprefix("test_").replace("_", " "),
                                       _reason(problem.get("message") or problem.text or "")))
    return result


def _reason(message: str) -> str:
    """The assertion's own message: the first line, without pytest's `AssertionError: ` and `assert ...`."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    return first.removeprefix("AssertionError: ")[:300]


def print_verification(write: Write, result: Verification) -> None:
    if result.error:
        write(f"✗ verify could not run: {result.error}")
        return
    if result.ok:
        write(f"verified: {result.passed} checks passed in {result.seconds:.1f}s")
        return
    write(f"✗ verify: {len(result.failures)} failed, {result.passed} passed in {result.seconds:.1f}s:")
    for failure in sorted(result.failures, key=lambda f: (f.host, f.check)):
        write(f"    {failure.host:<12} {failure.check}: {failure.message}")
    write(f"report: {result.report}")
