"""`rollwright target add|list|update|remove|test`: the spec's targets and their inventories.

Every edit is a ruamel.yaml round trip, so comments, key order and quoting survive; on top of that the
change is spliced into the original text, so lines the edit does not concern keep their bytes even where
ruamel would re-dump them differently. An edit is checked before anything is written, and if the spec
does not load afterwards every file is put back as it was.
"""

from __future__ import annotations

import difflib
import io
import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from rollwright.errors import BadInput
from rollwright.files import replace_file
from rollwright.spec import deployconfig
from rollwright.spec.loader import LoadedSpec, load_spec
from rollwright.spec.model import NAME_RE, Target

Write = Callable[[str], None]
KEY_ORDER = tuple(Target.model_fields)  # where a new key goes in a target's mapping
FLAGS = ("production", "read_only", "require_signature", "become")
HOSTS_FILE = "hosts.yml"
RESERVED_GROUPS = ("all", "ungrouped")
HOST_ARG = re.compile(r"^(?P<group>[^:=\s]+):(?P<host>[^:=\s]+)=(?P<address>\S+)$")
GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HOST_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
ADDRESS = re.compile(r"^[A-Za-z0-9_.:%-]+$")
PREAMBLE = re.compile(r"\A(?:[ \t]*(?:#[^\n]*)?\n)*---[^\n]*\n")  # comments and `---` (ruamel drops them)
HOST_FORMAT = "GROUP:HOST=ADDRESS[:PORT], e.g. app:app1=192.0.2.11"
SSH_REASONS = ("Connection refused", "Connection timed out", "Operation timed out", "No route to host",
               "Network is unreachable", "Host key verification failed", "Permission denied",
               "Could not resolve hostname", "Name or service not known", "Connection reset",
               "Connection closed", "Missing sudo password", "Incorrect sudo password", "a password is required",
               "is not in the sudoers file", "not found")


# ---------------------------------------------------------------------------------------------- arguments


@dataclass(frozen=True)
class HostArg:
    """One `--host GROUP:HOST=ADDRESS[:PORT]`."""

    group: str
    name: str
    address: str
    port: int | None = None

    def variables(self, flow: bool) -> CommentedMap:
        data = CommentedMap(ansible_host=self.address)
        if self.port is not None:
            data["ansible_port"] = self.port
        if flow:
            data.fa.set_flow_style()
        return data

    def same_place(self, variables: Any) -> bool:
        """Whether an existing host's variables name the same address and port."""
        found = variables if isinstance(variables, dict) else {}
        return str(found.get("ansible_host", "")) == self.address and found.get("ansible_port") in (None, self.port)


def parse_host(text: str) -> HostArg:
    match = HOST_ARG.match(text.strip())
    if not match:
        raise BadInput(f"--host {text!r}: expected {HOST_FORMAT}")
    group, name, address = match["group"], match["host"], match["address"]
    if not GROUP_NAME.match(group) or group in RESERVED_GROUPS:
        raise BadInput(f"--host {text!r}: group {group!r} must be a name like app (letters, digits, '_'; "
                       f"not {' or '.join(RESERVED_GROUPS)})")
    if not HOST_NAME.match(name):
        raise BadInput(f"--host {text!r}: host name {name!r} must be letters, digits, '.', '-' or '_'")
    port: str | None = None
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", address)
    if bracketed:
        address, port = bracketed[1], bracketed[2]
    elif address.count(":") == 1:
        address, port = address.split(":")
    if not address or not ADDRESS.match(address) or (port is not None and not 1 <= int(port or 0) <= 65535):
        raise BadInput(f"--host {text!r}: expected {HOST_FORMAT} (an IP address or DNS name, a port 1-65535)")
    return HostArg(group, name, address, int(port) if port else None)


def parse_var(text: str) -> tuple[str, Any]:
    """`KEY=VALUE`: the value is read as a YAML scalar (2222 a number, true a boolean), else kept as text."""
    key, sep, raw = text.partition("=")
    if not sep or not GROUP_NAME.match(key):
        raise BadInput(f"--var {text!r}: expected KEY=VALUE with a variable name as KEY, e.g. ansible_user=deploy")
    try:
        value = YAML(typ="safe").load(raw) if raw.strip() else raw
    except YAMLError:
        value = raw
    return key, value if isinstance(value, str | int | float | bool) else raw


def _check_name(spec_path: Path, name: str) -> None:
    if not re.match(NAME_RE, name) or len(name) > 63:
        raise BadInput(f"{spec_path}: {name!r} is not a valid target name: a lowercase name of letters, digits, "
                       "'-' or '_', starting with a letter (at most 63 characters)")


