"""Every accepted tool form (OpenAI dicts, flat dicts, `ToolSpec`, Python functions) as `ToolSpec`s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gptoss_hub.errors import ToolError
from gptoss_hub.tools.functions import tool_from_function
from gptoss_hub.tools.spec import ToolSpec

__all__ = ["normalize_tools"]

if TYPE_CHECKING:
    pass


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


def normalize_tools(tools: Sequence[Any] | None) -> list[ToolSpec]:
    """Every accepted tool form turned into `ToolSpec`s; names must be unique."""
    specs: list[ToolSpec] = []
    for tool in tools or ():
        if isinstance(tool, ToolSpec):
            specs.append(tool)
        elif isinstance(tool, Mapping):
            specs.append(_from_mapping(tool))
        elif callable(tool):
            specs.append(tool_from_function(tool))
        else:
            raise ToolError(f"A tool must be a dict, a ToolSpec or a Python function, got {type(tool).__name__}.")
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ToolError(f"Tool names must be unique; repeated: {', '.join(duplicates)}.")
    return specs
