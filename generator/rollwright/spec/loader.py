"""Load a deploy spec (YAML, or the deployment-config JSON) and report every problem at once.

ruamel.yaml keeps the line and column of every key and value, so each validation error from the
typed model is reported as `file:line:column: field: what was expected`.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError

from rollwright.errors import BadInput
from rollwright.spec import deployconfig, limits
from rollwright.spec.model import ENV_NAME_RE, NAME_RE, BuildFileRef, BuildInfo, Spec

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

PATTERN_HINTS = {
    NAME_RE: "a lowercase name: letters, digits, '-' or '_', starting with a letter",
    ENV_NAME_RE: "an environment variable name like DATABASE_URL",
    r"^[0-9a-f]{64}$": "a sha256: 64 lowercase hex characters",
    r"^/": "an absolute path",
    r"^/.+": "an absolute path",
    r"^https?://": "an http:// or https:// URL",
    r"^[^/].*$": "a path relative to the release root",
    r"^[A-Za-z0-9][A-Za-z0-9._+-]*$": "a version like 1.4.0 (letters, digits, '.', '_', '+', '-')",
}

TYPE_HINTS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of key: value",
    "model_type": "a mapping of key: value",
    "model_attributes_type": "a mapping of key: value",
    "datetime_type": "a date-time like 2026-12-24T18:00:00+00:00",
    "datetime_parsing": "a date-time like 2026-12-24T18:00:00+00:00",
    "datetime_from_date_parsing": "a date-time like 2026-12-24T18:00:00+00:00",
}


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec file, with where it is."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(BadInput):
    """A spec that cannot be used; lists every issue found, in file order."""

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line, i.column, i.field))
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} in the deploy spec:"
        super().__init__("\n".join([head, *(f"  {i}" for i in self.issues)]))


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec plus where it came from, so later checks can still name file and line."""

    spec: Spec
    path: Path
    tree: Any

    @property
    def base_dir(self) -> Path:
        """Relative paths in the spec (artifact, inventories, file patterns) start here."""
        return self.path.parent

    def issue(self, loc: Loc, message: str) -> SpecIssue:
        """A SpecIssue pointing at `loc` (the nearest existing node when `loc` is not in the file)."""
        line, column, _ = _locate(self.tree, loc)
        return SpecIssue(str(self.path), line, column, _field_name(loc), message)


def load_spec(path: str | Path, *, build_file: bool = True) -> LoadedSpec:
    """Parse and validate a spec file; raise SpecError naming file:line:column for every problem.

    `artifact: {from: FILE}` is resolved here, so everything downstream sees a pinned artifact. Without
    `build_file` (a command that ships nothing, or one given the artifact another way) FILE is not read and
    the artifact is a placeholder that names no file."""
    path = Path(path)
    try:
        text = _read_text(path)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such spec file (create one with `rollwright init`)") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the spec: {exc}") from None
    tree = _parse(text, path)
    if not isinstance(tree, CommentedMap):
        kind = "empty" if tree is None else f"a {type(tree).__name__}"
        raise SpecError([SpecIssue(str(path), 1, 1, "", f"expected a mapping of sections, the file is {kind}")])
    if deployconfig.looks_like(tree):
        config = _validate(deployconfig.DeployConfig, tree, tree, path)
        data = deployconfig.to_spec_data(config, path)
        return LoadedSpec(_validate(Spec, data, tree, path), path, tree)
    loaded = LoadedSpec(_validate(Spec, _with_build(tree, path, build_file), tree, path), path, tree)
    _check_working_dir(loaded)
    _check_process_units(loaded)
    return loaded


def _read_text(path: Path) -> str:
    """A spec-sized UTF-8 file (never more is read: it may be /dev/zero); OSError is the caller's to word."""
    with path.open("rb") as stream:
        raw = stream.read(limits.MAX_FILE_BYTES + 1)
    if len(raw) > limits.MAX_FILE_BYTES:
        raise SpecError([SpecIssue(str(path), 1, 1, "", limits.TOO_BIG)])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([SpecIssue(str(path), line, column, "", "not valid UTF-8 text: a spec is written in UTF-8 "
                                   f"(byte {raw[exc.start:exc.start + 1]!r} here)")]) from None