# ---------------------------------------------------------------------------------------------- YAML files


class YamlFile:
    """A YAML file read for a round-trip edit: change `data`, then `text()` is the edited file."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.original = text
        match = PREAMBLE.match(text)
        self.preamble = match.group(0) if match else ""
        self.yaml = YAML(typ="rt")
        self.yaml.preserve_quotes = True
        self.yaml.width = 4096  # never fold a long line the edit did not touch
        try:
            self.data = self.yaml.load(text[len(self.preamble):])
        except YAMLError as exc:
            raise BadInput(f"{path}: cannot read it as YAML: {exc}") from None
        self.yaml.indent(*_indents(self.data))
        self._base = self._dump()

    @classmethod
    def read(cls, path: Path) -> YamlFile:
        try:
            return cls(path, path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{path}: cannot read it: {exc}") from None

    def _dump(self) -> str:
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        return self.preamble + out.getvalue()

    def text(self) -> str:
        return splice(self.original, self._base, self._dump())


def _indents(data: Any) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation as the file uses it: ruamel writes its own otherwise."""
    found: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, CommentedMap):
            for key, value in node.items():
                if _is_block(value) and value.lc.line > node.lc.key(key)[0]:
                    column = node.lc.key(key)[1]
                    if isinstance(value, CommentedMap):
                        found.setdefault("mapping", value.lc.col - column)
                    else:
                        item = value.lc.item(0)[1] - column
                        found.setdefault("sequence", (item, item - 2))
                walk(value)
        elif isinstance(node, CommentedSeq):
            for value in node:
                walk(value)

    walk(data)
    mapping = found.get("mapping", 2)
    sequence, offset = found.get("sequence", (mapping + 2, mapping))
    return mapping, sequence, offset


def splice(original: str, base: str, new: str) -> str:
    """`new` applied to `original` as a change: `base` is ruamel's re-dump of the unchanged data, which can
    differ from the original (folded scalars, spacing); lines the change does not touch keep their bytes.
    Falls back to `new` itself when a changed line cannot be placed in the original."""
    if new == base:
        return original
    if base == original:
        return new
    old_lines, base_lines, new_lines = (t.splitlines(keepends=True) for t in (original, base, new))
    where: dict[int, int] = {}  # line of base -> the same line in the original
    for block in difflib.SequenceMatcher(None, base_lines, old_lines, autojunk=False).get_matching_blocks():
        where.update({block.a + k: block.b + k for k in range(block.size)})
    where[-1], where[len(base_lines)] = -1, len(old_lines)
    out: list[str] = []
    done = 0  # original lines already copied
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, base_lines, new_lines, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i1 < i2:  # lines replaced or deleted: the same lines, one after the other, in the original
            start = where.get(i1)
            inside = [where.get(i) for i in range(i1, i2)]
            if start is None or inside != list(range(start, start + i2 - i1)):
                return new
            end = start + i2 - i1
        else:  # lines inserted: after the line before them, or before the line after them
            before, after = where.get(i1 - 1), where.get(i1)
            if before is not None:
                start = before + 1
            elif after is not None:
                start = after
            else:
                return new
            end = start
        if start < done:
            return new
        out += old_lines[done:start] + new_lines[j1:j2]
        done = end
    return "".join(out + old_lines[done:])


# Comments after the last line of an entry belong to whatever follows it (the next entry, the next
# section); ruamel keeps them on the entry's deepest last item, so they move when entries come and go.


def _is_block(node: Any) -> bool:
    return isinstance(node, CommentedMap | CommentedSeq) and bool(node) and not node.fa.flow_style()


def _slot(container: Any, key: Any) -> tuple[Any, Any, int]:
    """Where the comment after an entry lives: (container, key, index in its comment list)."""
    value = container[key]
    while _is_block(value):
        key = len(value) - 1 if isinstance(value, CommentedSeq) else list(value)[-1]
        container, value = value, value[key]
    return container, key, 0 if isinstance(container, CommentedSeq) else 2


def _take(container: Any, key: Any) -> str:
    """Remove and return the lines after an entry (its end-of-line comment stays)."""
    holder, slot, index = _slot(container, key)
    comments = holder.ca.items.get(slot)
    token = comments[index] if comments and len(comments) > index else None
    if token is None or not isinstance(token.value, str):
        return ""
    first, newline, rest = token.value.partition("\n")
    token.value = first + newline
    return rest


