"""The deploy spec as typed models: one place that says what a valid `rollwright.yml` is.

Validation is strict (unknown keys are errors) because a typo in a deploy spec must never be
silently ignored. The loader maps every error back to a file:line:column.
"""

from __future__ import annotations

import posixpath
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

NAME_RE = r"^[a-z][a-z0-9_-]*$"
ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
PLACEHOLDERS = ("file", "function_name", "service_name")
PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

# A service env value that is exactly `{{ name }}` reads the inventory variable `name` (a vault secret, say);
# any other template is refused: spec values are data, never templates.
ENV_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
TEMPLATE_MARKS = ("{{", "{%", "{#")


def _env_value(value: str | int | bool) -> str | int | bool:
    if isinstance(value, str) and not ENV_REFERENCE.fullmatch(value) and any(m in value for m in TEMPLATE_MARKS):
        raise ValueError("only a whole '{{ variable_name }}' (an inventory or vault variable) may be a template; "
                         "any other value is plain text and must not contain '{{', '{%' or '{#'")
    return value


Name = Annotated[str, Field(pattern=NAME_RE, min_length=1, max_length=63)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_RE)]
Seconds = Annotated[int, Field(ge=1, le=86400)]

MAX_PATH_CHARS = 4096  # PATH_MAX
MAX_PATH_PART_BYTES = 255  # NAME_MAX
# Trees of the operating system: a release or backup there would chown and fill them.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
                "/sys", "/usr", "/tmp", "/var/tmp")
# Folders that hold everybody's things: an app gets a folder of its own below them, never one of them.
SHARED_FOLDERS = ("/", "/home", "/mnt", "/media", "/opt", "/root", "/srv", "/var", "/usr/local", "/var/backups",
                  "/var/cache", "/var/lib", "/var/log", "/var/mail", "/var/opt", "/var/spool", "/var/www")


def _normal_path(value: object) -> str:
    """A path in one normal form (no '.', '//' or trailing '/'); never control characters or over-long.

    For files on the control node (artifact, inventory, gates), which the user keeps wherever they like.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a path (a string), got {value!r}"[:120])
    if not value.strip():
        raise ValueError("expected a path, got an empty string")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a path cannot hold control characters (NUL, newline, tab...)")
    if len(value) > MAX_PATH_CHARS:
        raise ValueError(f"a path of {len(value)} characters (at most {MAX_PATH_CHARS})")
    if any(len(part.encode()) > MAX_PATH_PART_BYTES for part in value.split("/")):
        raise ValueError(f"a path with a name over {MAX_PATH_PART_BYTES} bytes")
    return posixpath.normpath(value).replace("//", "/")


def _unclimbing_path(value: object) -> str:
    """A normal path that never climbs with '..' (a host path, or one that must stay inside its folder)."""
    if isinstance(value, str) and ".." in value.split("/"):
        raise ValueError(f"'{value}' climbs out with '..': write the path without it"[:200])
    return _normal_path(value)


def _host_folder(value: object) -> str:
    """An absolute folder of the app's own on the hosts: not /, a system tree or a folder shared by everyone."""
    path = _unclimbing_path(value)
    if not path.startswith("/"):
        raise ValueError(f"expected an absolute path like /srv/app, got '{path}'")
    if path in SHARED_FOLDERS:
        raise ValueError(f"'{path}' is shared by everything on the host: use a folder of the app's own below it, "
                         f"like {path if path != '/' else '/srv'}/<app>")
    tree = next((t for t in SYSTEM_TREES if path == t or path.startswith(t + "/")), None)
    if tree is not None:
        raise ValueError(f"'{path}' is inside {tree}, which belongs to the operating system: use a folder like "
                         "/srv/<app>")
    return path


def _inside(folder: str) -> BeforeValidator:
    """A relative path that stays inside `folder`."""

    def check(value: object) -> str:
        path = _unclimbing_path(value)
        if path.startswith("/"):
            raise ValueError(f"expected a path relative to {folder}, got the absolute path '{path}'")
        return path

    return BeforeValidator(check)