def _with_build(tree: CommentedMap, path: Path, build_file: bool) -> Any:
    """The spec's data with `artifact: {from: FILE}` replaced by what the build wrote into FILE."""
    section = tree.get("artifact")
    if not (isinstance(section, CommentedMap) and "from" in section):
        return tree
    issues = [SpecIssue(str(path), *_locate(tree, ("artifact", key), True)[:2], f"artifact.{key}",
                        f"unknown key '{key}' beside 'from': the build file gives path, version and sha256 (leave "
                        "them out here, or drop 'from')") for key in section if key not in ("from", "signature")]
    try:
        ref = BuildFileRef.model_validate({"from": _plain(section["from"])})
    except ValidationError as exc:
        issues += _issues([{**error, "loc": ("artifact", *error["loc"])} for error in exc.errors()], tree, path, Spec)
    if issues:
        raise SpecError(issues)
    build_path = path.parent / ref.from_
    if not build_file:
        info = BuildInfo(path=ref.from_, version=UNBUILT, sha256="0" * 64)
    else:
        info = _read_build(build_path, tree, path)
    return {**tree, "artifact": _signed(info, section.get("signature"))}


def _signed(info: BuildInfo, signature: Any) -> dict[str, Any]:
    """The build's artifact, with the spec's `signature` (how to check it) and the signature file the build named
    (which comes before the spec's own `signature.path`)."""
    artifact = info.model_dump(exclude={"signature"})
    if signature is None:
        return artifact
    signature = _plain(signature)
    if info.signature and isinstance(signature, dict):
        signature = {**signature, "path": info.signature}
    return {**artifact, "signature": signature}


UNBUILT = "unbuilt"  # the placeholder version of an artifact whose build file was not read


def _read_build(build_path: Path, tree: CommentedMap, path: Path) -> BuildInfo:
    def refuse(message: str) -> SpecError:
        line, column, _ = _locate(tree, ("artifact", "from"))
        return SpecError([SpecIssue(str(path), line, column, "artifact.from", message)])

    try:
        if not build_path.is_file():
            what = "is not a regular file" if build_path.exists() else "does not exist"
            raise refuse(f"{build_path} {what}: run the build first (it writes the tarball's path, version and "
                         "sha256 there), or deploy with --artifact PATH")
        text = _read_text(build_path)
    except OSError as exc:
        raise refuse(f"cannot read {build_path}: {exc.strerror or exc}") from None
    data = _parse(text, build_path)
    if not isinstance(data, CommentedMap):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SpecError([SpecIssue(str(build_path), 1, 1, "", "expected an object with path, version and sha256, "
                                   f"the file is {kind}")])
    return _validate(BuildInfo, data, data, build_path)


def _check_working_dir(loaded: LoadedSpec) -> None:
    """An absolute working_dir must be in the release the service (or a process) runs (the model sees one
    section at a time)."""
    spec = loaded.spec
    places = [(("service", "working_dir"), spec.service.working_dir if spec.service else None),
              *((("processes", name, "working_dir"), process.working_dir) for name, process in spec.processes.items())]
    if not spec.release:
        return
    current = f"{spec.release.root}/current"
    issues = [loaded.issue(where, f"'{work}' is outside the running release: write it relative to it (like 'web') "
                                  f"or under {current}")
              for where, work in places if work and work.startswith("/") and work != current
              and not work.startswith(current + "/")]
    if issues:
        raise SpecError(issues)


def _check_process_units(loaded: LoadedSpec) -> None:
    """Each process's unit is its own: not the service's, not another process's (their defaults are unique)."""
    spec, seen = loaded.spec, {loaded.spec.service_name: "the service"}
    issues = []
    for name, unit in spec.process_units:
        if unit in seen:
            where = ("processes", name, "unit") if spec.processes[name].unit else ("processes", name)
            issues.append(loaded.issue(where, f"unit '{unit}' is already {seen[unit]}'s: each process needs its own"))
        seen[unit] = f"process {name}"
    if issues:
        raise SpecError(issues)