def _put(container: Any, key: Any, text: str) -> None:
    """Put lines after an entry (below its end-of-line comment, if any)."""
    if not text:
        return
    holder, slot, index = _slot(container, key)
    comments = holder.ca.items.setdefault(slot, [None, None, None, None])
    token = comments[index]
    if token is None or not isinstance(token.value, str):
        comments[index] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        token.value = (token.value if token.value.endswith("\n") else token.value + "\n") + text


def _append(mapping: CommentedMap, key: str, value: Any) -> None:
    """mapping[key] = value as its last entry; what followed the old last entry follows the new one."""
    if key in mapping:
        mapping[key] = value
        return
    tail = _take(mapping, list(mapping)[-1]) if mapping else ""
    mapping[key] = value
    _put(mapping, key, tail)


def _insert(mapping: CommentedMap, key: str, value: Any, order: tuple[str, ...]) -> None:
    """Set key, placing a new one after the existing keys that come before it in `order`."""
    if key in mapping:
        mapping[key] = value
        return
    rank = order.index(key)
    position = max((i + 1 for i, k in enumerate(mapping) if k in order and order.index(k) < rank), default=0)
    if position == len(mapping):
        _append(mapping, key, value)
    else:
        mapping.insert(position, key, value)


def _remove(mapping: CommentedMap, key: Any, leftover: str = "") -> str:
    """Delete an entry with the comments just above it; the lines after it stay where they were.
    Returns those lines when the mapping is left empty (the caller places them)."""
    keys = list(mapping)
    index = keys.index(key)
    tail = leftover + _take(mapping, key)
    del mapping[key]
    mapping.ca.items.pop(key, None)
    if index > 0:
        _take(mapping, keys[index - 1])  # the comments above the removed entry
        _put(mapping, keys[index - 1], tail)
        return ""
    if mapping and tail:  # they now come before the first entry
        comments = mapping.ca.items.setdefault(keys[1], [None, None, None, None])
        lines = [CommentToken(line.lstrip(" "), CommentMark(len(line) - len(line.lstrip(" "))), None)
                 for line in tail.splitlines(keepends=True)]
        comments[1] = lines + list(comments[1] or [])
        return ""
    return tail


# ---------------------------------------------------------------------------------------------- inventories


def inventory_file(base_dir: Path, inventory: str) -> Path:
    """The YAML file holding a target's hosts: the inventory itself, or hosts.yml in its folder."""
    path = base_dir / inventory
    if path.is_file() or path.suffix in (".yml", ".yaml"):
        return path
    for name in (HOSTS_FILE, "hosts.yaml"):
        if (path / name).is_file():
            return path / name
    return path / HOSTS_FILE


