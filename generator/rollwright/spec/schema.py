"""The spec's JSON Schema, published by `rollwright schema` so editors complete and check specs."""

from __future__ import annotations

from typing import Any

from rollwright.spec.model import Spec


def spec_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "rollwright deploy spec"
    return schema