def _absolute(value: object) -> str:
    path = _unclimbing_path(value)
    if not path.startswith("/"):
        raise ValueError(f"expected an absolute path, got '{path}'")
    return path


def _inventory(value: object) -> str:
    return "" if value == "" else _normal_path(value)  # '' is the built-in local target's: no inventory


def _rule(text: str) -> Any:
    return Field(json_schema_extra={"x-path": text})  # shown in the README's spec reference


AnyPath = Annotated[str, BeforeValidator(_normal_path), _rule("a path on the control node")]
HostFolder = Annotated[str, BeforeValidator(_host_folder), _rule(
    "an absolute folder of the app's own: no `..`, not `/`, a system tree (`/etc`, `/usr`...) or a shared "
    "folder (`/srv`, `/var/lib`...)")]
InRelease = Annotated[str, _inside("the release root"), _rule("relative to the release, no `..`")]
InSpecFolder = Annotated[str, _inside("the spec's folder"), _rule("relative to the spec's folder, no `..`")]
AbsolutePath = Annotated[str, BeforeValidator(_absolute), _rule("an absolute path, no `..`")]
WorkingDir = Annotated[str, BeforeValidator(_unclimbing_path), _rule(  # the loader checks an absolute one
    "relative to `current`, or absolute under `<root>/current`; no `..`")]


class Strict(BaseModel):
    """Base for every spec section: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _batch_size(value: object) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a host count like 1 or a percentage like \"50%\", got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError("a batch needs at least 1 host")
        return value
    match = re.fullmatch(r"(\d{1,3})%", value.strip())
    if not match or not 1 <= int(match.group(1)) <= 100:
        raise ValueError(f"expected a host count like 1 or a percentage from 1% to 100%, got {value!r}")
    return f"{int(match.group(1))}%"


BatchSize = Annotated[int | str, BeforeValidator(_batch_size)]


Version = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$", max_length=64)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Artifact(Strict):
    """The release to ship: a tarball on the control node (path) or at a URL, pinned by sha256. Or
    `{from: FILE}`: a JSON file the build writes, holding the tarball's path, version and sha256."""

    version: Version
    sha256: Sha256
    path: AnyPath | None = None
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Artifact:
        if (self.path is None) == (self.url is None):
            raise ValueError("set exactly one of 'path' (a file on the control node) or 'url'")
        return self


class BuildFileRef(Strict):
    """`artifact: {from: FILE}`: the artifact is what the build last wrote into FILE (relative to the spec's
    folder), a JSON object with the tarball's path, version and sha256."""

    from_: Annotated[InSpecFolder, Field(alias="from")]


class BuildInfo(Strict):
    """The file a build writes for `artifact: {from: FILE}`: the tarball it made, pinned, so a new build
    deploys without editing the spec. Its path, like every spec path, stays inside the spec's folder."""

    path: InSpecFolder
    version: Version
    sha256: Sha256


def _artifact_schema(schema: dict[str, Any]) -> None:
    """Editors must accept `artifact: {from: FILE}` too, which the loader resolves before the model sees it."""
    schema["anyOf"].insert(1, BuildFileRef.model_json_schema())


class Release(Strict):
    """Capistrano-style layout: <root>/releases/<version>, <root>/shared, <root>/current."""

    root: HostFolder
    keep: Annotated[int, Field(ge=2, le=100)] = 5
    shared: list[InRelease] = []  # linked from <root>/shared into each release

    @field_validator("shared")
    @classmethod
    def _shared_apart(cls, shared: list[str]) -> list[str]:
        for i, path in enumerate(shared):
            if path in (".", "REVISION"):
                raise ValueError(f"shared '{path}' is the release itself or its REVISION file")
            for other in shared[:i]:
                if path == other or path.startswith(other + "/") or other.startswith(path + "/"):
                    raise ValueError(f"shared paths '{other}' and '{path}' overlap: list each folder once")
        return shared