@dataclass
class Inventory:
    """A YAML inventory (`all:` at the top) opened for editing."""

    file: YamlFile

    @classmethod
    def open(cls, path: Path, target: str) -> Inventory:
        if not path.is_file():
            raise BadInput(f"target '{target}': no inventory file {path} to edit")
        file = YamlFile.read(path)
        top = file.data
        if not isinstance(top, CommentedMap) or not isinstance(top.get("all"), CommentedMap):
            raise BadInput(f"{path}: not a YAML inventory with `all:` at the top; rollwright edits only those "
                           "(edit this one by hand)")
        return cls(file)

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def all(self) -> CommentedMap:
        return self.file.data["all"]

    def groups(self) -> Iterator[list[tuple[CommentedMap, str]]]:
        """Every group under `all`, as the chain of (mapping, key) that leads to it from `all`."""

        def walk(group: CommentedMap, chain: list[tuple[CommentedMap, str]]) -> Iterator[list[Any]]:
            children = group.get("children")
            for name, child in (children.items() if isinstance(children, CommentedMap) else []):
                path = [*chain, (group, "children"), (children, name)]
                yield path
                if isinstance(child, CommentedMap):
                    yield from walk(child, path)

        yield []
        yield from walk(self.all, [])

    def _group(self, chain: list[tuple[CommentedMap, str]]) -> Any:
        return chain[-1][0][chain[-1][1]] if chain else self.all

    def places(self, host: str) -> list[list[tuple[CommentedMap, str]]]:
        """Chains that lead from `all` to the host's entry, one per group it is in."""
        found = []
        for chain in self.groups():
            group = self._group(chain)
            hosts = group.get("hosts") if isinstance(group, CommentedMap) else None
            if isinstance(hosts, CommentedMap) and host in hosts:
                found.append([*chain, (group, "hosts"), (hosts, host)])
        return found

    def host_names(self) -> list[str]:
        names: dict[str, None] = {}
        for chain in self.groups():
            group = self._group(chain)
            hosts = group.get("hosts") if isinstance(group, CommentedMap) else None
            names.update(dict.fromkeys(hosts if isinstance(hosts, CommentedMap) else []))
        return list(names)

    def add_host(self, host: HostArg) -> None:
        for chain in self.places(host.name):
            group_name = chain[-3][1] if len(chain) > 2 else "all"
            if group_name == host.group:
                raise BadInput(f"{self.path}: host {host.name} is already in group {host.group}")
            if not host.same_place(chain[-1][0][host.name]):
                raise BadInput(f"{self.path}: host {host.name} already exists with another address (in group "
                               f"{group_name}); remove it first")
        # a new host's variables in the style of the others: {ansible_host: ...} or a block
        values = [chain[-1][0][chain[-1][1]] for name in self.host_names() for chain in self.places(name)]
        flow = not any(isinstance(v, CommentedMap) and v and not v.fa.flow_style() for v in values)
        chains = [c for c in self.groups() if c and c[-1][1] == host.group]
        if chains:
            parent, name = chains[0][-1]
            if not isinstance(parent[name], CommentedMap) or not parent[name]:  # `app:` or `app: {}`
                parent[name] = CommentedMap()
            group = parent[name]
        else:
            children = self.all.get("children")
            if not isinstance(children, CommentedMap):
                children = CommentedMap()
                if "children" in self.all:
                    self.all["children"] = children
                else:
                    self.all.insert(0, "children", children)
            group = CommentedMap()
            _append(children, host.group, group)
        if not isinstance(group.get("hosts"), CommentedMap) or not group["hosts"]:
            if "hosts" in group:
                group["hosts"] = CommentedMap()
            else:
                group.insert(0, "hosts", CommentedMap())
        _append(group["hosts"], host.name, host.variables(flow))

    def remove_host(self, host: str) -> None:
        """Take the host out of every group; a group (or `children`) left empty goes too."""
        chains = self.places(host)
        if not chains:
            raise BadInput(f"{self.path}: no host {host} (hosts: {', '.join(self.host_names()) or 'none'})")
        for chain in chains:
            leftover = ""
            for mapping, key in reversed(chain):
                leftover = _remove(mapping, key, leftover)
                if mapping:
                    break
            else:
                _put(self.file.data, "all", leftover)

    def set_var(self, key: str, value: Any) -> None:
        variables = self.all.get("vars")
        if not isinstance(variables, CommentedMap):
            variables = CommentedMap()
            if "vars" in self.all:
                self.all["vars"] = variables
            else:
                _append(self.all, "vars", variables)
        if key in variables and variables[key] == value and type(variables[key]) is type(value):
            return
        _append(variables, key, value)

    def unset_var(self, key: str) -> None:
        variables = self.all.get("vars")
        if not isinstance(variables, CommentedMap) or key not in variables:
            raise BadInput(f"{self.path}: no variable {key} under all: vars")
        leftover = _remove(variables, key)
        if not variables:
            _put(self.all, "vars", _remove(self.all, "vars", leftover))


def new_inventory(target: str, hosts: list[HostArg], variables: list[tuple[str, Any]]) -> str:
    """hosts.yml for a new target, in the style of inventories/staging/hosts.yml."""
    children = CommentedMap()
    for host in hosts:
        if host.group not in children:
            children[host.group] = CommentedMap(hosts=CommentedMap())
        children[host.group]["hosts"][host.name] = host.variables(True)
    data = CommentedMap(all=CommentedMap(children=children))
    if variables:
        data["all"]["vars"] = CommentedMap(variables)
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(data, out)
    return (f"# Inventory of target {target} (written by `rollwright target add`); edit it by hand or with\n"
            f"# `rollwright target update {target} --add-host/--remove-host/--var`.\n" + out.getvalue())


# ---------------------------------------------------------------------------------------------- writing


