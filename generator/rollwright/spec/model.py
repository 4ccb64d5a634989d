"""The deploy spec as typed models: one place that says what a valid `rollwright.yml` is.

Validation is strict (unknown keys are errors) because a typo in a deploy spec must never be
silently ignored. The loader maps every error back to a file:line:column.
"""

from __future__ import annotations

import posixpath
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

NAME_RE = r"^[a-z][a-z0-9_-]*$"
ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
PLACEHOLDERS = ("file", "function_name", "service_name")
PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

# A service env value that is exactly `{{ name }}` reads the inventory variable `name` (a vault secret, say);
# any other template is refused: spec values are data, never templates.
ENV_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
TEMPLATE_MARKS = ("{{", "{%", "{#")
TEMPLATE_ONLY_WHOLE = ("only a whole '{{ variable_name }}' (an inventory or vault variable) may be a template; "
                       "any other value is plain text and must not contain '{{', '{%' or '{#'")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # a release's version (at most 64): one folder name
VERSION_MAX = 64


def _env_value(value: str | int | bool) -> str | int | bool:
    if isinstance(value, str) and not ENV_REFERENCE.fullmatch(value) and any(m in value for m in TEMPLATE_MARKS):
        raise ValueError(TEMPLATE_ONLY_WHOLE)
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


# The path rules above as ECMAScript patterns, so editors refuse what the validators refuse. They read a path as
# written: spellings that only normalization reveals (`/srv/.`, `a/./..`) are left to the validators.
_PATH_TEXT = r"(?=[\s\S]*\S)(?![\s\S]*[^/]{256})[^\x00-\x1f\x7f]*$"  # not blank; names of 255 at most; no controls
_NO_CLIMB = r"(?!(?:[\s\S]*/)?\.\.(?:/|$))"


def _under(folders: tuple[str, ...]) -> str:
    """`folders` as one alternation, each `/` standing for one or more (`/usr//local` is `/usr/local`)."""
    return "(?:" + "|".join(re.escape(f.strip("/")).replace("/", "/+") for f in folders) + ")"


def _path_pattern(*rules: str) -> str:
    return "^" + "".join(rules) + _PATH_TEXT


PATH_PATTERN = _path_pattern()
UNCLIMBING_PATTERN = _path_pattern(_NO_CLIMB)
RELATIVE_PATTERN = _path_pattern("(?!/)", _NO_CLIMB)
ABSOLUTE_PATTERN = _path_pattern("(?=/)", _NO_CLIMB)
HOST_FOLDER_PATTERN = _path_pattern("(?=/)", _NO_CLIMB, f"(?!/+{_under(SHARED_FOLDERS)}/*$)",
                                    f"(?!/+{_under(SYSTEM_TREES)}(?:/|$))")


def _rule(text: str, pattern: str, more: dict[str, Any] | None = None) -> Any:
    """What a path validator accepts, for the schema: in words (the README's reference, an editor's error) and as
    a pattern (JSON Schema only: pydantic's regex engine has no lookahead, the validator is the real check)."""
    return Field(json_schema_extra={"x-rule": text, "pattern": pattern, "patternErrorMessage": f"expected {text}",
                                    "maxLength": MAX_PATH_CHARS, **(more or {})})


AnyPath = Annotated[str, BeforeValidator(_normal_path), _rule("a path on the control node", PATH_PATTERN)]
HostFolder = Annotated[str, BeforeValidator(_host_folder), _rule(
    "an absolute folder of the app's own: no `..`, not `/`, a system tree (`/etc`, `/usr`...) or a shared "
    "folder (`/srv`, `/var/lib`...)", HOST_FOLDER_PATTERN)]
SharedPath = Annotated[str, _inside("the release root"), _rule(
    "relative to the release, no `..`; not `.` or `REVISION`", RELATIVE_PATTERN, {"not": {"enum": [".", "REVISION"]}})]
InSpecFolder = Annotated[str, _inside("the spec's folder"), _rule("relative to the spec's folder, no `..`",
                                                                  RELATIVE_PATTERN)]
AbsolutePath = Annotated[str, BeforeValidator(_absolute), _rule("an absolute path, no `..`", ABSOLUTE_PATTERN)]
WorkingDir = Annotated[str, BeforeValidator(_unclimbing_path), _rule(  # the loader checks an absolute one
    "relative to `current`, or absolute under `<root>/current`; no `..`", UNCLIMBING_PATTERN)]
Inventory = Annotated[str, BeforeValidator(_inventory), _rule("a path on the control node", f"^$|{PATH_PATTERN}")]


