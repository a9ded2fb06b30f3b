"""Tools from Python functions: type hints and a Google- or reST-style docstring become the schema."""

from __future__ import annotations

import functools
import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gptoss_hub.errors import ToolError, ToolSchemaError
from gptoss_hub.tools.schema import _rewrite_root
from gptoss_hub.tools.spec import ToolSpec

__all__ = ["tool_from_function"]

if TYPE_CHECKING:
    pass

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
_JSON_TYPES = (bool, int, float, str)

_SECTIONS = {
    "args",
    "arguments",
    "parameters",
    "params",
    "keyword args",
    "keyword arguments",
    "other parameters",
    "returns",
    "return",
    "yields",
    "yield",
    "raises",
    "examples",
    "example",
    "notes",
    "note",
    "see also",
    "attributes",
    "warnings",
    "warning",
    "references",
    "todo",
}
_ARG_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "other parameters"}
_GOOGLE_ARG = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REST_FIELD = re.compile(r"^:(\w+)(?:\s+([^:]+))?:\s*(.*)$")
_REST_PARAM_FIELDS = {"param", "parameter", "arg", "argument", "key", "keyword"}


def _section(line: str) -> str | None:
    """The Google-style section a header line opens (`Args:` gives "args"), or `None`."""
    if not line.endswith(":"):
        return None
    name = line[:-1].strip().lower()
    return name if name in _SECTIONS else None


def _summary(lines: list[str]) -> str:
    """The docstring's first paragraph, on one line."""
    words: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped or _section(stripped) or _REST_FIELD.match(stripped):
            break
        words.append(stripped)
    return " ".join(words)


def _param_descriptions(lines: list[str]) -> dict[str, str]:
    """Descriptions from a Google `Args:` section or reST `:param x:` fields; continuation lines joined."""
    params: dict[str, str] = {}
    current: str | None = None  # the parameter whose description more-indented lines continue
    current_indent = 0
    entry_indent: int | None = None  # indentation of the entries of the open Args section
    in_args = False
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped:
            continue
        if current is not None and indent > current_indent:
            params[current] = f"{params[current]} {stripped}".strip()
            continue
        current = None
        rest = _REST_FIELD.match(stripped)
        if rest:
            kind, spec, text = rest.groups()
            if kind in _REST_PARAM_FIELDS and spec:
                current, current_indent = spec.split()[-1], indent  # ":param int x:" names x
                params[current] = text.strip()
            in_args = False
            continue
        section = _section(stripped)
        if section:
            in_args, entry_indent = section in _ARG_SECTIONS, None
            continue
        arg = _GOOGLE_ARG.match(stripped) if in_args else None
        if arg and entry_indent in (None, indent):
            entry_indent = indent
            current, current_indent = arg.group(1), indent
            params[current] = arg.group(2).strip()
        else:
            in_args = False
    return params


def _docstring_parts(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google- or reST-style docstring into a summary (first paragraph) and per-parameter descriptions."""
    lines = inspect.cleandoc(doc).splitlines()
    return _summary(lines), _param_descriptions(lines)


def _target(function: Callable[..., Any]) -> Any:
    """What holds the name, docstring and annotations of `function` (a partial's function, an object's class)."""
    while isinstance(function, functools.partial):
        function = function.func
    return function


def _function_name(function: Callable[..., Any]) -> str:
    target = _target(function)
    return getattr(target, "__name__", None) or type(target).__name__


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations (string annotations included); empty when they cannot be resolved."""
    target = _target(function)
    if not (inspect.isroutine(target) or inspect.isclass(target)):
        target = type(target).__call__  # a callable object keeps its annotations on `__call__`
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # an unresolvable forward reference: the raw annotation then fails with its own message
        return {}


def _signature(function: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise ToolError(
            f"Cannot read the parameters of {function!r} ({exc}); wrap it in a Python function with typed parameters."
        ) from exc


def _annotation(parameter: inspect.Parameter, hints: Mapping[str, Any]) -> Any:
    """The parameter's type; an untyped one takes its default's JSON type, else `str`."""
    annotation = hints.get(parameter.name, parameter.annotation)
    if annotation is not inspect.Parameter.empty:
        return annotation
    default = parameter.default
    return type(default) if isinstance(default, _JSON_TYPES) else str


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _parameter_schema(tool: str, name: str, annotation: Any) -> dict[str, Any]:
    """The JSON schema pydantic writes for one parameter, in harmony's form."""
    from pydantic import TypeAdapter

    if isinstance(annotation, str):  # left as text: `typing.get_type_hints` could not resolve it
        raise ToolSchemaError(
            tool,
            name,
            f"its type annotation {annotation!r} cannot be resolved. Define the types a tool uses at module "
            "level, where the tool's module can see them.",
        )
    try:
        schema = TypeAdapter(annotation).json_schema()
    except Exception as exc:
        raise ToolSchemaError(
            tool,
            name,
            f"its type {getattr(annotation, '__name__', annotation)!r} has no JSON schema ({_first_line(exc)}), so "
            "the model cannot be told how to fill it. Annotate it with a JSON-compatible type: str, int, float, "
            "bool, a Literal or Enum, a pydantic model, dataclass or TypedDict, or a list or dict of those.",
        ) from exc
    return _rewrite_root(schema, tool=tool, path=name, strip_titles=True)


_NO_DEFAULT = object()


def _json_default(annotation: Any, default: Any) -> Any:
    """`default` as JSON (an Enum member as its value, a model as a dict), or `_NO_DEFAULT`."""
    from pydantic import TypeAdapter

    try:
        value = TypeAdapter(annotation).dump_python(default, mode="json", warnings=False)
        json.dumps(value, allow_nan=False)
    except Exception:  # a sentinel object, NaN: the parameter stays optional, the model just isn't told its default
        return _NO_DEFAULT
    return value


def tool_from_function(
    function: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> ToolSpec:
    """A `ToolSpec` from a Python function (sync or async): its name, docstring summary and typed parameters.

    Type hints become the JSON schema via pydantic: parameters without a default are required; `Optional`,
    `Literal`, `enum.Enum`, pydantic models, dataclasses and TypedDicts, and lists and dicts of those, are
    written out in full. Descriptions come from a Google-style `Args:` section or reST `:param x:` fields.
    `name` and `description` override the function's name and docstring summary.
    """
    tool_name = name or _function_name(function)
    summary, param_docs = _docstring_parts(inspect.getdoc(_target(function)) or "")
    hints = _type_hints(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in _signature(function).parameters.values():
        if parameter.kind in _VARIADIC:
            continue
        annotation = _annotation(parameter, hints)
        schema = _parameter_schema(tool_name, parameter.name, annotation)
        if parameter.name in param_docs:
            schema["description"] = param_docs[parameter.name]
        if parameter.default is parameter.empty:
            required.append(parameter.name)
        elif (default := _json_default(annotation, parameter.default)) is not _NO_DEFAULT:
            schema["default"] = default
        properties[parameter.name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return ToolSpec(tool_name, summary if description is None else description, parameters, function)