class Service(Strict):
    """The systemd unit that runs the app from `current`. An env value `"{{ name }}"` reads an inventory or
    vault variable; any other value is plain text."""

    exec: Annotated[str, Field(min_length=1)]
    name: Name | None = None
    user: Name
    group: Name | None = None
    env: dict[EnvName, Annotated[str | int | bool, AfterValidator(_env_value)]] = {}
    working_dir: WorkingDir | None = None
    restart: Literal["always", "on-failure", "on-abnormal", "no"] = "on-failure"
    stop_timeout_s: Seconds = 30


class Health(Strict):
    """How to tell a host (path+port, checked on each host) or a site (url) is healthy; `timeout_s` is a
    deadline for the whole gate."""

    path: Annotated[str, Field(pattern=r"^/")] | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    status: Annotated[int, Field(ge=100, le=599)] = 200
    timeout_s: Seconds = 60
    interval_s: Annotated[int, Field(ge=1, le=600)] = 1

    @model_validator(mode="after")
    def _where(self) -> Health:
        if self.url is None and (self.path is None or self.port is None):
            raise ValueError("set 'path' and 'port' (checked on every host), or 'url'")
        return self


class LoadBalancer(Strict):
    """An external HAProxy whose backend servers are drained through its admin socket."""

    kind: Literal["haproxy"] = "haproxy"
    hosts: Name = "lb"
    backend: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]+$")]
    socket: AbsolutePath = "/run/haproxy/admin.sock"
    drain_timeout_s: Seconds = 30


class Canary(Strict):
    """The canary's steps and its SLO guard: after each step, HAProxy's counters of the canary servers
    against the baseline's over `window_s`; a step that fails them rolls every canary host back."""

    steps: Annotated[list[BatchSize], Field(min_length=1)] = [1, "25%", "50%", "100%"]
    window_s: Annotated[int, Field(ge=5, le=3600)] = 60
    min_requests: Annotated[int, Field(ge=1)] = 20
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_error_ratio: Annotated[float, Field(ge=1)] = 2.0
    max_latency_ratio: Annotated[float, Field(ge=1)] = 2.0
    max_latency_ms: Annotated[int, Field(ge=0)] = 0


class BlueGreen(Strict):
    """Two inventory groups of app hosts behind the same backend; one takes the traffic."""

    blue: Name = "blue"
    green: Name = "green"


STRATEGIES_NEEDING_LB = ("canary", "blue_green")


class Rollout(Strict):
    """How new code reaches the app hosts."""

    strategy: Literal["rolling", "canary", "blue_green", "direct"] = "rolling"
    hosts: Name = "app"
    batches: Annotated[list[BatchSize], Field(min_length=1)] = [1, "50%", "100%"]
    max_fail_percentage: Annotated[int, Field(ge=0, le=100)] = 0
    load_balancer: LoadBalancer | None = None
    canary: Canary | None = None
    blue_green: BlueGreen | None = None

    @model_validator(mode="after")
    def _strategy_settings(self) -> Rollout:
        if self.strategy in STRATEGIES_NEEDING_LB and self.load_balancer is None:
            raise ValueError(f"strategy '{self.strategy}' needs 'load_balancer' (its traffic switch and, "
                             "for a canary, its metrics)")
        for section in ("canary", "blue_green"):
            if getattr(self, section) is not None and self.strategy != section:
                raise ValueError(f"'{section}' settings need strategy '{section}' (it is '{self.strategy}')")
        if self.blue_green and self.blue_green.blue == self.blue_green.green:
            raise ValueError("blue_green needs two different groups for 'blue' and 'green'")
        return self

    @property
    def guard(self) -> Canary:
        """The canary settings (the defaults when the spec names the strategy only)."""
        return self.canary or Canary()

    @property
    def colours(self) -> BlueGreen:
        return self.blue_green or BlueGreen()

    @property
    def steps(self) -> list[int | str]:
        """Ansible's `serial` for the rollout: the canary's steps, everything at once for direct and for the
        idle colour of blue/green (it takes no traffic), else the batches."""
        if self.strategy == "canary":
            return list(self.guard.steps)
        if self.strategy in ("direct", "blue_green"):
            return ["100%"]
        return list(self.batches)