class Strict(BaseModel):
    """Base for every spec section: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# The validators' rules that tie fields together, as JSON Schema for editors (draft-07 keywords: what
# yaml-language-server implements). A field set to null is unset, as in the model; `errorMessage` is the
# validator's own message, which VS Code and JetBrains show instead of their generic one.
def _set(fields: dict[str, str], message: str | None = None) -> dict[str, Any]:
    """Each field present and not null, of its JSON type."""
    kinds = {name: {"type": kind, **({"errorMessage": message} if message else {})} for name, kind in fields.items()}
    return {"required": list(fields), "properties": kinds}


def _unset(name: str, message: str | None = None) -> dict[str, Any]:
    return {"properties": {name: {"type": "null", **({"errorMessage": message} if message else {})}}}


def _is(name: str, **rule: Any) -> dict[str, Any]:
    """The field present and matching `rule` (required: its default, when it is left out, never matches)."""
    return {"required": [name], "properties": {name: rule}}


def _when(condition: dict[str, Any], then: dict[str, Any], otherwise: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"if": condition, "then": then, **({"else": otherwise} if otherwise else {})}


def _rules(*rules: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"allOf": list(rules)} if len(rules) > 1 else rules[0])


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


BatchSize = Annotated[int | str, BeforeValidator(_batch_size), WithJsonSchema({
    "type": ["integer", "string"], "minimum": 1, "pattern": r"^\s*(?:0{0,2}[1-9]|0?[1-9][0-9]|100)%\s*$",
    "patternErrorMessage": "expected a host count like 1 or a percentage from 1% to 100%"})]
EnvValue = Annotated[str | int | bool, AfterValidator(_env_value), WithJsonSchema({
    "type": ["string", "integer", "boolean"],
    "pattern": r"^(?:\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}|(?![\s\S]*(?:\{\{|\{%|\{#))[\s\S]*)$",
    "patternErrorMessage": TEMPLATE_ONLY_WHOLE})]
ONE_SOURCE = "set exactly one of 'path' (a file on the control node) or 'url'"
BUILD_FILE_ALONE = "'from' stands alone (or beside 'signature'): the build file gives path, version and sha256"
Url = Annotated[str, Field(pattern=r"^https?://")]


Version = Annotated[str, Field(pattern=VERSION_RE.pattern, max_length=VERSION_MAX)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _artifact_or_build_file(schema: dict[str, Any]) -> None:
    """Editors must accept `artifact: {from: FILE}` too, which the loader resolves before the model sees it:
    `from` alone (or with its `signature`), or the pinned fields with one source (an `if`, so an error still names
    its field); a signed artifact is a `path` one."""
    pinned = {"required": schema.pop("required"), "allOf": [
        _when(_set({"path": "string"}), then=_unset("url", ONE_SOURCE), otherwise=_set({"url": "string"}, ONE_SOURCE)),
        _when(_set({"signature": "object"}), then=_unset("url", SIGNED_NEEDS_PATH))]}
    schema["properties"]["from"] = BuildFileRef.model_json_schema(by_alias=True)["properties"]["from"]
    schema.update(_when({"required": ["from"]}, then={"propertyNames": {"enum": ["from", "signature"]},
                                                      "errorMessage": BUILD_FILE_ALONE}, otherwise=pinned))


SSH_ONLY = "'allowed_signers' and 'namespace' are for method ssh"
SSH_NEEDS = "method ssh needs 'allowed_signers' (who may sign: an OpenSSH allowed-signers file)"
GPG_ONLY = "'keyring' is for method gpg"
GPG_NEEDS = "method gpg needs 'keyring' (who may sign: a keyring file of public keys, `gpg --export`)"
GPG_SIGNER = "with method gpg, each of 'signers' is a key's fingerprint: 40 hex characters"
SIGNED_NEEDS_PATH = ("a signature is checked on the control node against the bytes it uploads; a 'url' artifact is "
                     "fetched by each host, never by the control node: download it and give its 'path'")
NAMESPACE_DEFAULT = "rollwright"
FINGERPRINT_RE = re.compile(r"^[0-9A-Fa-f]{40}$")


def _is_method(method: str) -> dict[str, Any]:
    return {"required": ["method"], "properties": {"method": {"const": method}}}


class Signature(Strict):
    """A detached signature of the artifact, checked on the control node (`ssh-keygen -Y verify` or `gpgv`, no
    network) against the exact bytes whose sha256 is pinned, before the lock and before any host is contacted."""

    model_config = _rules(
        _when(_is_method("ssh"), then={"allOf": [_set({"allowed_signers": "string"}, SSH_NEEDS),
                                                 _unset("keyring", GPG_ONLY)]}),
        _when(_is_method("gpg"), then={"allOf": [_set({"keyring": "string"}, GPG_NEEDS),
                                                 _unset("allowed_signers", SSH_ONLY), _unset("namespace", SSH_ONLY),
                                                 {"properties": {"signers": {"items": {
                                                     "pattern": FINGERPRINT_RE.pattern,
                                                     "errorMessage": GPG_SIGNER}}}}]}))

    method: Literal["ssh", "gpg"] = Field(description=(
        "`ssh`: an OpenSSH signature (`ssh-keygen -Y sign`, or `rollwright sign ARTIFACT --key KEY`), checked "
        "against `allowed_signers`; `gpg`: an OpenPGP detached signature (`gpg --detach-sign`), checked with `gpgv` "
        "against `keyring`."))
    path: InSpecFolder | None = Field(None, examples=["dist/hello-1.0.0.tar.gz.sig"], description=(
        "The signature file, relative to the spec's folder. Default: beside the tarball, `<path>.sig` (gpg: "
        "`<path>.asc` when there is one, else `<path>.sig`). A build file's `signature` comes first; with "
        "`--artifact` it is the one beside that tarball."))
    allowed_signers: InSpecFolder | None = Field(None, examples=["keys/allowed_signers"], description=(
        "ssh: the OpenSSH allowed-signers file (`PRINCIPAL [namespaces=\"rollwright\"] ssh-ed25519 AAAA...` a "
        "line), relative to the spec's folder: the signing key must be in it."))
    keyring: InSpecFolder | None = Field(None, examples=["keys/release.gpg"], description=(
        "gpg: the public keys that may sign (`gpg --export KEY > keys/release.gpg`), relative to the spec's "
        "folder; `gpgv` trusts this file and nothing else."))
    namespace: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9@._-]*$", max_length=64)] | None = Field(
        None, examples=["rollwright"], description=f"ssh: the namespace the signature was made for (`-n`); default "
                                                   f"`{NAMESPACE_DEFAULT}`. A signature made for another one is "
                                                   "refused.")
    signers: list[Annotated[str, Field(pattern=r'^[^\s,*?"]+$', max_length=200)]] = Field(
        [], json_schema_extra={"uniqueItems": True}, examples=[["release@example.com"]], description=(
            "Who may sign, narrowed further: ssh principals (as in `allowed_signers`) or gpg key fingerprints (40 "
            "hex). Empty: anyone `allowed_signers` or `keyring` holds."))

    @model_validator(mode="after")
    def _fits_method(self) -> Signature:
        problems = []
        if self.method == "ssh":
            problems += [SSH_NEEDS] if self.allowed_signers is None else []
            problems += [GPG_ONLY] if self.keyring is not None else []
        else:
            problems += [GPG_NEEDS] if self.keyring is None else []
            problems += [SSH_ONLY] if self.allowed_signers is not None or self.namespace is not None else []
            problems += [GPG_SIGNER] if any(not FINGERPRINT_RE.match(s) for s in self.signers) else []
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def ssh_namespace(self) -> str:
        return self.namespace or NAMESPACE_DEFAULT


class Artifact(Strict):
    """The release to ship: a tarball on the control node (path) or at a URL, pinned by sha256. Or
    `{from: FILE}`: a JSON file the build writes, holding the tarball's path, version and sha256."""

    model_config = ConfigDict(json_schema_extra=_artifact_or_build_file)

    version: Version = Field(examples=["1.4.0", "2.0.0-rc.1"],
                             description="The release's version: its folder is `<root>/releases/<version>`, and every "
                                         "host's health endpoint must name it before the host counts as deployed.")
    sha256: Sha256 = Field(examples=["5f2b" * 16],
                           description="SHA-256 of the tarball (`sha256sum`, 64 lowercase hex characters): a file "
                                       "that does not match it is never deployed.")
    path: AnyPath | None = Field(None, examples=["dist/hello-1.0.0.tar.gz"],
                                 description="The tarball on the control node, relative to the spec's folder; copied "
                                             "to the hosts. Set this or `url`.")
    url: Url | None = Field(None, examples=["https://artifacts.example.com/hello-1.0.0.tar.gz"],
                                 description="Where each host downloads the tarball (http or https). Set this or "
                                             "`path`.")
    signature: Signature | None = Field(None, description=(
        "A detached signature of the tarball, verified on the control node before anything is uploaded; the "
        "signer goes into the deploy record. Needs `path` (a `url` artifact is never fetched by the control "
        "node). Beside `from`, it says how to check what the build made."))

    @model_validator(mode="after")
    def _one_source(self) -> Artifact:
        if (self.path is None) == (self.url is None):
            raise ValueError(ONE_SOURCE)
        if self.signature and self.url:
            raise ValueError(SIGNED_NEEDS_PATH)
        return self


class BuildFileRef(Strict):
    """`artifact: {from: FILE}`: the artifact is what the build last wrote into FILE (relative to the spec's
    folder), a JSON object with the tarball's path, version and sha256."""

    from_: Annotated[InSpecFolder, Field(alias="from", examples=["dist/build.json"], description=(
        "A JSON file the build writes, relative to the spec's folder: {\"path\", \"version\", \"sha256\"} of the "
        "tarball it made, and `signature` (its signature file) when it signed it. Alone, or beside `signature` (how "
        "to check it): the other fields come from the file."))]


class BuildInfo(Strict):
    """The file a build writes for `artifact: {from: FILE}`: the tarball it made, pinned, so a new build
    deploys without editing the spec. Its path, like every spec path, stays inside the spec's folder."""

    path: InSpecFolder
    version: Version
    sha256: Sha256
    signature: InSpecFolder | None = None  # the build's detached signature of the tarball, when it made one


HostCommand = Annotated[str, Field(min_length=1)]  # run on the app hosts as `/bin/sh -c COMMAND`


