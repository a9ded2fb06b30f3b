"""`ToolSpec`: one function tool as the model sees it, checked and test-rendered where it is defined."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gptoss_hub.errors import ToolError, ToolSchemaError
from gptoss_hub.tools.schema import harmony_schema

__all__ = ["ToolSpec"]

if TYPE_CHECKING:
    pass

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ToolSpec:
    """One function tool as the model sees it.

    On creation `parameters` is checked, rewritten by `harmony_schema` (a schema already in the form
    harmony renders comes through unchanged) and test-rendered with openai-harmony; a definition the model
    could not read raises `ToolError` (`ToolSchemaError` when a parameter is at fault).
    """

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
        if not isinstance(self.description, str):
            raise ToolError(f"Tool {self.name!r}: `description` must be a string, got {self.description!r}.")
        _check_parameters(self.name, self.parameters)
        # Harmony prints a schema without a type as `any`; an object is what a missing type means here.
        parameters = {"type": "object", **harmony_schema(self.parameters, tool=self.name)}
        object.__setattr__(self, "parameters", parameters)
        _check_json(self.name, self.parameters)
        _check_renders(self)

    @functools.cached_property
    def render_key(self) -> tuple[str, str, str]:
        """(name, description, parameters as JSON): what the model is shown, hashable (prompts are cached by it)."""
        return (self.name, self.description, json.dumps(self.parameters))


def _check_parameters(tool: str, parameters: Any) -> None:
    """The structure harmony relies on: an object schema whose properties are schemas, `required` among them."""
    if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
        raise ToolError(f"Tool {tool!r}: `parameters` must be a JSON schema of type 'object', got {parameters!r}.")
    properties = parameters.get("properties", {})
    if not isinstance(properties, Mapping):
        raise ToolSchemaError(
            tool, None, f"`properties` must map each parameter name to its JSON schema, got {properties!r}."
        )
    for name, schema in properties.items():
        if not isinstance(name, str) or not name:
            raise ToolSchemaError(tool, None, f"parameter names must be non-empty strings, got {name!r}.")
        if not isinstance(schema, Mapping):
            raise ToolSchemaError(
                tool,
                name,
                f"its schema must be a JSON object such as {{'type': 'string'}} ({{}} for any value), got {schema!r}.",
            )
    required = parameters.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ToolSchemaError(tool, None, f"`required` must be a list of parameter names, got {required!r}.")
    for name in required:
        if name not in properties:
            raise ToolSchemaError(
                tool,
                name,
                "is listed in `required` but has no schema in `properties`; add one or drop it from `required`.",
            )


def _check_json(tool: str, parameters: Mapping[str, Any]) -> None:
    """Every value must be strict JSON: harmony serializes the schema and rejects NaN and Python objects."""
    for name, schema in parameters.get("properties", {}).items():
        try:
            json.dumps(schema, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ToolSchemaError(
                tool,
                name,
                f"its schema holds a value that is not JSON ({exc}). Use only strings, numbers, booleans, null, "
                "lists and dicts in schemas, defaults included.",
            ) from exc
    try:
        json.dumps(parameters, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ToolSchemaError(tool, None, f"`parameters` holds a value that is not JSON ({exc}).") from exc


def _render_tool(spec: ToolSpec, parameters: Mapping[str, Any]) -> None:
    from openai_harmony import DeveloperContent, Message, Role, ToolDescription

    from gptoss_hub.encoding import harmony_encoding

    content = DeveloperContent.new().with_function_tools(
        [ToolDescription.new(spec.name, spec.description, parameters=dict(parameters))]
    )
    harmony_encoding().render(Message.from_role_and_content(Role.DEVELOPER, content))


def _check_renders(spec: ToolSpec) -> None:
    """Render the tool once, as `render` will, so a schema harmony rejects fails here, with its parameter named."""
    from gptoss_hub.encoding import harmony_encoding

    harmony_encoding()  # a missing vocabulary is a TokenizerError of its own, not a fault of this tool
    try:
        _render_tool(spec, spec.parameters)
    except Exception as exc:
        culprit = None
        for name, schema in spec.parameters.get("properties", {}).items():
            try:
                _render_tool(spec, {"type": "object", "properties": {name: schema}})
            except Exception:
                culprit = name
                break
        raise ToolSchemaError(
            spec.name,
            culprit,
            f"openai-harmony cannot render this schema ({exc}). Simplify it, e.g. nest it less deeply.",
        ) from exc
