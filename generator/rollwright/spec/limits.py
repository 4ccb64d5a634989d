"""Limits on what a spec file may hold, checked on the YAML event stream before anything is built from it.

A deploy spec is a few kilobytes written by a person. A file that is far bigger, nests far deeper, expands
through aliases into millions of nodes (a "billion laughs") or holds values no field can take (NUL bytes,
numbers of thousands of digits, lists as keys) is refused here in milliseconds, naming the limit, the line
and the field, instead of costing minutes and gigabytes, or a traceback, further on. The walk is iterative
(no recursion) and stops at the first problem.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 50_000  # keys, values and collections, counting every alias as the whole tree it repeats
MAX_KEY_CHARS = 256
MAX_STRING_CHARS = 16 * 1024
MAX_NUMBER_DIGITS = 20

READ_AS = {"int": "a number", "float": "a number", "bool": "true or false", "null": "null",
           "timestamp": "a date"}
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"  # `<<: *defaults`
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
TOO_BIG = f"the file is over {MAX_FILE_BYTES // 1024} KiB (file size limit; a deploy spec is a few kilobytes)"
# ruamel's scanner slows down with the square of the open flow levels on a line (seconds for `[[[[...`), so a
# run of opening brackets deeper than the limit is refused before parsing; other nesting is caught on events.
BRACKET_RUN = re.compile(rf"(?:[\[{{][ \t,]*){{{MAX_DEPTH + 1}}}")
BAD_DIRECTIVE = re.compile(r"^%YAML(?![ \t]+1\.[12][ \t]*(?:#.*)?$).*$", re.MULTILINE)


class LimitExceeded(Exception):
    """The first thing in the file over a limit: where it is, the field holding it, and what is wrong."""

    def __init__(self, line: int, column: int, field: str, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.field, self.message = line, column, field, message


Refuse = Callable[[str], LimitExceeded]


@dataclass
class _Open:
    """A mapping or list still being read."""

    is_mapping: bool
    anchor: str | None
    nodes_before: int
    items: int = 0
    key: str = "?"


def check_text(text: str) -> None:
    """What the parser itself handles badly: a %YAML version other than 1.1 or 1.2 (ruamel.yaml fails with an
    assertion) and a deep run of flow brackets."""
    match = BAD_DIRECTIVE.search(text)
    if match:
        raise LimitExceeded(*line_column(text, match.start()), "", f"unsupported directive "
                            f"'{match.group(0)[:40]}': write YAML 1.2 (drop the %YAML line or write %YAML 1.2)")
    match = BRACKET_RUN.search(text)
    if match:
        raise LimitExceeded(*line_column(text, match.start()), "",
                            f"brackets nested more than {MAX_DEPTH} levels deep (nesting depth limit)")


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def check_events(events: Iterable[Event]) -> None:
    """Raise LimitExceeded for the first node over a limit; aliases count as the nodes they repeat."""
    resolver = VersionedResolver()
    stack: list[_Open] = []
    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    nodes = 0
    for event in events:
        if not isinstance(event, ScalarEvent | AliasEvent | CollectionStartEvent | CollectionEndEvent):
            continue
        mark = event.start_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if isinstance(event, CollectionEndEvent):
            closed = stack.pop()
            if closed.anchor is not None:
                sizes[closed.anchor] = nodes - closed.nodes_before
            continue
        parent = stack[-1] if stack else None
        is_key = parent is not None and parent.is_mapping and parent.items % 2 == 0
        place = _place(stack, is_key)
        if parent is not None:
            parent.items += 1

        refuse: Refuse = functools.partial(LimitExceeded, *where, place)

        tag = getattr(event, "tag", None)
        if tag is not None and str(tag) != "!":
            raise refuse(f"tag '{tag}': a deploy spec is plain YAML without tags")
        if isinstance(event, AliasEvent):
            if is_key:
                raise refuse(f"alias *{event.anchor} as a key: a key must be a name")
            if any(frame.anchor == event.anchor for frame in stack):
                raise refuse(f"alias *{event.anchor} inside its own anchor (a structure that contains itself)")
            nodes += sizes.get(str(event.anchor), 1)
        elif isinstance(event, CollectionStartEvent):
            kind = "mapping" if isinstance(event, MappingStartEvent) else "list"
            if is_key:
                raise refuse(f"a {kind} as a key: a key must be a name")
            if len(stack) >= MAX_DEPTH:
                raise refuse(f"nested more than {MAX_DEPTH} levels deep (nesting depth limit)")
            nodes += 1
            stack.append(_Open(kind == "mapping", event.anchor, nodes - 1))
        else:
            nodes += 1
            _check_scalar(event, is_key, resolver, refuse)
            if is_key and parent is not None:
                parent.key = event.value
            if event.anchor is not None:
                sizes[event.anchor] = 1
        if nodes > MAX_NODES:
            raise refuse(f"the spec expands to more than {MAX_NODES} values (alias expansion limit; "
                         "aliases count as everything they repeat)")


def _check_scalar(event: ScalarEvent, is_key: bool, resolver: VersionedResolver, refuse: Refuse) -> None:
    value = event.value
    limit, what = (MAX_KEY_CHARS, "key") if is_key else (MAX_STRING_CHARS, "string")
    if len(value) > limit:
        raise refuse(f"a {what} of {len(value)} characters (at most {limit}: {what} length limit)")
    if "\x00" in value:
        raise refuse(f"a NUL character (\\0) in a {what}")
    tag = str(resolver.resolve(ScalarNode, value, (True, False))) if event.style is None else STR_TAG
    if is_key and tag not in (STR_TAG, MERGE_TAG):
        kind = READ_AS.get(tag.rsplit(":", 1)[-1], "something else")
        raise refuse(f"key {value!r} is not a name (YAML reads it as {kind}); quote it if you mean the name: "
                     f"'{value}'")
    if tag == INT_TAG and len(value.lstrip("+-")) > MAX_NUMBER_DIGITS:
        raise refuse(f"a number of more than {MAX_NUMBER_DIGITS} digits (number size limit)")
    if tag == FLOAT_TAG and not _finite(value):
        raise refuse(f"{value[:40]!r} is not a finite number")


def _finite(value: str) -> bool:
    try:
        return math.isfinite(float(value.replace("_", "")))
    except ValueError:
        return False  # '.inf', '.nan' and their spellings


def _place(stack: list[_Open], is_key: bool) -> str:
    """The field path of the node being read, like `groups[2].deploy_command`."""
    name = ""
    for depth, frame in enumerate(stack):
        if frame.is_mapping:
            if depth == len(stack) - 1 and is_key:
                break
            name += f".{frame.key}" if name else frame.key
        else:
            name += f"[{frame.items}]" if depth == len(stack) - 1 else f"[{frame.items - 1}]"
    return name