class Release(Strict):
    """Capistrano-style layout: <root>/releases/<version>, <root>/shared, <root>/current."""

    root: HostFolder = Field(examples=["/srv/hello"], description="The app's folder on every app host: "
                             "`releases/<version>`, `shared/` and the `current` link live in it.")
    keep: int = Field(5, ge=2, le=100, description="How many releases each host keeps (default 5); older ones are "
                                                   "removed after a deploy, `current` and the previous never.")
    shared: list[SharedPath] = Field([], json_schema_extra={"uniqueItems": True}, examples=[["log", "uploads"]],
                                     description="Paths linked from `<root>/shared` into every release, so they "
                                                 "outlive it (logs, uploads); each listed once, none inside another.")
    owner: Name = Field("root", examples=["root", "hello"], description="Who owns the release files (and its "
                        "group, the group of that name). Default root: the app cannot change its own code. Set the "
                        "service user when `build` writes into the release.")
    build: list[HostCommand] = Field([], examples=[["python manage.py collectstatic --noinput",
                                                    "python manage.py check --deploy"]], description=(
        "Commands run on every app host inside the new release (`<root>/releases/<version>`) once it is staged, "
        "before migrations and before any switch: as the service user with the service's env file (without a "
        "service: as `owner`, no env). `/bin/sh -c`, in order; a failure stops the deploy with every host on its "
        "release. They run once per release: a marker in the release skips them on a re-run."))

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

    exec: str = Field(min_length=1, examples=["/usr/bin/python3 app.py --port 8080", "bin/hello serve"],
                      description="The command the unit runs (ExecStart), from the release folder: a relative "
                                  "program is the release's own.")
    name: Name | None = Field(None, examples=["hello-web"],
                              description="The systemd unit's name; default: the app's name.")
    user: Name = Field(examples=["hello"], description="The user the service runs as; it owns the releases.")
    group: Name | None = Field(None, examples=["www-data"], description="The service's group; default: the user's.")
    env: dict[EnvName, EnvValue] = Field({}, examples=[{"DATABASE_URL": "{{ vault_database_url }}", "WORKERS": 4}],
                                         description="Environment of the service, written to a 0600 env file. "
                                                     "A value `\"{{ name }}\"` reads the inventory or vault "
                                                     "variable `name`; any other value is plain text.")
    working_dir: WorkingDir | None = Field(None, examples=["web", "/srv/hello/current/web"],
                                           description="Where the service starts: relative to the release, or "
                                                       "absolute under `<root>/current`; default: the release.")
    restart: Literal["always", "on-failure", "on-abnormal", "no"] = Field(
        "on-failure", description="systemd's Restart= for the unit (default on-failure).")
    stop_timeout_s: Seconds = Field(30, examples=[30], description="Seconds systemd waits for the service to stop "
                                                                  "(finish its requests) before it kills it.")
    reload_signal: Literal["HUP", "USR1", "USR2"] | None = Field(
        None, examples=["HUP"], description="A deploy reloads a running service with this signal (the unit's "
                                            "ExecReload) instead of restarting it, health-gated on the new version, "
                                            "when its unit and env file did not change; for servers that renew their "
                                            "code on it (gunicorn HUP, puma USR1). Default: restart.")


ONE_READINESS = "set exactly one of 'running_s', 'command' or 'port'"


class Ready(Strict):
    """How a process without a health URL proves it started: still running after `running_s` seconds (no
    restart), a `command` that exits 0, or a `port` listening on the host; `timeout_s` bounds the wait."""

    model_config = _rules({"oneOf": [{"required": [kind]} for kind in ("running_s", "command", "port")],
                           "errorMessage": ONE_READINESS})

    running_s: int | None = Field(None, ge=1, le=3600, examples=[5], description="Ready when every instance is "
                                  "still running, not restarted, this many seconds after its restart.")
    command: Annotated[str, Field(min_length=1)] | None = Field(
        None, examples=["bin/worker-check"], description="Ready when this command exits 0; run by /bin/sh on the "
                                                         "host in the release, as the process's user with its env.")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(None, examples=[9000], description="Ready when a "
                                                               "process listens on this TCP port on the host.")
    timeout_s: Seconds = Field(60, description="Seconds the process may take to become ready (default 60).")

    @model_validator(mode="after")
    def _one_kind(self) -> Ready:
        if sum(kind is not None for kind in (self.running_s, self.command, self.port)) != 1:
            raise ValueError(ONE_READINESS)
        return self

    @property
    def kind(self) -> str:
        return "running_s" if self.running_s is not None else "command" if self.command is not None else "port"


class Process(Strict):
    """Another process of the app (a worker, a scheduler): its own systemd unit, hosts and readiness check, run
    from the same release; restarted on each host after the web service (or before it), then checked."""

    exec: str = Field(min_length=1, examples=["/usr/bin/python3 worker.py"],
                      description="The command the unit runs (ExecStart), from the release folder.")
    unit: Name | None = Field(None, examples=["hello-worker"], description="The systemd unit's name; default "
                              "`<service name>-<process name>`.")
    hosts: Name | None = Field(None, examples=["app", "workers"], description="The inventory group it runs on; "
                               "default the app hosts (`rollout.hosts`).")
    user: Name | None = Field(None, description="The user it runs as; default the service's.")
    group: Name | None = Field(None, description="Its group; default the user's (the service's group when the "
                                                 "user is the service's).")
    env: dict[EnvName, EnvValue] = Field({}, examples=[{"QUEUE": "default"}], description="Environment, merged "
                                         "over the service's (`DATABASE_URL` and the like are shared).")
    working_dir: WorkingDir | None = Field(None, description="Where it starts, as the service's `working_dir`; "
                                                             "default the release.")
    restart: Literal["always", "on-failure", "on-abnormal", "no"] = Field(
        "on-failure", description="systemd's Restart= for the unit (default on-failure).")
    stop_timeout_s: Seconds = Field(30, description="Seconds systemd waits after SIGTERM (a graceful stop: finish "
                                                    "the job at hand) before it kills it.")
    instances: int = Field(1, ge=1, le=64, description="How many copies run; above 1 a template unit "
                                                       "`<unit>@.service` runs as `<unit>@1`..`<unit>@N`.")
    ready: Ready = Field(Ready(running_s=5), description="Its readiness check after a restart (default: still "
                         "running after 5 seconds): a failed one rolls the host back like a failed health gate.")
    order: Literal["after_web", "before_web"] = Field("after_web", description="On each host: restarted after the "
                                                     "web service passed its health gate (default), or before it.")

    def units(self, unit: str) -> list[str]:
        """The systemd units that run it, by its unit's name: the unit, or a template's instances."""
        return [f"{unit}@{i}" for i in range(1, self.instances + 1)] if self.instances > 1 else [unit]


HEALTH_WHERE = "set 'path' and 'port' (checked on every host), or 'url'"


class Health(Strict):
    """How to tell a host (path+port, checked on each host) or a site (url) is healthy; `timeout_s` is a
    deadline for the whole gate."""

    model_config = _rules(_when(_unset("url"), then=_set({"path": "string", "port": "integer"}, HEALTH_WHERE)))

    path: Annotated[str, Field(pattern=r"^/")] | None = Field(
        None, examples=["/health"], description="The health endpoint, asked on each app host at `port` after its "
                                                "restart; its answer must name the deployed version.")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        None, examples=[8080], description="The port the service listens on, on each host (1-65535).")
    url: Url | None = Field(None, examples=["https://api.example.com/health"],
                                 description="A site health check from the control node (instead of, or besides, "
                                             "`path` and `port`).")
    status: int = Field(200, ge=100, le=599, examples=[200, 204],
                        description="The HTTP status a healthy answer has (default 200).")
    timeout_s: Seconds = Field(60, examples=[30, 60], description="Seconds the whole gate may take, each request "
                                                                  "included, before the host counts as failed.")
    interval_s: int = Field(1, ge=1, le=600, description="Seconds between two health requests (default 1).")

    @model_validator(mode="after")
    def _where(self) -> Health:
        if self.url is None and (self.path is None or self.port is None):
            raise ValueError(HEALTH_WHERE)
        return self