def _commit(spec_path: Path, writes: dict[Path, str]) -> None:
    """Write every file, then load the spec; when it does not load, put every file back as it was."""
    saved = {path: path.read_bytes() if path.exists() else None for path in writes}
    made = sorted({p for path in writes for p in [path.parent, *path.parent.parents] if not p.exists()},
                  key=lambda p: len(p.parts), reverse=True)
    try:
        for path, text in writes.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(path, text)
        load_spec(spec_path, build_file=False)
    except BaseException as exc:
        for path, data in saved.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                _write(path, data.decode("utf-8"))
        for folder in made:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if isinstance(exc, BadInput):
            raise BadInput(f"the edited spec does not load, so nothing was changed:\n{exc}") from None
        if isinstance(exc, OSError):
            raise BadInput(f"cannot write {getattr(exc, 'filename', '') or 'a file'}: {exc}; "
                           "nothing was changed") from None
        raise


def _write(path: Path, text: str) -> None:
    replace_file(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------- commands


def _load(spec_path: Path) -> tuple[LoadedSpec, YamlFile]:
    loaded = load_spec(spec_path, build_file=False)  # a target edit needs no build
    if deployconfig.looks_like(loaded.tree):
        raise BadInput(f"{spec_path}: a deployment-config file has no targets to edit; use a rollwright.yml spec")
    spec_file = YamlFile.read(spec_path)
    if not isinstance(spec_file.data, CommentedMap):
        raise BadInput(f"{spec_path}: expected a mapping of sections")
    return loaded, spec_file


def _target(loaded: LoadedSpec, name: str) -> Target:
    if name not in loaded.spec.targets:
        known = ", ".join(loaded.spec.targets) or "none"
        raise BadInput(f"{loaded.path}: no target '{name}' (targets: {known})")
    return loaded.spec.targets[name]


def _targets_map(spec_file: YamlFile) -> CommentedMap:
    data = spec_file.data
    if not isinstance(data.get("targets"), CommentedMap) or (data["targets"].fa.flow_style() and not data["targets"]):
        if "targets" in data:
            data["targets"] = CommentedMap()
        else:
            _append(data, "targets", CommentedMap())
    return data["targets"]


def add_target(spec_path: Path, name: str, *, hosts: list[str], variables: list[str], inventory: str | None = None,
               after: str | None = None, production: bool = False, read_only: bool = False, become: bool = False,
               require_signature: bool = False, write: Write = print) -> int:
    """A new target: with --host, a new inventory; without, an inventory that exists already (--inventory, or
    inventories/NAME), adopted as it is: referenced by the spec, never rewritten. Refused, with nothing written,
    when anything is wrong."""
    loaded, spec_file = _load(spec_path)
    _check_name(spec_path, name)
    if name in loaded.spec.targets:
        raise BadInput(f"{spec_path}: target '{name}' already exists (change it with `rollwright target update`)")
    if after is not None and after not in loaded.spec.targets:
        raise BadInput(f"{spec_path}: --after {after}: no such target (targets: "
                       f"{', '.join(loaded.spec.targets) or 'none'})")
    parsed = [parse_host(text) for text in hosts]
    seen: dict[str, HostArg] = {}
    for host in parsed:
        first = seen.setdefault(host.name, host)
        if first is not host and (first.group == host.group or (first.address, first.port) != (host.address,
                                                                                               host.port)):
            raise BadInput(f"--host {host.name} is given twice ({first.group}:{first.address}, "
                           f"{host.group}:{host.address})")
    parsed_vars = [parse_var(text) for text in variables]
    relative = inventory or f"inventories/{name}"
    folder = loaded.base_dir / relative
    hosts_path = folder if folder.suffix in (".yml", ".yaml") else folder / HOSTS_FILE
    adopt = folder.exists() and not (folder.is_dir() and folder != hosts_path and not any(folder.iterdir()))
    if adopt and (parsed or parsed_vars):
        raise BadInput(f"inventory {folder} already exists, and rollwright never rewrites an inventory it did not "
                       "write: drop --host/--var to adopt it as it is (then `rollwright target update "
                       f"{name} --add-host/--var` edits it), or choose another --inventory")
    if not adopt and not parsed:
        raise BadInput(f"target '{name}' needs at least one --host {HOST_FORMAT}, or --inventory PATH naming an "
                       f"inventory that exists ({folder} does not)")
    adopted = _adoptable(folder) if adopt else {}
    entry = CommentedMap(inventory=relative)
    if after:
        entry["after"] = after
    for flag, on in (("production", production), ("read_only", read_only), ("require_signature", require_signature),
                     ("become", become)):
        if on:
            entry[flag] = True
    _append(_targets_map(spec_file), name, entry)
    writes = {spec_path: spec_file.text()}
    if not adopt:
        writes = {hosts_path: new_inventory(name, parsed, parsed_vars), **writes}
    _commit(spec_path, writes)
    if adopt:
        counts = " ".join(f"{group}:{count}" for group, count in adopted.items())
        write(f"added target {name} to {spec_path}: adopted the inventory {folder} as it is ({counts}; not "
              "rewritten)")
    else:
        groups = sorted({h.group for h in parsed})
        write(f"added target {name} to {spec_path}: {len(seen)} host(s) in {', '.join(groups)}, "
              f"inventory {hosts_path}")
    return 0


def _adoptable(path: Path) -> dict[str, int]:
    """Host count per group of an existing inventory a new target adopts; refused when it has no hosts."""
    from rollwright.inventory import inventory_groups

    try:
        found = inventory_groups(path)
    except BadInput:
        raise BadInput(f"inventory {path} has no hosts that Ansible can read; fix it, or give --host to write a "
                       "new inventory elsewhere (--inventory)") from None
    return {g: len(h) for g, h in found.items() if g != "all" and (g != "ungrouped" or h)}


@dataclass
class Changes:
    """What `target update` changes; None leaves a setting as it is."""

    add_hosts: list[str] = field(default_factory=list)
    remove_hosts: list[str] = field(default_factory=list)
    set_vars: list[str] = field(default_factory=list)
    unset_vars: list[str] = field(default_factory=list)
    after: str | None = None
    no_after: bool = False
    production: bool | None = None
    read_only: bool | None = None
    require_signature: bool | None = None
    become: bool | None = None


def update_target(spec_path: Path, name: str, changes: Changes, write: Write = print) -> int:
    """Edit a target's inventory and its settings in the spec; refused, with nothing written, when anything is wrong."""
    loaded, spec_file = _load(spec_path)
    target = _target(loaded, name)
    flags = {flag: getattr(changes, flag) for flag in FLAGS if getattr(changes, flag) is not None}
    inventory_edits = changes.add_hosts or changes.remove_hosts or changes.set_vars or changes.unset_vars
    if not (inventory_edits or flags or changes.after or changes.no_after):
        raise BadInput("nothing to change: give --add-host, --remove-host, --var, --unset-var, --after, --no-after "
                       "or a --[no-]production/--[no-]read-only/--[no-]require-signature/--[no-]become flag")
    done: list[str] = []
    writes: dict[Path, str] = {}
    if inventory_edits:
        inventory = Inventory.open(inventory_file(loaded.base_dir, target.inventory), name)
        for text in changes.remove_hosts:
            inventory.remove_host(text)
            done.append(f"removed host {text}")
        for host in map(parse_host, changes.add_hosts):
            inventory.add_host(host)
            done.append(f"added host {host.name} to {host.group}")
        for key, value in map(parse_var, changes.set_vars):
            inventory.set_var(key, value)
            done.append(f"set {key}")
        for key in changes.unset_vars:
            inventory.unset_var(key)
            done.append(f"unset {key}")
        if not inventory.host_names():
            raise BadInput(f"{inventory.path}: that would leave target '{name}' without hosts; "
                           f"remove the target instead (`rollwright target remove {name}`)")
        if inventory.file.text() != inventory.file.original:
            writes[inventory.path] = inventory.file.text()
    entry = spec_file.data["targets"][name]
    if changes.after:
        _check_after(loaded, name, changes.after)
        _insert(entry, "after", changes.after, KEY_ORDER)
        done.append(f"after {changes.after}")
    elif changes.no_after and "after" in entry:
        _remove(entry, "after")
        done.append("after nothing")
    for flag, on in flags.items():
        if on:
            _insert(entry, flag, True, KEY_ORDER)
        elif flag in entry:
            _remove(entry, flag)
        done.append(f"{flag.replace('_', '-')} {'on' if on else 'off'}")
    if spec_file.text() != spec_file.original:
        writes[spec_path] = spec_file.text()
    if writes:
        _commit(spec_path, writes)
    write(f"updated target {name}: {', '.join(done)}" + ("" if writes else " (nothing changed)"))
    return 0


def _check_after(loaded: LoadedSpec, name: str, after: str) -> None:
    targets = loaded.spec.targets
    if after not in targets:
        raise BadInput(f"{loaded.path}: --after {after}: no such target (targets: {', '.join(targets)})")
    step: str | None = after
    while step is not None:
        if step == name:
            raise BadInput(f"{loaded.path}: target '{name}' cannot come after '{after}', which comes after it")
        step = targets[step].after if step in targets else None


def remove_target(spec_path: Path, name: str, *, delete_inventory: bool = False, write: Write = print) -> int:
    """Take a target out of the spec; its inventory stays unless `delete_inventory`."""
    loaded, spec_file = _load(spec_path)
    target = _target(loaded, name)
    dependents = [n for n, t in loaded.spec.targets.items() if t.after == name]
    if dependents:
        which = f"targets {', '.join(dependents)} come" if len(dependents) > 1 else f"target {dependents[0]} comes"
        raise BadInput(f"{spec_path}: {which} after '{name}'; change that first "
                       f"(`rollwright target update {dependents[0]} --no-after` or --after another target)")
    inventory = (loaded.base_dir / target.inventory).resolve()
    if delete_inventory:
        base = loaded.base_dir.resolve()
        if inventory == base or not inventory.is_relative_to(base):
            raise BadInput(f"inventory {inventory} is not inside the spec's folder {base}; not deleting it "
                           "(remove it by hand, or drop --delete-inventory)")
        sharing = [n for n, t in loaded.spec.targets.items()
                   if n != name and (loaded.base_dir / t.inventory).resolve() == inventory]
        if sharing:
            raise BadInput(f"inventory {inventory} is also the inventory of target {', '.join(sharing)}; "
                           "not deleting it (drop --delete-inventory)")
    targets = spec_file.data["targets"]
    leftover = _remove(targets, name)
    if not targets:
        spec_file.data["targets"] = CommentedMap()
        _put(spec_file.data, "targets", leftover)
    _commit(spec_path, {spec_path: spec_file.text()})
    kept = f"; its inventory {inventory} is kept"
    if delete_inventory and inventory.exists():
        if inventory.is_dir():
            shutil.rmtree(inventory)
        else:
            inventory.unlink()
        kept = f"; deleted its inventory {inventory}"
    write(f"removed target {name} from {spec_path}{kept}")
    return 0


def _flags(target: Target) -> list[str]:
    flags = [name.replace("_", "-") for name in FLAGS if name != "become" and getattr(target, name)]
    if target.after:
        flags.append(f"after {target.after}")
    if target.become:
        flags.append("become" if target.become_user == "root" else f"become {target.become_user}")
    return flags


def list_targets(spec_path: Path, write: Write = print, *, as_json: bool = False) -> int:
    """Every target: its inventory, hosts per group and flags."""
    from rollwright.inventory import inventory_groups

    loaded = load_spec(spec_path, build_file=False)
    rows = []
    for name, target in loaded.spec.targets.items():
        path = (loaded.base_dir / target.inventory).resolve()
        groups: dict[str, int] = {}
        hosts, problem = 0, ""
        try:
            if not path.exists() or (path.is_dir() and not any(path.iterdir())):
                raise BadInput("missing" if not path.exists() else "empty folder")
            found = inventory_groups(path)
        except BadInput as exc:
            problem = str(exc).removeprefix(f"{path}: ")
        except Exception as exc:  # an inventory ansible cannot parse: say so, list the others
            problem = " ".join(str(exc).split())[:80]
        else:
            hosts = len(found.get("all", []))
            groups = {g: len(h) for g, h in found.items() if g != "all" and (g != "ungrouped" or h)}
        rows.append({"name": name, "inventory": target.inventory, "path": str(path), "hosts": hosts,
                     "groups": groups, "problem": problem, "production": target.production,
                     "read_only": target.read_only, "after": target.after, "become": target.become,
                     "become_user": target.become_user, "flags": _flags(target)})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        write(f"{spec_path}: no targets (add one with `rollwright target add NAME --host GROUP:HOST=ADDRESS`)")
        return 0
    table = [("name", "inventory", "hosts", "flags")]
    for row in rows:
        counts = " ".join(f"{g}:{n}" for g, n in row["groups"].items()) or "-"
        table.append((row["name"], row["inventory"], f"({row['problem']})" if row["problem"] else counts,
                      ", ".join(row["flags"]) or "-"))
    _table(write, table)
    return 0


def _table(write: Write, rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths,
                                                                                                  strict=True))]
        write("  ".join(cells).rstrip())


