"""Function tools: definitions from OpenAI dicts or Python functions, and calling them.

A tool can be given as an OpenAI Chat Completions tool (`{"type": "function", "function": {...}}`), a
Responses-style flat dict (`{"type": "function", "name": ..., "parameters": ...}`), a bare definition
(`{"name": ..., "description": ..., "parameters": ...}`), a `ToolSpec`, or a Python function (sync or
async) whose type hints and docstring become the JSON schema (pydantic builds it).

Harmony shows the model each tool as TypeScript-like text, and its renderer knows only part of JSON
Schema: it prints `$ref` and `anyOf` as `any`, spells out only string enums, and prints an object's own
description in the middle of its declaration. So every `ToolSpec` rewrites its schema into the part
harmony renders faithfully (`harmony_schema`) and is test-rendered once, so that a tool the model could
not read fails where it is defined, with a `ToolSchemaError` naming the tool and the parameter.
"""

from gptoss_hub.errors import ToolSchemaError
from gptoss_hub.tools.functions import tool_from_function
from gptoss_hub.tools.normalize import normalize_tools
from gptoss_hub.tools.schema import harmony_schema
from gptoss_hub.tools.spec import ToolSpec
from gptoss_hub.tools.toolbox import Toolbox

__all__ = ["ToolSchemaError", "ToolSpec", "Toolbox", "harmony_schema", "normalize_tools", "tool_from_function"]