LB_KINDS = ("haproxy", "command", "none")
HAPROXY_FIELDS = ("hosts", "backend", "socket", "drain_timeout_s")  # kind haproxy's settings
LB_COMMANDS = ("drain", "wait", "undrain", "ready")  # kind command's, run in this order around a host's update
COMMAND_FIELDS = (*LB_COMMANDS, "on", "timeout_s")
LB_COMMAND_TIMEOUT_S = 300  # kind command: what each command may take when the spec says nothing
HAPROXY_NEEDS = "required field missing: backend (kind haproxy, the default, needs it)"
COMMAND_NEEDS = "kind command needs 'drain' and 'undrain'"
LbCommand = Annotated[str, Field(min_length=1)] | None


def _only_for(kind: str) -> str:
    return f"only for kind {kind}"


class LoadBalancer(Strict):
    """What takes an app host out of service around its restart: HAProxy through its admin socket, commands (any
    other load balancer: a cloud one, say), or none."""

    model_config = _rules(
        _when(_is("kind", enum=["command", "none"]),
              then={"properties": {name: {"type": "null", "errorMessage": _only_for("haproxy")}
                                   for name in HAPROXY_FIELDS}},
              otherwise={**_set({"backend": "string"}, HAPROXY_NEEDS),
                         "allOf": [_unset(name, _only_for("command")) for name in COMMAND_FIELDS]}),
        _when(_is("kind", const="command"), then=_set({"drain": "string", "undrain": "string"}, COMMAND_NEEDS)),
        _when(_is("kind", const="none"), then={"allOf": [_unset(name, _only_for("command"))
                                                         for name in COMMAND_FIELDS]}))

    kind: Literal["haproxy", "command", "none"] = Field(
        "haproxy", description="haproxy (default): its servers drained through the admin socket; command: the "
                               "spec's commands drain and undrain each host (any other load balancer); none: no "
                               "load balancer, each batch is restarted in place, health-gated.")
    hosts: Name = Field("lb", description="kind haproxy: the inventory group of the load balancer hosts "
                                          "(default lb).")
    backend: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]+$")] | None = Field(
        None, examples=["app", "hello_be"],
        description="kind haproxy, required: the HAProxy backend whose servers are the app hosts (server names are "
                    "the inventory host names).")
    socket: AbsolutePath = Field("/run/haproxy/admin.sock", description="kind haproxy: HAProxy's admin socket on the "
                                                                        "load balancer hosts.")
    drain_timeout_s: Seconds = Field(30, description="kind haproxy: seconds to wait for a drained server's sessions "
                                                     "to reach 0 before it goes into maintenance anyway.")
    drain: LbCommand = Field(None, examples=["aws elbv2 deregister-targets --target-group-arn \"$TG\" --targets "
                                             "Id=$ROLLWRIGHT_ADDRESS"],
                             description="kind command, required: takes the host out of service (`/bin/sh -c`; the "
                                         "host in ROLLWRIGHT_HOST, ROLLWRIGHT_ADDRESS, ROLLWRIGHT_PORT); non-zero "
                                         "stops the deploy.")
    wait: LbCommand = Field(None, examples=["aws elbv2 wait target-deregistered --target-group-arn \"$TG\" "
                                            "--targets Id=$ROLLWRIGHT_ADDRESS"],
                            description="kind command: after `drain`, returns once the host's requests are done.")
    undrain: LbCommand = Field(None, description="kind command, required: puts the host back in service, after its "
                                                 "health gate.")
    ready: LbCommand = Field(None, description="kind command: after `undrain`, returns once the load balancer sends "
                                               "the host traffic again.")
    timeout_s: Seconds | None = Field(None, examples=[600], description="kind command: seconds each command may "
                                      f"take before it counts as failed (default {LB_COMMAND_TIMEOUT_S}): a hung "
                                      "command never holds a deploy forever.")
    on: Name | None = Field(None, examples=["lb"], description="kind command: the inventory group whose hosts run "
                                                               "the commands, one after the other; default: the "
                                                               "control node (in the project's files/).")

    @model_validator(mode="after")
    def _kind_settings(self) -> LoadBalancer:
        problems = []
        if self.kind == "haproxy":
            problems += [f"'{name}' is {_only_for('command')}" for name in COMMAND_FIELDS
                         if getattr(self, name) is not None]
            if self.backend is None:
                problems.append(HAPROXY_NEEDS)
        else:
            problems += [f"'{name}' is {_only_for('haproxy')}" for name in HAPROXY_FIELDS
                         if name in self.model_fields_set]
        if self.kind == "command" and not (self.drain and self.undrain):
            problems.append(COMMAND_NEEDS)
        if self.kind == "none":
            problems += [f"'{name}' is {_only_for('command')}" for name in COMMAND_FIELDS
                         if getattr(self, name) is not None]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def commands(self) -> dict[str, str]:
        """kind command's commands by name, in run order, the ones the spec sets."""
        return {name: command for name in LB_COMMANDS if (command := getattr(self, name))}


class SloLimits(Strict):
    """What an SLO verdict on the new release's traffic (HAProxy's counters) holds it to: the canary's steps and the
    hold after a rollout judge the same way."""

    min_requests: int = Field(20, ge=1, description="Fewest requests the new release's servers must answer in the "
                                                    "window judged: no traffic is no evidence, and fails it.")
    max_error_rate: float = Field(0.01, ge=0, le=1, examples=[0.01],
                                  description="Highest share of the new release's requests that may fail (5xx or "
                                              "retried), 0 to 1.")
    max_error_ratio: float = Field(2.0, ge=1, description="Highest error rate as a multiple of the baseline's.")
    max_latency_ratio: float = Field(2.0, ge=1, description="Highest average response time as a multiple of the "
                                                            "baseline's (below 10 ms counts as 10 ms).")
    max_latency_ms: int = Field(0, ge=0, examples=[250], description="Highest average response time in "
                                                                     "milliseconds; 0 (default) sets no limit.")
    max_p95_ms: int = Field(0, ge=0, examples=[500], description="Highest 95th percentile response time in "
                            "milliseconds where the source measures it (metrics source prometheus); 0 (default) "
                            "sets no limit.")


class Canary(SloLimits):
    """The canary's steps and its SLO guard: after each step, HAProxy's counters of the canary servers
    against the baseline's over `window_s`; a step that fails them rolls every canary host back."""

    steps: list[BatchSize] = Field([1, "25%", "50%", "100%"], min_length=1, examples=[[1, "10%", "50%", "100%"]],
                                   description="The canary's batches: a host count or a share of the app hosts, "
                                               "each step a total (the hosts reached so far).")
    window_s: int = Field(60, ge=5, le=3600, description="Seconds of traffic compared after each step.")


