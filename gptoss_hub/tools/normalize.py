"""Every accepted tool form (OpenAI dicts, flat dicts, `ToolSpec`, Python functions) as `ToolSpec`s."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gptoss_hub.builtin_tools import RESERVED_FUNCTION_NAMES, builtin_tool_of
from gptoss_hub.errors import ToolError
from gptoss_hub.tools.functions import tool_from_function
from gptoss_hub.tools.spec import ToolSpec

__all__ = ["normalize_tools"]


def _from_mapping(tool: Mapping[str, Any]) -> ToolSpec:
    if tool.get("type", "function") != "function":
        raise ToolError(
            f"Only function tools are supported here, got type {tool.get('type')!r}. Builtin tools "
            "(browser, python) go in `builtin_tools`."
        )
    body = tool.get("function", tool)
    if not isinstance(body, Mapping) or "name" not in body:
        raise ToolError(
            f"A tool needs a name: expected {{'type': 'function', 'function': {{'name': ...}}}}, got {tool!r}."
        )
    parameters = body.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    return ToolSpec(body["name"], body.get("description") or "", parameters)


# Building a spec (schema from type hints, checks, a test render) costs about as much as rendering the
# whole prompt, and callers pass the same tools on every request: specs are kept per function, and per
# dict by its JSON text (key order included, as it decides the order parameters are rendered in).
@functools.lru_cache(maxsize=256)
def _cached_function_spec(function: Callable[..., Any]) -> ToolSpec:
    return tool_from_function(function)


@functools.lru_cache(maxsize=256)
def _cached_mapping_spec(tool_json: str) -> ToolSpec:
    return _from_mapping(json.loads(tool_json))


def _function_spec(function: Callable[..., Any]) -> ToolSpec:
    try:
        return _cached_function_spec(function)
    except TypeError:  # unhashable callables (a bound method of an unhashable object) are built each time
        return tool_from_function(function)


def _mapping_spec(tool: Mapping[str, Any]) -> ToolSpec:
    try:
        tool_json = json.dumps(tool, allow_nan=False)
    except (TypeError, ValueError):  # not plain JSON: built uncached, so the error names what is wrong
        return _from_mapping(tool)
    return _cached_mapping_spec(tool_json)


def normalize_tools(tools: Sequence[Any] | None) -> list[ToolSpec]:
    """Every accepted tool form turned into `ToolSpec`s; names must be unique.

    Specs are cached per function and per tool dict, so a function's signature is read once.
    """
    specs: list[ToolSpec] = []
    for tool in tools or ():
        if isinstance(tool, ToolSpec):
            specs.append(tool)
        elif isinstance(tool, Mapping):
            specs.append(_mapping_spec(tool))
        elif callable(tool):
            specs.append(_function_spec(tool))
        else:
            raise ToolError(f"A tool must be a dict, a ToolSpec or a Python function, got {type(tool).__name__}.")
    names = [s.name for s in specs]
    reserved = sorted(RESERVED_FUNCTION_NAMES.intersection(names))
    if reserved:
        builtin = builtin_tool_of(reserved[0])
        raise ToolError(
            f"A function tool may not be named {reserved[0]!r}: that is gpt-oss's builtin {builtin} tool, and the "
            f"model's calls to it could not be told apart. Offer it with builtin_tools=[{builtin!r}], or rename "
            "the function."
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ToolError(f"Tool names must be unique; repeated: {', '.join(duplicates)}.")
    return specs