# ---------------------------------------------------------------------------------------------- test


@dataclass
class HostCheck:
    """One host of `target test`: can Ansible reach it over SSH, and does privilege escalation work there."""

    host: str
    groups: list[str]
    address: str
    reachable: bool | None = None
    reachable_reason: str = ""
    sudo: bool | None = None
    sudo_reason: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.reachable and self.sudo)


def _inventory_hosts(inventory: Path) -> list[HostCheck]:
    """The hosts of a generated project's inventory, in inventory order, with their groups and address."""
    from ansible.inventory.helpers import get_group_vars
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils.vars import combine_vars

    manager = InventoryManager(loader=DataLoader(), sources=[str(inventory)])
    checks = []
    for host in manager.get_hosts():
        variables = combine_vars(get_group_vars(host.get_groups()), host.vars)
        address = str(variables.get("ansible_host") or host.name)
        port = variables.get("ansible_port")
        address = (f"[{address}]" if ":" in address else address) + (f":{port}" if port else "")
        groups = [g.name for g in host.get_groups() if g.name not in RESERVED_GROUPS]
        checks.append(HostCheck(host.name, groups, address))
    return checks


def _short(message: Any) -> str:
    text = " ".join(str(message or "").split())
    for reason in SSH_REASONS:
        if reason.lower() in text.lower():
            return reason[0].lower() + reason[1:]
    text = text.rsplit("ssh: ", 1)[-1]
    return text if len(text) <= 60 else text[:57] + "..."