class Hold(SloLimits):
    """The SLO hold after the rollout: the new release's traffic over `duration_s`, judged against the traffic
    before the deploy (HAProxy's counters, as the canary guard reads them); a breach rolls the whole fleet back."""

    duration_s: int = Field(60, ge=5, le=3600, description="Seconds of the new release's traffic judged after the "
                                                           "rollout (rolling, direct, canary: after the last step; "
                                                           "blue_green: after the switch); the baseline is the traffic "
                                                           "between the deploy's start and its first switch.")
    max_cpu_percent: int = Field(0, ge=0, le=100, examples=[90],
                                 description="Host trigger: a new release's host whose CPU use (all CPUs, from "
                                             "/proc/stat, sampled every second) stays above this the whole hold "
                                             "fails it; 0 (default) sets no limit.")
    max_memory_percent: int = Field(0, ge=0, le=100, examples=[90],
                                    description="Host trigger: a new release's host whose memory use (MemTotal less "
                                                "MemAvailable, from /proc/meminfo) stays above this the whole hold "
                                                "fails it; 0 (default) sets no limit.")

    @property
    def host_triggers(self) -> bool:
        """Whether the release's hosts are sampled over the hold."""
        return bool(self.max_cpu_percent or self.max_memory_percent)


class BlueGreen(Strict):
    """Two inventory groups of app hosts behind the same backend; one takes the traffic."""

    blue: Name = Field("blue", description="The inventory group of the blue hosts.")
    green: Name = Field("green", description="The inventory group of the green hosts; not the blue one.")


PROMETHEUS_URL = r"^https?://[^/@?#\s]+(/[^@?#\s]*)?$"
PROMETHEUS_URL_RULE = ("an http or https base URL without credentials, query or fragment, e.g. "
                       "http://prometheus.internal:9090")


def _prometheus_url(url: str) -> str:
    if not re.match(r"^https?://", url):
        raise ValueError(f"expected {PROMETHEUS_URL_RULE}: it must start with http:// or https://")
    if "@" in url.split("//", 1)[1].split("/", 1)[0]:
        raise ValueError("credentials in the Prometheus URL would land in the playbooks and the logs: leave them out")
    if not re.match(PROMETHEUS_URL, url):
        raise ValueError(f"expected {PROMETHEUS_URL_RULE}")
    return url


def _names_version(query: str) -> str:
    if "$version" not in query:
        raise ValueError("the query must name the version with the token $version (e.g. "
                         "service_version=\"$version\"): the canary and the baseline are each version's own series")
    return query


PromQL = Annotated[str, AfterValidator(_names_version), Field(min_length=1, max_length=4000, json_schema_extra={
    "pattern": r"\$version", "patternErrorMessage": "the query must name the version with the token $version"})]


class Prometheus(Strict):
    """Prometheus as the guard's metrics source: PromQL instant queries from the control node, each answering one
    number for one version. The literal tokens `$version` (the canary's, then the baseline's version) and
    `$window` (the window, e.g. `60s`) are replaced as plain text, never templated."""

    url: Annotated[str, AfterValidator(_prometheus_url), Field(max_length=2000, json_schema_extra={
        "pattern": PROMETHEUS_URL, "patternErrorMessage": f"expected {PROMETHEUS_URL_RULE}"})] = Field(
        examples=["http://prometheus.internal:9090"], description="Prometheus' base URL, http or https, asked from "
        "the control node at `<url>/api/v1/query`; no credentials in it.")
    error_ratio: PromQL = Field(examples=[
        'sum(rate(http_requests_total{service_version="$version",code=~"5.."}[$window])) / '
        'sum(rate(http_requests_total{service_version="$version"}[$window]))'],
        description="One version's share of failed requests over the window, 0 to 1 (one series or a scalar). "
                    "No data or NaN (no traffic) cannot be judged and fails the step.")
    latency_p95: PromQL = Field(examples=[
        'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service_version='
        '"$version"}[$window])))'],
        description="One version's 95th percentile response time over the window, in seconds (Prometheus' "
                    "histograms), e.g. with `histogram_quantile`; judged with max_latency_ratio and max_p95_ms.")
    requests: PromQL | None = Field(None, examples=[
        'sum(increase(http_requests_total{service_version="$version"}[$window]))'],
        description="One version's request count over the window, for min_requests; without it min_requests is "
                    "not checked (an empty error_ratio still fails the step).")
    timeout_s: int = Field(10, ge=1, le=300, description="Seconds to wait for each answer (default 10).")


PROMETHEUS_NEEDS = "source 'prometheus' needs the 'prometheus' settings (url, error_ratio, latency_p95)"
PROMETHEUS_ONLY = "'prometheus' settings need source 'prometheus'"


class Metrics(Strict):
    """Where the canary guard reads its numbers: HAProxy's own counters (default) or Prometheus."""

    model_config = _rules(_when(_is("source", const="prometheus"),
                                then=_set({"prometheus": "object"}, PROMETHEUS_NEEDS),
                                otherwise=_unset("prometheus", PROMETHEUS_ONLY)))

    source: Literal["haproxy", "prometheus"] = Field("haproxy", description="haproxy (default): the load balancer's "
                                                     "per-server counters (error share, average response time); "
                                                     "prometheus: the queries below (error ratio, p95), per version.")
    prometheus: Prometheus | None = Field(None, description="Source prometheus only: its URL and queries.")

    @model_validator(mode="after")
    def _source_settings(self) -> Metrics:
        if self.source == "prometheus" and self.prometheus is None:
            raise ValueError(PROMETHEUS_NEEDS)
        if self.source != "prometheus" and self.prometheus is not None:
            raise ValueError(PROMETHEUS_ONLY)
        return self


METRICS_NEEDS = "'metrics' is read by the canary guard and the hold: it needs strategy 'canary' or a 'hold'"


STRATEGIES_NEEDING_LB = ("canary", "blue_green")
LB_NEEDED = "needs 'load_balancer' of kind haproxy (its traffic switch and, for a canary, its metrics)"
LB_NEEDED_BY_HOLD = "needs 'load_balancer' of kind haproxy (its counters are the hold's metrics)"


