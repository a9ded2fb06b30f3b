import json

import pytest

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.errors import ToolError
from gptoss_hub.tools import Toolbox, ToolSpec, normalize_tools, tool_from_function


def test_schema_from_function_signature_and_docstring():
    def search(query: str, limit: int = 5, tags: list[str] | None = None) -> list:
        """Search the index.

        Args:
            query: What to look for.
            limit: Most results.
        """
        return []

    spec = tool_from_function(search)
    assert spec.name == "search" and spec.description == "Search the index."
    props = spec.parameters["properties"]
    assert props["query"] == {"type": "string", "description": "What to look for."}
    assert props["limit"] == {"type": "integer", "description": "Most results.", "default": 5}
    assert spec.parameters["required"] == ["query"]


def test_demo_tool_schema():
    spec = tool_from_function(get_weather)
    assert spec.parameters["required"] == ["location"]
    assert get_weather("Tokyo") == get_weather(" tokyo ") | {"location": "Tokyo"}


def test_all_tool_forms_normalize():
    chat_style = {"type": "function", "function": {"name": "a", "parameters": {"type": "object", "properties": {}}}}
    flat_style = {"type": "function", "name": "b", "description": "B"}
    specs = normalize_tools([chat_style, flat_style, ToolSpec("c"), get_weather])
    assert [s.name for s in specs] == ["a", "b", "c", "get_weather"]


@pytest.mark.parametrize(
    ("tools", "match"),
    [
        ([{"type": "function", "function": {"description": "no name"}}], "name"),
        ([{"type": "web_search"}], "builtin_tools"),
        ([{"type": "function", "name": "bad name!"}], "invalid"),
        ([{"type": "function", "name": "x", "parameters": {"type": "array"}}], "object"),
        ([get_weather, get_weather], "unique"),
        ([42], "dict"),
    ],
)
def test_bad_tool_definitions_are_typed_errors(tools, match):
    with pytest.raises(ToolError, match=match):
        normalize_tools(tools)


def test_toolbox_calls_and_reports_failures_to_the_model():
    def boom() -> str:
        """Fails."""
        raise RuntimeError("no luck")

    box = Toolbox([get_weather, boom])
    assert json.loads(box.call("get_weather", {"location": "Paris"})) == get_weather("Paris")
    assert json.loads(box.call("boom", {})) == {"error": "RuntimeError: no luck"}
    assert "unknown tool" in json.loads(box.call("nope", {}))["error"]
    assert "unexpected keyword" in json.loads(box.call("get_weather", {"city": "Paris"}))["error"]
