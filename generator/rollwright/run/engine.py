"""One playbook run through ansible-runner, with its events handed to a callback as they happen.

ansible-runner keeps every run's events and stdout under `<run_root>/artifacts/<ident>/` (the newest
ARTIFACTS_KEPT runs), which is where to look when the short account on the terminal is not enough.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from rollwright.targetenv import check_vault_password, runner_env

Event = dict[str, Any]
ARTIFACTS_KEPT = 50
SETTINGS = {"pexpect_timeout": 0.5}  # how often ansible-runner asks `cancel` while a task runs silently
# ARA's name and labels for the playbook runs of the deploy or rollback under way (see `labelled`)
_ARA_VARS: ContextVar[dict[str, Any] | None] = ContextVar("ara_vars", default=None)


@dataclass(frozen=True)
class PlaybookRun:
    """How a playbook run ended: runner status, exit code, the final stats and where its artifacts are."""

    playbook: str
    status: str  # successful, failed, timeout, canceled
    rc: int
    seconds: float
    artifact_dir: Path
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    def count(self, kind: str) -> dict[str, int]:
        """Per-host counts from the stats: kind is ok, changed, failures, dark, rescued, skipped."""
        return dict(self.stats.get(kind) or {})

    def error_tail(self, lines: int = 12) -> list[str]:
        """The end of the run's stdout from its last error: for failures no task event explains
        (a playbook that does not parse, an undefined variable at include time, a crash)."""
        path = self.artifact_dir / "stdout"
        if not path.is_file():
            return []
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        starts = [i for i, line in enumerate(text) if line.startswith(("[ERROR]", "ERROR!", "fatal:"))]
        tail = text[starts[-1]:] if starts else text[-lines:]
        return [line for line in tail[:lines] if line.strip()]

    @property
    def custom_stats(self) -> dict[str, Any]:
        """What the playbook published with ansible.builtin.set_stats."""
        return dict(self.stats.get("artifact_data") or {})


def run_playbook(
    project: Path,
    playbook: str,
    run_root: Path,
    on_event: Callable[[Event], None],
    *,
    limit: str | None = None,
    extravars: dict[str, Any] | None = None,
    skip_tags: list[str] | None = None,
    tags: list[str] | None = None,
    cancel: Callable[[], bool] = lambda: False,
    check: bool = False,
    forks: int | None = None,
) -> PlaybookRun:
    """Run `playbook` of a generated project (host key checking on); `cancel()` returning True stops it.
    `forks` overrides the target's (ansible.cfg) for this run."""
    cmdline = ["--check", "--diff"] if check else []
    extravars = {**(_ARA_VARS.get() or {}), **(extravars or {})}
    if extravars:  # not ansible-runner's extravars: it passes them as JSON, which Ansible trusts as templates
        cmdline += ["-e", extra_vars_as_data(extravars)]
    return _run(project, run_root, on_event, Path(playbook).stem, playbook, cancel=cancel,
                playbook=playbook, project_dir=str(project), limit=limit or None,
                skip_tags=",".join(skip_tags) if skip_tags else None, tags=",".join(tags) if tags else None,
                cmdline=shlex.join(cmdline) or None, forks=forks)


@contextmanager
def labelled(name: str, labels: dict[str, str]) -> Iterator[None]:
    """Every playbook run inside carries ARA's `ara_playbook_name` and `ara_playbook_labels` (`key:value`, the form
    of ARA's own argument labels; empty values left out) as extra vars, so ARA, when its callback is on, files
    each run of one deploy under its id, target and action. Without ARA nothing reads them."""
    token = _ARA_VARS.set({"ara_playbook_name": name,
                           "ara_playbook_labels": [f"{key}:{value}" for key, value in labels.items() if value]})
    try:
        yield
    finally:
        _ARA_VARS.reset(token)