class Rollout(Strict):
    """How new code reaches the app hosts."""

    model_config = _rules(
        _when(_is("strategy", enum=list(STRATEGIES_NEEDING_LB)),
              then=_set({"load_balancer": "object"}, f"strategy canary or blue_green {LB_NEEDED}")),
        _when(_is("strategy", enum=list(STRATEGIES_NEEDING_LB)), then={"properties": {"load_balancer": {"properties": {
            "kind": {"const": "haproxy", "errorMessage": f"strategy canary or blue_green {LB_NEEDED}"}}}}}),
        *(_when(_set({section: "object"}), then=_is("strategy", const=section, errorMessage=(
            f"'{section}' settings need strategy '{section}'"))) for section in STRATEGIES_NEEDING_LB),
        _when({"allOf": [_set({"metrics": "object"}), {"not": _set({"hold": "object"})}]},
              then=_is("strategy", const="canary", errorMessage=METRICS_NEEDS)),
        _when(_set({"hold": "object"}), then=_set({"load_balancer": "object"}, f"'hold' {LB_NEEDED_BY_HOLD}")),
        _when(_set({"hold": "object"}), then={"properties": {"load_balancer": {"properties": {
            "kind": {"const": "haproxy", "errorMessage": f"'hold' {LB_NEEDED_BY_HOLD}"}}}}}))

    strategy: Literal["rolling", "canary", "blue_green", "direct"] = Field(
        "rolling", description="rolling (default): batch by batch behind the load balancer; canary: steps with an "
                               "SLO guard; blue_green: the idle colour, then one traffic switch; direct: every host "
                               "at once (a hotfix).")
    hosts: Name = Field("app", description="The inventory group of the app hosts (default app).")
    batches: list[BatchSize] = Field([1, "50%", "100%"], min_length=1, examples=[[1, "50%", "100%"], ["25%", "100%"]],
                                     description="Rolling batches: a host count or a share of the app hosts, each "
                                                 "health-gated before the next.")
    max_fail_percentage: int = Field(0, ge=0, le=100, description="Share of a batch's hosts (percent) that may fail "
                                                                  "before the deploy stops; default 0.")
    load_balancer: LoadBalancer | None = Field(None, description="What takes each app host out of service around "
                                               "its restart: HAProxy (kind haproxy, needed by canary and blue_green), "
                                               "the spec's commands (kind command) or nothing (kind none, as when "
                                               "it is left out).")
    canary: Canary | None = Field(None, description="Strategy canary only: its steps and SLO guard. After each step, "
                                  "HAProxy's counters of the canary servers are compared with the baseline's over "
                                  "`window_s`; a step that fails them rolls every canary host back.")
    blue_green: BlueGreen | None = Field(None, description="Strategy blue_green only: two inventory groups of app "
                                         "hosts behind the same backend; one takes the traffic.")
    metrics: Metrics | None = Field(None, description="Strategy canary or a hold: where the canary guard and the hold "
                                    "read their numbers, HAProxy's counters (default) or Prometheus queries.")
    hold: Hold | None = Field(None, description="An SLO hold after the rollout, any strategy: the new release's "
                              "traffic over `duration_s` against the traffic before the deploy (HAProxy's counters, "
                              "or the previous version's series in Prometheus with `metrics`); a breach rolls every "
                              "host back (blue_green: switches back). Default: no hold.")

    @model_validator(mode="after")
    def _strategy_settings(self) -> Rollout:
        if self.strategy in STRATEGIES_NEEDING_LB and self.haproxy is None:
            raise ValueError(f"strategy '{self.strategy}' {LB_NEEDED}")
        for section in STRATEGIES_NEEDING_LB:
            if getattr(self, section) is not None and self.strategy != section:
                raise ValueError(f"'{section}' settings need strategy '{section}' (it is '{self.strategy}')")
        if self.metrics is not None and self.strategy != "canary" and self.hold is None:
            raise ValueError(f"{METRICS_NEEDS} (it is '{self.strategy}')")
        if self.hold is not None and self.haproxy is None:
            raise ValueError(f"'hold' {LB_NEEDED_BY_HOLD}")
        if self.blue_green and self.blue_green.blue == self.blue_green.green:
            raise ValueError("blue_green needs two different groups for 'blue' and 'green'")
        return self

    @property
    def haproxy(self) -> LoadBalancer | None:
        """The HAProxy load balancer, when that is the kind: what reads server states, judges a canary, switches."""
        lb = self.load_balancer
        return lb if lb and lb.kind == "haproxy" else None

    @property
    def balancer(self) -> LoadBalancer | None:
        """The load balancer a host is drained in (haproxy or command); None without one or with kind none."""
        lb = self.load_balancer
        return lb if lb and lb.kind != "none" else None

    @property
    def guard(self) -> Canary:
        """The canary settings (the defaults when the spec names the strategy only)."""
        return self.canary or Canary()

    @property
    def source(self) -> Metrics:
        """Where the canary guard and the hold read their numbers (HAProxy's counters when the spec says nothing)."""
        return self.metrics or Metrics()

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

    enabled: bool = Field(True, description="Take the backup (default true).")
    dir: HostFolder = Field(examples=["/var/backups/hello"], description="Where the dumps are kept on the database "
                                                                         "host.")
    keep: int = Field(7, ge=1, le=1000, description="How many dumps are kept (default 7); older ones are removed.")
    verify: Literal["list", "restore"] = Field("list", description="How each dump is checked: list (pg_restore "
                                                                   "--list reads it) or restore (into a scratch "
                                                                   "database).")


COMMAND_TOOL = "tool 'command' needs 'command' (the migration command to run)"


class Migrations(Strict):
    """Tracked migrations: rollwright's own SQL runner, or another tool's command."""

    model_config = _rules(_when(_is("tool", const="command"), then=_is("command", type="string", minLength=1,
                                                                       errorMessage=COMMAND_TOOL)))

    tool: Literal["sql", "alembic", "flyway", "django", "command"] = Field(
        "sql", description="Who applies the migrations: sql (rollwright's runner, default), alembic, flyway, django, "
                           "or command (your own `command`).")
    path: InSpecFolder = Field("migrations", examples=["migrations"], description="The sql tool's folder of "
                               "`V<version>__<name>.sql` and `R__<name>.sql` files.")
    table: str = Field("rollwright_schema_history", pattern=r"^[a-z_][a-z0-9_]*$",
                       description="The sql tool's history table.")
    command: str | None = Field(None, examples=["bin/migrate up"], description="The migration command (run on the "
                                "first app host from the new release); required by tool command.")
    status_command: str | None = Field(None, examples=["bin/migrate status"], description="The command `rollwright "
                                       "migrations status` and `history` run instead of the tool's own.")
    plan_command: str | None = Field(None, examples=["bin/migrate plan"], description="The command that lists what "
                                     "the new release would apply (`plan --migrations`, `migrations apply "
                                     "--dry-run`) instead of the tool's own; tool command falls back to "
                                     "status_command.")
    python: str | None = Field(None, pattern=r"^[A-Za-z0-9_./+-]{1,255}$", examples=["/usr/bin/python3.11"],
                               description="The Python that runs django's "
                               "`manage.py` and alembic; default: the release's `.venv/bin/python` when it exists, "
                               "else `python3`.")
    lock_timeout_s: int = Field(5, ge=1, le=3600, description="How long a migration statement waits for a lock on a "
                                "busy table before it gives up (PostgreSQL lock_timeout; default 5), so readers "
                                "queued behind it are not stalled longer.")
    lock_retries: int = Field(3, ge=0, le=20, description="How many more times a migration that gave up on a lock is "
                              "tried (default 3) before the deploy stops, before any switch.")
    statement_timeout_s: int = Field(600, ge=1, le=86400, description="The longest one migration statement may run "
                                     "(PostgreSQL statement_timeout; default 600).")
    allow_out_of_order: bool = Field(False, description="Let the sql tool apply a version older than one already "
                                                        "applied.")
    acknowledge_destructive: list[str] = Field([], examples=[["V7__drop_legacy.sql"]], description="Migration files "
                                               "whose destructive statements (DROP, ...) you accept.")

    @model_validator(mode="after")
    def _command_for_command_tool(self) -> Migrations:
        if self.tool == "command" and not self.command:
            raise ValueError(COMMAND_TOOL)
        return self


class Database(Strict):
    """The app's database: backed up and migrated once per deploy, before any code switch."""

    engine: Literal["postgresql"] = Field("postgresql", description="The database engine; only postgresql.")
    hosts: Name = Field("db", description="The inventory group of the database hosts; the first one is used.")
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", examples=["hello"], description="The database's name.")
    url_env: EnvName = Field("DATABASE_URL", description="The environment variable that holds the database's URL.")
    backup: Backup | None = Field(None, description="A `pg_dump -Fc` before the migrations, verified, with "
                                  "retention; none when unset.")
    migrations: Migrations | None = Field(None, description="Tracked migrations (rollwright's SQL runner or "
                                          "another tool's command), applied before any code switch.")


FILE_ONLY_IN_DEPLOY = "'{file}' can only be used in 'deploy_command' (it runs once per file)"
FILE_NEEDS_PATTERNS = "'deploy_command' uses '{file}' but 'file_patterns' is empty"
OnceCommand = Annotated[str, Field(json_schema_extra={"pattern": r"^(?![\s\S]*\{file\})", "x-rule": "no `{file}`",
                                                      "patternErrorMessage": FILE_ONLY_IN_DEPLOY})]