class Backup(Strict):
    """`pg_dump -Fc` before migrations, verified, with retention."""

    enabled: bool = True
    dir: HostFolder
    keep: Annotated[int, Field(ge=1, le=1000)] = 7
    verify: Literal["list", "restore"] = "list"


class Migrations(Strict):
    """Tracked migrations: rollwright's own SQL runner, or another tool's command."""

    tool: Literal["sql", "alembic", "flyway", "django", "command"] = "sql"
    path: InSpecFolder = "migrations"  # the sql tool's files, inside the spec's folder
    table: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")] = "rollwright_schema_history"
    command: str | None = None
    status_command: str | None = None
    allow_out_of_order: bool = False
    acknowledge_destructive: list[str] = []

    @model_validator(mode="after")
    def _command_for_command_tool(self) -> Migrations:
        if self.tool == "command" and not self.command:
            raise ValueError("tool 'command' needs 'command' (the migration command to run)")
        return self


class Database(Strict):
    """The app's database: backed up and migrated once per deploy, before any code switch."""

    engine: Literal["postgresql"] = "postgresql"
    hosts: Name = "db"
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    url_env: EnvName = "DATABASE_URL"
    backup: Backup | None = None
    migrations: Migrations | None = None


class CommandGroup(Strict):
    """An ordered group of shell commands (the deployment-config JSON format, unchanged).

    Order within a group: build_command, test_command, pre_deploy, deploy_command once per
    matching file (sorted), post_deploy. `{file}`, `{function_name}` and `{service_name}` are
    replaced by shell-quoted values.
    """

    name: Name
    order: Annotated[int, Field(ge=0)] = 0
    hosts: str = "localhost"
    file_patterns: list[InSpecFolder] = []  # globs inside the spec's folder
    build_command: str | None = None
    test_command: str | None = None
    pre_deploy: list[str] = []
    deploy_command: str | None = None
    post_deploy: list[str] = []
    required_env_vars: list[EnvName] = []

    @model_validator(mode="after")
    def _file_only_in_deploy(self) -> CommandGroup:
        once = [self.build_command, self.test_command, *self.pre_deploy, *self.post_deploy]
        if any(cmd and "{file}" in cmd for cmd in once):
            raise ValueError("'{file}' can only be used in 'deploy_command' (it runs once per file)")
        if self.deploy_command and "{file}" in self.deploy_command and not self.file_patterns:
            raise ValueError("'deploy_command' uses '{file}' but 'file_patterns' is empty")
        return self


class FreezeWindow(Strict):
    """A change freeze: no deploy to the target between start and end (ISO 8601 date-times)."""

    start: datetime
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindow:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self


class Target(Strict):
    """A named environment (staging, production): an inventory plus how far we may go there."""

    inventory: Annotated[str, BeforeValidator(_inventory), _rule("a path on the control node")]
    after: Name | None = None
    production: bool = False
    read_only: bool = False
    become: bool = False
    become_user: Name = "root"
    forks: Annotated[int, Field(ge=1, le=500)] = 20
    freeze: list[FreezeWindow] = []
    webhook: Annotated[str, Field(pattern=r"^https?://")] | None = None
    gates: list[AnyPath] = []  # result files (review, tests, scan) that must say PASS


class SmokeCheck(Strict):
    """A check of the released site after the rollout, from the control node (through the load balancer,
    as users reach it): a URL that must answer `status` (and contain `contains`), or a command that must
    exit 0. A failure rolls the whole fleet back, like a failed health gate."""

    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    status: Annotated[int, Field(ge=100, le=599)] = 200
    contains: Annotated[str, Field(min_length=1)] | None = None
    command: Annotated[str, Field(min_length=1)] | None = None
    attempts: Annotated[int, Field(ge=1, le=30)] = 3
    delay_s: Annotated[int, Field(ge=1, le=60)] = 2

    @model_validator(mode="after")
    def _one_kind(self) -> SmokeCheck:
        if (self.url is None) == (self.command is None):
            raise ValueError("set exactly one of 'url' (an HTTP check) or 'command' (exit 0 passes)")
        if self.contains is not None and self.url is None:
            raise ValueError("'contains' is for a 'url' check (a command checks its own output)")
        return self

    @property
    def label(self) -> str:
        return self.name or (f"{self.url} answers {self.status}" if self.url else f"`{self.command}` exits 0")


