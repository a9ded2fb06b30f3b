"""Function tools: definitions from OpenAI dicts or Python functions, and calling them.

A tool can be given as an OpenAI Chat Completions tool (`{"type": "function", "function": {...}}`), a
Responses-style flat dict (`{"type": "function", "name": ..., "parameters": ...}`), a `ToolSpec`, or a
plain Python function whose signature and docstring become the JSON schema (pydantic builds it).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gptoss_hub.errors import ToolError

if TYPE_CHECKING:
    from gptoss_hub.reply import ToolCall

__all__ = ["ToolSpec", "Toolbox", "normalize_tools", "tool_from_function"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ToolSpec:
    """One function tool as the model sees it."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    function: Callable[..., Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ToolError(
                f"Tool name {self.name!r} is invalid: use letters, digits, '_', '.' or '-' (at most 64), "
                "starting with a letter or '_'."
            )
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type", "object") != "object":
            raise ToolError(
                f"Tool {self.name!r}: `parameters` must be a JSON schema of type 'object', got {self.parameters!r}."
            )


def _docstring_parts(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google- or reST-style docstring into a summary and per-parameter descriptions."""
    summary_lines: list[str] = []
    params: dict[str, str] = {}
    in_args = False
    for line in inspect.cleandoc(doc).splitlines():
        stripped = line.strip()
        rest_param = re.match(r":param\s+(\w+):\s*(.*)", stripped)
        if rest_param:
            params[rest_param.group(1)] = rest_param.group(2)
            continue
        if stripped.lower() in ("args:", "arguments:", "parameters:"):
            in_args = True
            continue
        if in_args:
            arg = re.match(r"(\w+)(?:\s*\(.*?\))?:\s*(.*)", stripped)
            if arg:
                params[arg.group(1)] = arg.group(2)
                continue
            if stripped.endswith(":"):
                in_args = False
            continue
        if not params:
            summary_lines.append(line)
    return " ".join(s.strip() for s in summary_lines if s.strip()), params


def tool_from_function(function: Callable[..., Any]) -> ToolSpec:
    """A `ToolSpec` from a Python function: its name, docstring summary and typed parameters."""
    from pydantic import TypeAdapter

    signature = inspect.signature(function)
    summary, param_docs = _docstring_parts(function.__doc__ or "")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = parameter.annotation if parameter.annotation is not parameter.empty else str
        try:
            schema = TypeAdapter(annotation).json_schema()
        except Exception as exc:
            raise ToolError(
                f"Tool {function.__name__!r}: parameter {name!r} has type {annotation!r}, which has no JSON "
                "schema. Annotate it with a JSON-compatible type (str, int, float, bool, list, dict, a pydantic model)."
            ) from exc
        if name in param_docs:
            schema["description"] = param_docs[name]
        if parameter.default is parameter.empty:
            required.append(name)
        else:
            schema["default"] = parameter.default
        properties[name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return ToolSpec(function.__name__, summary, parameters, function)


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
    parameters = body.get("parameters") or {"type": "object", "properties": {}}
    return ToolSpec(body["name"], body.get("description") or "", dict(parameters))


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


class Toolbox:
    """Python functions the hub may call on the model's behalf (`Model.run`, `gptoss-hub chat --tool`)."""

    def __init__(self, tools: Sequence[Callable[..., Any] | ToolSpec]):
        self.specs = normalize_tools(tools)
        missing = [s.name for s in self.specs if s.function is None]
        if missing:
            raise ToolError(f"Tools {missing} have no Python function to call; pass the functions themselves.")

    def call(self, name: str, arguments: Mapping[str, Any] | None) -> str:
        """Call tool `name` and return its result as the text the model reads (JSON unless already a string).

        A tool that raises is reported to the model as `{"error": ...}` rather than ending the chat, so the
        model can recover; an unknown name is reported the same way.
        """
        spec = next((s for s in self.specs if s.name == name), None)
        if spec is None or spec.function is None:
            return json.dumps({"error": f"unknown tool {name!r}; available: {[s.name for s in self.specs]}"})
        try:
            result = spec.function(**dict(arguments or {}))
        except Exception as exc:
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        return result if isinstance(result, str) else json.dumps(result, default=str)

    def answer(self, call: ToolCall) -> dict[str, Any]:
        """Run a call the model made and return the `tool` message that carries its result."""
        if call.arguments is None:
            result = json.dumps({"error": f"{call.error}; call {call.name} again with a JSON object"})
        else:
            result = self.call(call.name, call.arguments)
        return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result}
