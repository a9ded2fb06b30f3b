"""JSON schemas rewritten into the part of JSON Schema that harmony renders faithfully.

Harmony shows the model each tool as TypeScript-like text, and its renderer knows only part of JSON
Schema: it prints `$ref` and `anyOf` as `any`, spells out only string enums, and prints an object's own
description in the middle of its declaration.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gptoss_hub.errors import ToolSchemaError

__all__ = ["harmony_schema"]

if TYPE_CHECKING:
    pass

_PRIMITIVE_TYPES = ("string", "integer", "number", "boolean")
#: How a `null` union member is written for harmony, which prints `{"type": "null"}` as `any`.
_NULL_VARIANT: dict[str, Any] = {"type": ["null"]}
#: Keys of an object property that harmony prints above the property, so they stay outside a `oneOf` wrapper.
_PROPERTY_COMMENT_KEYS = ("title", "description", "examples", "default")


@dataclass(frozen=True)
class _Rewrite:
    tool: str
    definitions: Mapping[str, Any]  # by the `$ref` that names them: "#/$defs/Address"
    strip_titles: bool


def harmony_schema(parameters: Mapping[str, Any], *, tool: str = "tool") -> dict[str, Any]:
    """`parameters` rewritten, with the same meaning, into the part of JSON Schema harmony renders faithfully.

    - `$ref`s are inlined (harmony prints them as `any`); a recursive one raises `ToolSchemaError`.
    - `anyOf` becomes a type list (`number | null`), a `nullable` schema, or `oneOf` (harmony prints
      `anyOf` as `any`; its variants are disjoint in the schemas pydantic writes).
    - `const` becomes a one-value `enum`; string enums get `"type": "string"` (the only enums harmony spells
      out); other enums list their values in the description.
    - Descriptions become one line (harmony comments out only the first line).
    - An object property's description moves onto a one-variant `oneOf` around it, and an array's item
      description onto the array: harmony would print them mid-declaration.

    A schema already in that form comes back equal to the input.
    """
    return _rewrite_root(parameters, tool=tool, path="", strip_titles=False)


def _rewrite_root(schema: Mapping[str, Any], *, tool: str, path: str, strip_titles: bool) -> dict[str, Any]:
    definitions = {
        f"#/{key}/{name}": sub
        for key in ("definitions", "$defs")
        if isinstance(schema.get(key), Mapping)
        for name, sub in schema[key].items()
    }
    # A deep copy, so that no list or default in the spec is shared with the caller's dict.
    rewritten: dict[str, Any] = _rewrite(
        copy.deepcopy(dict(schema)), _Rewrite(tool, definitions, strip_titles), path, ()
    )
    return rewritten


def _rewrite(schema: Any, context: _Rewrite, path: str, seen: tuple[str, ...]) -> Any:
    if not isinstance(schema, Mapping):
        return schema  # `true`/`false` schemas and malformed values are left to the checks and to harmony
    schema, seen = _inline_refs(schema, context, path, seen)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("$defs", "definitions") or (key == "title" and context.strip_titles):
            continue
        out[key] = _rewrite_keyword(key, value, context, path, seen)
    for step in (
        _merge_single_all_of,
        _any_of_for_harmony,
        _const_as_enum,
        _enum_for_harmony,
        _item_description_on_array,
        _object_property_descriptions,
        _union_object_descriptions,
    ):
        out = step(out)
    return out


def _rewrite_keyword(key: str, value: Any, context: _Rewrite, path: str, seen: tuple[str, ...]) -> Any:
    if key == "properties" and isinstance(value, Mapping):
        return {name: _rewrite(sub, context, f"{path}.{name}" if path else name, seen) for name, sub in value.items()}
    if key in ("items", "additionalProperties"):
        return _rewrite(value, context, path, seen)
    if key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
        return [_rewrite(sub, context, path, seen) for sub in value]
    if key == "description" and isinstance(value, str):
        return " ".join(value.split())
    return value


def _inline_refs(
    schema: Mapping[str, Any], context: _Rewrite, path: str, seen: tuple[str, ...]
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """`schema` with its `$ref` replaced by the definition (keywords beside the `$ref` win)."""
    while "$ref" in schema:
        ref = schema["$ref"]
        if ref == "#" or ref in seen:
            raise ToolSchemaError(
                context.tool,
                path or None,
                f"its type {ref.rsplit('/', 1)[-1] or 'the schema'} contains itself, and a recursive type cannot "
                "be written out for the model. Use a fixed depth of nesting, or take the nested part as a JSON string.",
            )
        if ref not in context.definitions:
            raise ToolSchemaError(
                context.tool,
                path or None,
                f"$ref {ref!r} does not resolve; put its definition under the schema's top-level '$defs', or inline it.",
            )
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**context.definitions[ref], **siblings}
        seen = (*seen, ref)
    return schema, seen


def _merge_single_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    parts = schema.get("allOf")
    if not (isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], Mapping)):
        return schema
    rest = {key: value for key, value in schema.items() if key != "allOf"}
    return {**parts[0], **rest}


def _is_null(schema: Mapping[str, Any]) -> bool:
    return dict(schema) in ({"type": "null"}, _NULL_VARIANT)


def _is_bare_type(schema: Mapping[str, Any]) -> bool:
    return set(schema) == {"type"} and schema["type"] in _PRIMITIVE_TYPES


def _any_of_for_harmony(schema: dict[str, Any]) -> dict[str, Any]:
    variants = schema.get("anyOf")
    if not (isinstance(variants, list) and variants and all(isinstance(v, Mapping) for v in variants)):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    others = [v for v in variants if not _is_null(v)]
    nullable = len(others) < len(variants)
    if others and all(_is_bare_type(v) for v in others):
        types = list(dict.fromkeys(v["type"] for v in others)) + (["null"] if nullable else [])
        return {"type": types if len(types) > 1 else types[0], **rest}
    if len(others) == 1:
        return {**others[0], **rest, **({"nullable": True} if nullable else {})}
    return {**rest, "oneOf": [*others, *([dict(_NULL_VARIANT)] if nullable else [])]}


def _const_as_enum(schema: dict[str, Any]) -> dict[str, Any]:
    if "const" not in schema or "enum" in schema:
        return schema
    rest = {key: value for key, value in schema.items() if key != "const"}
    return {**rest, "enum": [schema["const"]]}


def _enum_for_harmony(schema: dict[str, Any]) -> dict[str, Any]:
    values = schema.get("enum")
    if not isinstance(values, list) or not values:
        return schema
    if all(isinstance(v, str) for v in values):
        return schema if "type" in schema else {"type": "string", **schema}
    # Harmony prints only string literals; the model learns other allowed values from the comment.
    note = "One of: " + ", ".join(json.dumps(v, default=str) for v in values) + "."
    description = schema.get("description", "")
    if note in description:
        return schema
    return {**schema, "description": f"{description} {note}".strip()}


def _item_description_on_array(schema: dict[str, Any]) -> dict[str, Any]:
    items = schema.get("items")
    if schema.get("type") != "array" or not isinstance(items, Mapping) or "description" not in items:
        return schema
    items = dict(items)
    description = items.pop("description")
    return {"description": description, **schema, "items": items}


def _wrap_described_object(schema: Any) -> Any:
    """An object property's description above a one-variant `oneOf`, where harmony prints it once.

    Harmony prints an object property's description above the key and again after `key:`; around a
    `oneOf` it prints it only above. A nullable object becomes a two-variant `oneOf` with `null`.
    """
    if not isinstance(schema, Mapping) or schema.get("type") != "object" or not schema.get("description"):
        return schema
    outer = {key: schema[key] for key in _PROPERTY_COMMENT_KEYS if key in schema}
    inner = {key: value for key, value in schema.items() if key not in (*_PROPERTY_COMMENT_KEYS, "nullable")}
    return {**outer, "oneOf": [inner, *([dict(_NULL_VARIANT)] if schema.get("nullable") else [])]}


def _object_property_descriptions(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return schema
    return {**schema, "properties": {name: _wrap_described_object(sub) for name, sub in properties.items()}}


def _union_object_descriptions(schema: dict[str, Any]) -> dict[str, Any]:
    """Object members of a union lose their own description, which harmony would print twice, once mid-type."""
    variants = schema.get("oneOf")
    if not isinstance(variants, list):
        return schema
    trimmed = [
        {key: value for key, value in v.items() if key != "description"}
        if isinstance(v, Mapping) and v.get("type") == "object"
        else v
        for v in variants
    ]
    return {**schema, "oneOf": trimmed}