class CommandGroup(Strict):
    """An ordered group of shell commands (the deployment-config JSON format, unchanged).

    Order within a group: build_command, test_command, pre_deploy, deploy_command once per
    matching file (sorted), post_deploy. `{file}`, `{function_name}` and `{service_name}` are
    replaced by shell-quoted values.
    """

    model_config = _rules(_when(_is("deploy_command", type="string", pattern=r"\{file\}"),
                                then=_is("file_patterns", minItems=1, errorMessage=FILE_NEEDS_PATTERNS)))

    name: Name = Field(examples=["migrations", "assets"], description="The group's name, unique in the spec.")
    order: int = Field(0, ge=0, examples=[1], description="Groups run in ascending order (default 0); equal orders "
                                                          "keep the file's order.")
    hosts: str = Field("localhost", examples=["localhost", "app"], description="Where the commands run: localhost "
                                                                               "(the control node) or a host group.")
    file_patterns: list[InSpecFolder] = Field([], examples=[["migrations/*.sql"]], description="Globs of files "
                                              "relative to the spec's folder; `deploy_command` runs once per match.")
    build_command: OnceCommand | None = Field(None, examples=["npm run build"], description="Runs first, once.")
    test_command: OnceCommand | None = Field(None, examples=["npm test"], description="Runs after the build, once.")
    pre_deploy: list[OnceCommand] = Field([], examples=[["psql --version"]], description="Commands before the "
                                                                                         "deploy command, once each.")
    deploy_command: str | None = Field(None, examples=["psql $DATABASE_URL -f {file}"], description="Runs once per "
                                       "file matching `file_patterns` (as `{file}`, sorted), or once without them.")
    post_deploy: list[OnceCommand] = Field([], examples=[["echo done"]], description="Commands after the deploy "
                                                                                     "command, once each.")
    required_env_vars: list[EnvName] = Field([], examples=[["DATABASE_URL"]], description="Environment variables "
                                             "the control node must have before anything runs.")

    @model_validator(mode="after")
    def _file_only_in_deploy(self) -> CommandGroup:
        once = [self.build_command, self.test_command, *self.pre_deploy, *self.post_deploy]
        if any(cmd and "{file}" in cmd for cmd in once):
            raise ValueError(FILE_ONLY_IN_DEPLOY)
        if self.deploy_command and "{file}" in self.deploy_command and not self.file_patterns:
            raise ValueError(FILE_NEEDS_PATTERNS)
        return self


class FreezeWindow(Strict):
    """A change freeze: no deploy to the target between start and end (ISO 8601 date-times)."""

    start: datetime = Field(examples=["2026-12-24T00:00:00Z"], description="When the freeze begins (ISO 8601).")
    end: datetime = Field(examples=["2026-12-27T00:00:00Z"], description="When it ends (ISO 8601); after `start`.")
    reason: str = Field("", examples=["holidays"], description="Shown when a deploy is refused.")

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindow:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self


class Target(Strict):
    """A named environment (staging, production): an inventory plus how far we may go there."""

    inventory: Inventory = Field(examples=["inventories/staging"], description="The target's Ansible inventory "
                                 "(a folder or file), relative to the spec's folder.")
    after: Name | None = Field(None, examples=["staging"], description="Another target: deploy here only an "
                               "artifact (sha256) deployed and verified there first.")
    production: bool = Field(False, description="A production target: no `--no-health-check`, `--direct` needed "
                                                "for strategy direct, `restore` needs `--yes`.")
    read_only: bool = Field(False, description="Refuse deploy, rollback, restore and migrations apply here.")
    become: bool = Field(False, description="Run the plays with become (sudo) as `become_user`.")
    become_user: Name = Field("root", description="Who become makes the plays (default root).")
    forks: int = Field(20, ge=1, le=500, description="Hosts Ansible works on at once (default 20).")
    freeze: list[FreezeWindow] = Field([], description="Change freezes (ISO 8601 start and end): deploys are "
                                       "refused inside them unless `--override-freeze --reason`.")
    webhook: Url | None = Field(None, examples=["https://hooks.example.com/deploys"], description="Receives a "
                                     "JSON message at start, success, failure and rollback; never fails a deploy.")
    gates: list[AnyPath] = Field([], examples=[["reports/review.json"]], description="Result files (review, tests, "
                                 "scan) that must say PASS before a deploy.")
    require_signature: bool = Field(False, description="Deploy only a signed artifact (`artifact.signature`, "
                                    "verified on the control node): an unsigned one is refused before any change.")


ONE_KIND = "set exactly one of 'url' (an HTTP check) or 'command' (exit 0 passes)"
CONTAINS_URL = "'contains' is for a 'url' check (a command checks its own output)"


class SmokeCheck(Strict):
    """A check of the released site after the rollout, from the control node (through the load balancer,
    as users reach it): a URL that must answer `status` (and contain `contains`), or a command that must
    exit 0. A failure rolls the whole fleet back, like a failed health gate."""

    model_config = _rules(_when(_set({"url": "string"}), then=_unset("command", ONE_KIND),
                                otherwise=_set({"command": "string"}, ONE_KIND)),
                          _when(_set({"contains": "string"}), then=_set({"url": "string"}, CONTAINS_URL)))

    name: Annotated[str, Field(min_length=1, max_length=80)] | None = Field(
        None, examples=["home page"], description="How the check is named in the output; default: what it checks.")
    url: Url | None = Field(None, examples=["https://www.example.com/"],
                                 description="A URL that must answer `status`. Set this or `command`.")
    status: int = Field(200, ge=100, le=599, description="The HTTP status the URL must answer (default 200).")
    contains: Annotated[str, Field(min_length=1)] | None = Field(None, examples=["Welcome"], description="Text the "
                                                                 "URL's answer must contain (url checks only).")
    command: Annotated[str, Field(min_length=1)] | None = Field(None, examples=["./smoke.sh"], description="A "
                                                                "command that must exit 0. Set this or `url`.")
    attempts: int = Field(3, ge=1, le=30, description="Tries before the check fails (default 3).")
    delay_s: int = Field(2, ge=1, le=60, description="Seconds between two tries (default 2).")

    @model_validator(mode="after")
    def _one_kind(self) -> SmokeCheck:
        if (self.url is None) == (self.command is None):
            raise ValueError(ONE_KIND)
        if self.contains is not None and self.url is None:
            raise ValueError(CONTAINS_URL)
        return self

    @property
    def label(self) -> str:
        return self.name or (f"{self.url} answers {self.status}" if self.url else f"`{self.command}` exits 0")


HookCommands = list[Annotated[str, Field(min_length=1)]]


class Hooks(Strict):
    """Commands at fixed points of a deploy, on the control node, except before_switch and after_switch, which
    run on each app host; a non-zero exit stops the deploy."""

    before_deploy: HookCommands = Field([], examples=[["./notify start"]], description="Before anything changes.")
    after_stage: HookCommands = Field([], description="After the release is unpacked on every host, before any "
                                                      "switch.")
    after_deploy: HookCommands = Field([], examples=[["./notify done"]], description="After the rollout passed "
                                       "(a failure is reported, nothing is rolled back).")
    on_failure: HookCommands = Field([], examples=[["./notify failed"]], description="After a failed or "
                                     "interrupted deploy, once the fleet is restored.")
    before_switch: list[HostCommand] = Field([], examples=[["./bin/warm-cache"]], description=(
        "On each app host of a batch, in its new release, as the service user with the service's env file "
        "(without a service: as `release.owner`), once the host is out of the load balancer and before `current` "
        "moves; a failure leaves the host on its release and fails the deploy."))
    after_switch: list[HostCommand] = Field([], examples=[["./bin/notify-switched"]], description=(
        "On each app host of a batch, like before_switch, once `current` moved and the health gate passed, "
        "before the host takes traffic again; a failure rolls that host back, like a failed health gate."))

    @property
    def on_hosts(self) -> bool:
        return bool(self.before_switch or self.after_switch)