def _results(events: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any], float]]:
    """host -> (ok/failed/unreachable, result, seconds) from a run's events."""
    found = {}
    for event in events:
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        if kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable") and data.get("host"):
            status = kind.removeprefix("runner_on_")
            found[str(data["host"])] = (status, dict(data.get("res") or {}), float(data.get("duration") or 0.0))
    return found


def check_target(spec_path: Path, name: str, write: Write = print, *, as_json: bool = False) -> int:
    """SSH (ansible.builtin.ping) and privilege escalation (`id -u` with become) on every host of a target."""
    from rollwright.run.engine import run_module
    from rollwright.run.workspace import prepare_workspace

    loaded = load_spec(spec_path)
    target = _target(loaded, name)
    workspace = prepare_workspace(loaded, name)
    checks = _inventory_hosts(workspace.project / "inventory")
    if not checks:
        raise BadInput(f"target '{name}': its inventory has no hosts")
    if not as_json:
        write(f"testing {len(checks)} host(s) of target {name}: SSH (ansible.builtin.ping), then become "
              f"{target.become_user} (id -u)")
    events: list[dict[str, Any]] = []
    run_module(workspace.project, "ansible.builtin.ping", "", workspace.runs, events.append)
    pings = _results(events)
    for check in checks:
        status, result, seconds = pings.get(check.host, ("missing", {}, 0.0))
        check.seconds += seconds
        check.reachable = status == "ok"
        if status == "missing":
            check.reachable_reason = "no answer from ansible"
        elif not check.reachable:
            check.reachable_reason = _short(result.get("msg") or result.get("module_stderr"))
    reachable = [c for c in checks if c.reachable]
    if reachable:
        events.clear()
        root = target.become_user == "root"
        run_module(workspace.project, "ansible.builtin.command", "id -u" if root else "id -un", workspace.runs,
                   events.append, become=True, become_user=target.become_user,
                   limit=",".join(c.host for c in reachable))
        runs = _results(events)
        expected = "0" if root else target.become_user
        for check in reachable:
            status, result, seconds = runs.get(check.host, ("missing", {}, 0.0))
            check.seconds += seconds
            answer = str(result.get("stdout", "")).strip()
            check.sudo = status == "ok" and answer == expected
            if status == "missing":
                check.sudo_reason = "no answer from ansible"
            elif status != "ok":
                check.sudo_reason = _short(result.get("msg") or result.get("module_stderr") or result.get("stderr"))
            elif not check.sudo:
                check.sudo_reason = f"became {answer or 'nobody'}, not {expected}"
    ok = all(c.ok for c in checks)
    if as_json:
        print(json.dumps({"target": name, "ok": ok, "hosts": [asdict(c) for c in checks]}, indent=2))
        return 0 if ok else 1

    def said(value: bool | None, reason: str) -> str:
        return "-" if value is None else ("yes" if value else "no") + (f" ({reason})" if reason else "")

    rows = [("host", "groups", "address", "reachable", "sudo", "seconds")]
    rows += [(c.host, ",".join(c.groups) or "-", c.address, said(c.reachable, c.reachable_reason),
              said(c.sudo, c.sudo_reason), f"{c.seconds:.1f}") for c in checks]
    _table(write, rows, right=(5,))
    failing = [c.host for c in checks if not c.ok]
    write(f"all {len(checks)} host(s) reachable, {target.become_user} via become works" if ok else
          f"{len(failing)} of {len(checks)} host(s) not ready: {', '.join(failing)}")
    return 0 if ok else 1