def extra_vars_as_data(value: Any) -> str:
    """`value` as an inline YAML `-e` argument with every string `!unsafe`: a deploy message, a reason or
    a user name from the CLI or the environment is data, never a template Ansible evaluates."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml_quoted(str(k))}: {extra_vars_as_data(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(extra_vars_as_data(item) for item in value) + "]"
    if isinstance(value, str):  # `!unsafe` only where a template could be: ansible-core reads `!unsafe "1"` as 1
        return f"!unsafe {_yaml_quoted(value)}" if "{" in value else _yaml_quoted(value)
    return json.dumps(value)  # numbers, booleans, null: the same in YAML


def _yaml_quoted(text: str) -> str:
    """A double-quoted YAML scalar in plain ASCII (YAML refuses some characters raw, e.g. C1 controls)."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def run_module(
    project: Path,
    module: str,
    module_args: str,
    run_root: Path,
    on_event: Callable[[Event], None],
    *,
    become: bool = False,
    become_user: str = "root",
    limit: str | None = None,
) -> PlaybookRun:
    """One ad-hoc module run (`ansible all -m MODULE -a ARGS`) against a generated project's inventory, with
    its ansible.cfg and host key checking on; `become` decides privilege escalation whatever the cfg says."""
    become_env = {"ANSIBLE_BECOME": str(become), "ANSIBLE_BECOME_USER": become_user}
    return _run(project, run_root, on_event, module.rsplit(".", 1)[-1], f"{module} {module_args}".strip(),
                env=become_env, host_pattern="all", module=module, module_args=module_args or None,
                limit=limit or None, cmdline="--become" if become else None)


def run_ident(label: str) -> str:
    """A sortable, unique name for one run's artifacts: start time, a tie-breaker, what ran."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{time.monotonic_ns() % 10**6:06d}-{label}"


def ansible_env(project: Path, run_root: Path) -> dict[str, str]:
    """The environment every Ansible process of a generated project runs with: its ansible.cfg, host key
    checking on, no colour, this Python's tools first on PATH, and the vault password when the inventory
    holds secrets (refused at once when it holds secrets and there is none)."""
    check_vault_password(project / "inventory")
    return {
        "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]),
        **runner_env(run_root),
    }


def _run(project: Path, run_root: Path, on_event: Callable[[Event], None], label: str, what: str, *,
         cancel: Callable[[], bool] = lambda: False, env: dict[str, str] | None = None,
         **how: Any) -> PlaybookRun:
    """ansible-runner with the project's ansible.cfg and inventory, the vault password if any, quiet, its
    artifacts rotated and its saved environment reduced to names."""
    run_root.mkdir(parents=True, exist_ok=True)
    # ansible-runner ignores `settings=` unless env/settings exists, so the file is the way to set it.
    (run_root / "env").mkdir(exist_ok=True)
    (run_root / "env" / "settings").write_text(json.dumps(SETTINGS), encoding="utf-8")
    ident = run_ident(label)
    stats: dict[str, Any] = {}

    def handle(event: Event) -> bool:
        if event.get("event") == "playbook_on_stats":
            stats.update(event.get("event_data") or {})
        on_event(event)
        return True

    envvars = {**ansible_env(project, run_root), **(env or {})}
    start = time.perf_counter()
    runner = ansible_runner.run(
        private_data_dir=str(run_root),
        inventory=str(project / "inventory"),
        ident=ident,
        envvars=envvars,
        event_handler=handle,
        quiet=True,
        cancel_callback=cancel,  # also keeps ansible-runner from installing its own signal handlers
        suppress_env_files=True,  # env/extravars would otherwise persist and leak into the next run
        rotate_artifacts=ARTIFACTS_KEPT,
        **how,
    )
    artifact_dir = Path(runner.config.artifact_dir)
    _redact_environment(artifact_dir / "command")
    return PlaybookRun(
        playbook=what,
        status=str(runner.status),
        rc=int(runner.rc if runner.rc is not None else 1),
        seconds=time.perf_counter() - start,
        artifact_dir=artifact_dir,
        stats=stats,
    )


def _redact_environment(command_file: Path) -> None:
    """ansible-runner saves the whole process environment with the command; keep only the names.

    The environment is where secrets live on a bastion (vault passwords, tokens, DATABASE_URL), and
    artifacts are kept for weeks.
    """
    if not command_file.is_file():
        return
    saved = json.loads(command_file.read_text(encoding="utf-8"))
    saved["env"] = sorted(saved.get("env") or {})
    command_file.write_text(json.dumps(saved), encoding="utf-8")


class Interrupts:
    """Ctrl-C and SIGTERM during a deploy, counted: the runner decides what each one cancels.

    A deploy stopped half-way must still be repaired, so the first signal only cancels the playbook
    that runs; the repair runs after it, and only a second signal cancels that too.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.count = 0
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._saved = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _handle(self, number: int, frame: object) -> None:
        self.count += 1

    def after(self, count: int) -> Callable[[], bool]:
        """A cancel callback that fires once `count` signals arrived."""
        return lambda: self.count >= count