HookCommands = list[Annotated[str, Field(min_length=1)]]


class Hooks(Strict):
    """Commands on the control node at fixed points; a non-zero exit stops the deploy."""

    before_deploy: HookCommands = []
    after_stage: HookCommands = []
    after_deploy: HookCommands = []
    on_failure: HookCommands = []


# A fully qualified image reference: a registry host (with a dot, or localhost; a port may follow), the image's
# path and a tag or a digest. A short name would be resolved by each container engine's own search list.
IMAGE_RE = (r"^(?:localhost|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)(?::[0-9]{1,5})?"
            r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+"
            r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$")


class ExecutionEnvironment(Strict):
    """The image `execution-environment.yml` builds on (ansible-builder 3): an RPM-based image whose python3 is
    3.11 or newer (ansible-core 2.19 needs it), with dnf or microdnf."""

    base_image: Annotated[str, Field(
        pattern=IMAGE_RE, max_length=320,
        description="The base image, fully qualified (registry/path:tag or @sha256:digest); its python3 must be "
                    "3.11 or newer.",
        examples=["quay.io/centos/centos:stream10", "registry.access.redhat.com/ubi10/ubi:latest"])] = \
        "quay.io/centos/centos:stream10"
    package_manager_path: Annotated[Literal["/usr/bin/dnf", "/usr/bin/microdnf"], Field(
        description="The base image's package manager, which ansible-builder installs python3 and "
                    "openssh-clients with.")] = "/usr/bin/dnf"


class Spec(Strict):
    """A whole deploy spec. Only `app` is required; each section switches on a deploy phase."""

    app: Name
    artifact: Annotated[Artifact | None, Field(json_schema_extra=_artifact_schema)] = None
    release: Release | None = None
    service: Service | None = None
    health: Health | None = None
    rollout: Rollout = Rollout()
    database: Database | None = None
    groups: list[CommandGroup] = []
    targets: dict[Name, Target] = {}
    required_env: list[EnvName] = []
    hooks: Hooks = Hooks()
    smoke: list[SmokeCheck] = []
    execution_environment: ExecutionEnvironment = ExecutionEnvironment()

    @model_validator(mode="after")
    def _sections_fit_together(self) -> Spec:
        problems = []
        if self.artifact and not (self.release and self.service):
            problems.append("'artifact' needs 'release' (where to unpack) and 'service' (what to restart)")
        if self.service and not self.artifact:
            problems.append("'service' needs 'artifact' (what to run)")
        if self.smoke and not self.artifact:
            problems.append("'smoke' checks a released site: it needs 'artifact'")
        if self.service and not (self.health and self.health.path):
            problems.append("'service' needs 'health' with 'path' and 'port' (the gate of every batch)")
        names = [g.name for g in self.groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"group names must be unique: {', '.join(dupes)}")
        for name, target in self.targets.items():
            if target.after is not None and target.after not in self.targets:
                problems.append(f"target '{name}' comes after '{target.after}', which is not a target")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def service_name(self) -> str:
        return (self.service.name if self.service and self.service.name else None) or self.app

    @property
    def all_required_env(self) -> list[str]:
        """Env vars the control node must have: the spec's plus every group's, in first-seen order."""
        names = [*self.required_env, *(n for g in self.ordered_groups for n in g.required_env_vars)]
        return list(dict.fromkeys(names))

    @property
    def ordered_groups(self) -> list[CommandGroup]:
        """Groups in their `order`; equal orders keep the file's order (stable sort)."""
        return sorted(self.groups, key=lambda g: g.order)