def _parse(text: str, path: Path) -> Any:
    """The file's tree, once its event stream is within the limits (see spec/limits.py)."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        limits.check_text(text)
        limits.check_events(yaml.parse(text))
        return yaml.load(text)
    except limits.LimitExceeded as exc:
        raise SpecError([SpecIssue(str(path), exc.line, exc.column, exc.field, exc.message)]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        if path.suffix == ".json":
            problem = _json_problem(text) or problem
        raise SpecError([SpecIssue(str(path), line, column, "", f"not valid {_kind(path)}: {problem}")]) from None
    except ReaderError as exc:  # a character YAML does not allow in a file (NUL, other control characters)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"character U+{code:04X}{' (NUL)' if code == 0 else ''} is not allowed in a {_kind(path)} file"
        line, column = limits.line_column(text, exc.position)
        raise SpecError([SpecIssue(str(path), line, column, "", f"not valid {_kind(path)}: {problem}")]) from None


def _json_problem(text: str) -> str | None:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except (ValueError, RecursionError):  # json's own limits (digits of an int, nesting): keep YAML's message
        return None
    return None


def _kind(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "YAML"


def _validate(model: type[M], data: Any, tree: Any, path: Path) -> M:
    try:
        return model.model_validate(_plain(data))
    except ValidationError as exc:
        raise SpecError(_issues(exc.errors(), tree, path, model)) from None


def _plain(node: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists, for the model."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _issues(errors: Iterable[Any], tree: Any, path: Path, model: type[BaseModel]) -> list[SpecIssue]:
    """One issue per field: union members' errors for the same field are merged."""
    by_loc: dict[Loc, list[Any]] = {}
    for error in errors:
        _, _, loc = _locate(tree, tuple(error["loc"]), error["type"] == "extra_forbidden")
        by_loc.setdefault(loc, []).append(error)
    issues = []
    for loc, errs in by_loc.items():
        line, column, _ = _locate(tree, loc, any(e["type"] == "extra_forbidden" for e in errs))
        issues.append(SpecIssue(str(path), line, column, _field_name(loc), _message(errs, loc, model)))
    return issues


def _locate(tree: Any, loc: Loc, at_key: bool = False) -> tuple[int, int, Loc]:
    """Line and column (1-based) of the deepest node of `loc` present in the file, and that path.

    Parts of a pydantic `loc` that are not keys in the file (union member names like 'int') are
    dropped, so the path names the user's field.
    """
    node, line, column, found = tree, 1, 1, ()
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            pos = node.lc.key(part) if at_key else node.lc.value(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            pos = node.lc.item(part)
            node = node[part]
        else:
            continue
        line, column, found = pos[0] + 1, pos[1] + 1, (*found, part)
    if not found and isinstance(tree, CommentedMap) and tree.lc.line is not None:
        line, column = tree.lc.line + 1, tree.lc.col + 1
    return line, column, found


def _field_name(loc: Loc) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _message(errors: list[Any], loc: Loc, model: type[BaseModel]) -> str:
    custom = [e for e in errors if e["type"] in ("value_error", "assertion_error")]
    if custom:
        return "; ".join(dict.fromkeys(str(e["ctx"]["error"]) for e in custom))
    if any(e["type"] == "extra_forbidden" for e in errors):
        return _unknown_key(loc, model)
    if any(e["type"] == "missing" for e in errors):
        missing = [e["loc"][-1] for e in errors if e["type"] == "missing"]
        return f"required field{'s' if len(missing) > 1 else ''} missing: {', '.join(map(str, missing))}"
    expected = list(dict.fromkeys(_expected(e) for e in errors))
    got = errors[0].get("input")
    text = f"expected {' or '.join(expected)}, got {_show(got)}"
    if any(e["type"] == "string_type" for e in errors) and isinstance(got, int | float) and not isinstance(got, bool):
        text += f' (quote it: "{got}")'
    return text


def _expected(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in TYPE_HINTS:
        return TYPE_HINTS[kind]
    if kind == "literal_error":
        return f"one of {ctx['expected']}"
    if kind == "string_pattern_mismatch":
        return PATTERN_HINTS.get(ctx["pattern"], f"a string matching {ctx['pattern']}")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()))
        return f"a number {sign} {bound}"
    if kind in ("too_short", "string_too_short"):
        return "a non-empty value" if ctx.get("min_length", 1) == 1 else f"at least {ctx['min_length']} items"
    if kind in ("too_long", "string_too_long"):
        return f"at most {ctx.get('max_length')} {'characters' if kind == 'string_too_long' else 'items'}"
    return str(error["msg"]).removeprefix("Input should be ")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _unknown_key(loc: Loc, model: type[BaseModel]) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(model, loc[:-1])
    text = f"unknown key '{key}'"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        text += f" (did you mean '{close[0]}'?)"
    elif allowed:
        text += f"; allowed here: {', '.join(allowed)}"
    return text


def _allowed_keys(root: type[BaseModel], parent: Loc) -> list[str]:
    """Field names of the model at `parent`, found by walking the root model's annotations."""
    current: Any = root
    for part in parent:
        current = _unwrap(current, part)
        if current is None:
            return []
    model = _unwrap(current, None)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _unwrap(tp: Any, part: str | int | None) -> Any:
    """Step from a type to what `part` selects: a model field, a list item, a dict value."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0], part)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _unwrap(options[0], part) if len(options) == 1 else None
    if part is None:
        return tp
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part))
        return field.annotation if field else None
    if origin is list and isinstance(part, int):
        return typing.get_args(tp)[0]
    if origin is dict:
        return typing.get_args(tp)[1]
    return None
