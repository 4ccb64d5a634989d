"""YAML output in the style ansible-lint's production profile expects, byte-stable for the same data."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.representer import RoundTripRepresenter


class Unsafe(str):
    """A string Ansible must never template (`!unsafe`): every value that comes from the spec."""


def as_data(value: Any) -> Any:
    """`value` with every string in it `Unsafe`, through dicts and lists: spec values are data, never templates."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, dict):
        return {key: as_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_data(item) for item in value]
    return value


def _represent_unsafe(representer: RoundTripRepresenter, data: Unsafe) -> Any:
    """`!unsafe` where a template could be (every Jinja delimiter starts with `{`); elsewhere a plain string,
    since ansible-core resolves an `!unsafe` scalar's type even when quoted (`!unsafe 'true'` is True)."""
    if "{" not in data:
        return representer.represent_str(str(data))
    return representer.represent_scalar("!unsafe", str(data), style="'")


def dump_yaml(data: Any, header: str = "") -> bytes:
    """`---`, 2-space mappings, indented sequences, no line folding, a trailing newline."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 150  # under ansible-lint's 160; long scalars fold at spaces (same value)
    yaml.explicit_start = True
    yaml.representer.add_representer(Unsafe, _represent_unsafe)
    out = io.StringIO()
    if header:
        out.write("".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines()))
    body = io.StringIO()
    yaml.dump(data, body)
    text = body.getvalue()
    lines = text.splitlines()
    if isinstance(data, list):  # ruamel indents a top-level list too; playbooks start at column 0
        lines = [line[2:] if line.startswith("  ") else line for line in lines]
    # ruamel leaves a space where it folds a long flow scalar; YAML drops it when folding, so strip it
    text = "".join(line.rstrip(" ") + "\n" for line in lines)
    out.write(text)
    return out.getvalue().encode()