ARTIFACT_NEEDS = "'artifact' needs 'release' (where to unpack)"
HOST_WORK_NEEDS_ARTIFACT = ("'release.build', 'hooks.before_switch' and 'hooks.after_switch' run in a new release: "
                            "they need 'artifact'")
NO_SERVICE_STRATEGY = ("without 'service' there is no health gate to judge a canary or check an idle colour: use "
                       "strategy rolling or direct")
NO_SERVICE_HEALTH = ("'health.path' and 'health.port' gate a service's restart: without 'service', check the site "
                     "with 'health.url' or 'smoke'")
SERVICE_NEEDS_ARTIFACT = "'service' needs 'artifact' (what to run)"
SMOKE_NEEDS_ARTIFACT = "'smoke' checks a released site: it needs 'artifact'"
PROCESSES_NEED_SERVICE = "'processes' need 'service' (the web process, and the release they run from)"
PROCESSES_NOT_BLUE_GREEN = "'processes' are not supported with strategy blue_green yet"
SERVICE_NEEDS_HEALTH = "'service' needs 'health' with 'path' and 'port' (the gate of every batch)"


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

    model_config = _rules(
        _when(_set({"artifact": "object"}), then=_set({"release": "object"}, ARTIFACT_NEEDS)),
        *(_when(_is(section, type="object", **_is(key, minItems=1)),
                then=_set({"artifact": "object"}, HOST_WORK_NEEDS_ARTIFACT))
          for section, key in (("release", "build"), ("hooks", "before_switch"), ("hooks", "after_switch"))),
        _when({"allOf": [_set({"artifact": "object"}), _unset("service")]}, then={"properties": {
            "rollout": {"properties": {"strategy": {"not": {"enum": list(STRATEGIES_NEEDING_LB)},
                                                    "errorMessage": NO_SERVICE_STRATEGY}}},
            "health": {"properties": {"path": {"type": "null", "errorMessage": NO_SERVICE_HEALTH}}}}}),
        _when(_set({"service": "object"}), then=_set({"artifact": "object"}, SERVICE_NEEDS_ARTIFACT)),
        _when(_is("smoke", minItems=1), then=_set({"artifact": "object"}, SMOKE_NEEDS_ARTIFACT)),
        _when(_set({"service": "object"}), then=_is("health", type="object", errorMessage=SERVICE_NEEDS_HEALTH,
                                                    **_set({"path": "string"}, SERVICE_NEEDS_HEALTH))),
        _when(_is("processes", minProperties=1), then=_set({"service": "object"}, PROCESSES_NEED_SERVICE)))

    app: Name = Field(examples=["hello"], description="The app's name: names its unit, lock, records and backups.")
    artifact: Artifact | None = Field(
        None, description="The release to ship: a tarball on the control node (`path`) or at a `url`, pinned by its "
                          "sha256; or `{from: FILE}`, the JSON file the build writes. Needs `release`; without "
                          "`service` (a static site, a batch job's code) each batch only switches `current`.")
    release: Release | None = Field(None, description="Where releases live on the app hosts, Capistrano-style: "
                                    "`<root>/releases/<version>`, `<root>/shared`, `<root>/current`.")
    service: Service | None = Field(None, description="The systemd unit that runs the app from `current`. Needs "
                                    "`artifact` and `health` (with `path` and `port`).")
    health: Health | None = Field(None, description="How to tell a host is healthy (`path` and `port`, checked on "
                                  "each host: the gate of every batch) or a site (`url`); `timeout_s` is a deadline "
                                  "for the whole gate.")
    processes: dict[Name, Process] = Field({}, description="The app's other processes (workers, schedulers), by "
                                           "name: each its own unit, hosts and readiness check, restarted from the "
                                           "same release on each host after the web service (or before it); a "
                                           "failed readiness check rolls the host back. Needs `service`.")
    rollout: Rollout = Field(Rollout(), description="How new code reaches the app hosts: strategy, batches, load "
                             "balancer.")
    database: Database | None = Field(None, description="The app's database: backed up and migrated once per "
                                      "deploy, before any code switch.")
    groups: list[CommandGroup] = Field([], description="Ordered groups of shell commands (the deployment-config "
                                       "JSON format, unchanged), run by `order`; in a group: build_command, "
                                       "test_command, pre_deploy, deploy_command once per matching file (sorted), "
                                       "post_deploy. `{file}`, `{function_name}` and `{service_name}` are replaced "
                                       "by shell-quoted values.")
    targets: dict[Name, Target] = Field({}, description="Named environments (staging, production): each an "
                                        "inventory plus how far a deploy may go there.")
    required_env: list[EnvName] = Field([], examples=[["DATABASE_URL"]], description="Environment variables the "
                                        "control node must have before a deploy.")
    hooks: Hooks = Field(Hooks(), description="Commands on the control node at fixed points of a deploy; a non-zero "
                         "exit stops the deploy.")
    smoke: list[SmokeCheck] = Field([], description="Checks of the released site after the rollout, from the "
                                    "control node (through the load balancer, as users reach it): a URL that must "
                                    "answer `status` (and contain `contains`), or a command that must exit 0. A "
                                    "failure rolls the whole fleet back, like a failed health gate. Needs `artifact`.")
    execution_environment: ExecutionEnvironment = Field(ExecutionEnvironment(), description="The image the "
                                                        "generated `execution-environment.yml` builds on (ansible-"
                                                        "builder 3): an RPM-based image whose python3 is 3.11 or "
                                                        "newer, with dnf or microdnf.")

    @model_validator(mode="after")
    def _sections_fit_together(self) -> Spec:
        problems = []
        if self.artifact and not self.release:
            problems.append(ARTIFACT_NEEDS)
        if not self.artifact and ((self.release and self.release.build) or self.hooks.on_hosts):
            problems.append(HOST_WORK_NEEDS_ARTIFACT)
        if self.artifact and not self.service:
            if self.rollout.strategy in STRATEGIES_NEEDING_LB:
                problems.append(NO_SERVICE_STRATEGY)
            if self.health and (self.health.path or self.health.port):
                problems.append(NO_SERVICE_HEALTH)
        if self.service and not self.artifact:
            problems.append(SERVICE_NEEDS_ARTIFACT)
        if self.smoke and not self.artifact:
            problems.append(SMOKE_NEEDS_ARTIFACT)
        if self.service and not (self.health and self.health.path):
            problems.append(SERVICE_NEEDS_HEALTH)
        problems += self._process_problems()
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

    def _process_problems(self) -> list[str]:
        if not self.processes:
            return []
        if not self.service:
            return [PROCESSES_NEED_SERVICE]
        return [PROCESSES_NOT_BLUE_GREEN] if self.rollout.strategy == "blue_green" else []

    @property
    def process_units(self) -> list[tuple[str, str]]:
        """(process name, its unit's name) of every process, in the spec's order."""
        return [(name, process.unit or f"{self.service_name}-{name}") for name, process in self.processes.items()]

    @property
    def app_groups(self) -> list[str]:
        """The inventory groups that get the release: the app hosts' and every process's."""
        return list(dict.fromkeys([self.rollout.hosts, *(p.hosts or self.rollout.hosts
                                                          for p in self.processes.values())]))

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
