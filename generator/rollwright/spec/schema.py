"""The JSON Schemas `rollwright schema` publishes, so editors complete, explain and check specs as they are typed.

Written for editors: draft-07 (what VS Code's yaml-language-server implements; JetBrains reads it too), every
field with a description, and an optional section as a plain `$ref` to a definition that also takes null (the
loader reads `key:` with no value as unset), so a mistake inside it is reported at the field, not as "not valid
under any of the given schemas". The models' validators are expressed in the schema where JSON Schema can
(spec/model.py: patterns, limits, fields needed together); what it cannot express, rollwright checks alone:

- cross-references between values: `targets.<name>.after` names a target, group names are unique, `blue_green`'s
  two groups differ, a freeze window's `end` is after its `start`, an absolute `service.working_dir` is under
  `<root>/current`, `release.shared` paths do not overlap (the schema refuses only exact repeats);
- paths are checked as written: a spelling that only normalization reveals (`/srv/.` is `/srv`, `a/../b`
  climbs) and a path part over 255 bytes of UTF-8 (the schema counts characters) are rollwright's to refuse;
- the limits of the file itself (size, nesting, aliases, lengths of keys and strings, YAML tags: spec/limits.py),
  and what `generate` checks on disk (the artifact, inventories and migration files exist).

The schema is stricter in one way: a value of another type that rollwright converts (`port: "8080"`, `yes` for
true) it refuses, so an editor asks for the value's own type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from rollwright.spec.deployconfig import DeployConfig
from rollwright.spec.loader import PATTERN_HINTS
from rollwright.spec.model import Spec

DRAFT = "http://json-schema.org/draft-07/schema#"
NULL = {"type": "null"}
DATA = ("default", "examples", "enum", "const")  # values, not schemas


def spec_schema() -> dict[str, Any]:
    """The schema of `rollwright.yml`."""
    return _schema(Spec, "rollwright deploy spec")


def deployment_config_schema() -> dict[str, Any]:
    """The schema of the deployment-config JSON format (spec/deployconfig.py), which rollwright loads as a spec."""
    return _schema(DeployConfig, "rollwright deployment config")


def _schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    nullable: Counter[str] = Counter()
    for node in _nodes(schema):
        _plain_optional(node, nullable)
        if "patternProperties" in node:  # a mapping's keys: the model refuses every key its pattern refuses
            node.setdefault("additionalProperties", False)
        if node.get("pattern") in PATTERN_HINTS:
            node.setdefault("patternErrorMessage", f"expected {PATTERN_HINTS[node['pattern']]}")
    refs = Counter(node["$ref"] for node in _nodes(schema) if "$ref" in node)
    for ref, count in nullable.items():
        if refs[ref] != count:  # a required use of the definition would then take null, which the model refuses
            raise ValueError(f"{ref} is both optional and required in {model.__name__}")
        schema["$defs"][ref.rsplit("/", 1)[-1]]["type"] = ["object", "null"]
    return {"$schema": DRAFT, **schema, "title": title}


def _plain_optional(node: dict[str, Any], nullable: Counter[str]) -> None:
    """`anyOf: [X, null]` (pydantic's optional field) as X itself taking null."""
    options = node.get("anyOf", [])
    if len(options) != 2 or NULL not in options:
        return
    (inner,) = [o for o in options if o != NULL]
    if "$ref" in inner:
        nullable[inner["$ref"]] += 1
    elif isinstance(inner.get("type"), str):
        inner = {**inner, "type": [inner["type"], "null"]}
    else:
        return
    del node["anyOf"]
    node.update(inner)


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema object below `node`, depth first."""
    if isinstance(node, dict):
        yield node
        for key, value in list(node.items()):
            if key not in DATA:
                yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)
