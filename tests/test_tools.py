import asyncio
import enum
import functools
import json
import threading
from dataclasses import dataclass
from typing import Literal, Optional

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.errors import ToolError
from gptoss_hub.harmony import render_text
from gptoss_hub.reply import ToolCall
from gptoss_hub.tools import Toolbox, ToolSchemaError, ToolSpec, harmony_schema, normalize_tools, tool_from_function

# --- Types used by the tools below (module level, so string annotations resolve) ---------------------


class Unit(enum.Enum):
    """Temperature unit."""

    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Address(BaseModel):
    """A postal address."""

    street: str = Field(description="Street and number.")
    city: str
    zip: Optional[str] = None  # noqa: UP045 - the typing spelling is part of what is tested


@dataclass
class Point:
    x: float
    y: float = 0.0


class Stop(TypedDict):
    name: str
    minutes: int


class Tree(BaseModel):
    label: str
    children: list["Tree"] = []


class Opaque:
    """A class pydantic has no schema for."""


def _developer_message(tools) -> str:
    text = render_text([{"role": "user", "content": "hi"}], tools=tools, current_date=None)
    start = text.index("<|start|>developer")
    return text[start : text.index("<|end|>", start)]


# --- Schemas from functions --------------------------------------------------------------------------


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
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "nullable": True, "default": None}
    assert spec.parameters["required"] == ["query"]


def test_demo_tool_schema():
    spec = tool_from_function(get_weather)
    assert spec.parameters["required"] == ["location"]
    assert get_weather("Tokyo") == get_weather(" tokyo ") | {"location": "Tokyo"}


def test_demo_tool_schema_is_unchanged_because_the_tiny_checkpoint_was_trained_on_it():
    assert tool_from_function(get_weather).parameters == {
        "type": "object",
        "properties": {"location": {"type": "string", "description": 'The city to get the weather for, e.g. "Tokyo".'}},
        "required": ["location"],
    }


def test_google_docstring_summary_is_the_first_paragraph_and_descriptions_continue():
    def f(city: str, days: int = 1) -> str:
        """Forecast the weather
        for a city.

        The forecast comes from a made-up service; this paragraph is not the summary.

        Args:
            city (str): The city,
                e.g. "Oslo".
            days: How many days: 1 to 7.

        Returns:
            days: not a parameter, the Returns section has ended the Args.
        """
        return ""

    spec = tool_from_function(f)
    assert spec.description == "Forecast the weather for a city."
    assert spec.parameters["properties"]["city"]["description"] == 'The city, e.g. "Oslo".'
    assert spec.parameters["properties"]["days"]["description"] == "How many days: 1 to 7."


def test_rest_docstring_params():
    def f(city: str, days: int = 1) -> str:
        """Forecast the weather.

        :param city: The city,
            e.g. "Oslo".
        :param int days: How many days.
        :returns: The forecast.
        """
        return ""

    spec = tool_from_function(f)
    assert spec.description == "Forecast the weather."
    assert spec.parameters["properties"]["city"]["description"] == 'The city, e.g. "Oslo".'
    assert spec.parameters["properties"]["days"]["description"] == "How many days."


def test_name_and_description_overrides_and_callable_forms():
    class Lookup:
        """Look a word up."""

        def __call__(self, word: str) -> str:
            return word

    def greet(greeting: str, name: str) -> str:
        """Greet someone."""
        return f"{greeting}, {name}"

    assert tool_from_function(Lookup()).name == "Lookup"
    assert tool_from_function(Lookup()).parameters["required"] == ["word"]
    partial = tool_from_function(functools.partial(greet, "hello"))
    assert partial.name == "greet" and partial.description == "Greet someone."
    assert list(partial.parameters["properties"]) == ["name"]
    renamed = tool_from_function(greet, name="hello", description="Say hello.")
    assert (renamed.name, renamed.description) == ("hello", "Say hello.")


def test_untyped_parameters_take_their_defaults_type():
    def f(a, limit=5, ratio=0.5, verbose=False):
        """Untyped."""

    props = tool_from_function(f).parameters["properties"]
    assert [props[k]["type"] for k in ("a", "limit", "ratio", "verbose")] == ["string", "integer", "number", "boolean"]


def test_enums_from_literal_and_enum_with_json_defaults():
    def f(unit: Unit = Unit.FAHRENHEIT, mode: Literal["walk", "drive"] = "walk", level: Literal[1, 2] = 1):
        """Enums."""

    props = tool_from_function(f).parameters["properties"]
    assert props["unit"] == {
        "description": "Temperature unit.",
        "enum": ["celsius", "fahrenheit"],
        "type": "string",
        "default": "fahrenheit",
    }
    assert props["mode"] == {"enum": ["walk", "drive"], "type": "string", "default": "walk"}
    # Harmony spells out only string literals, so other enums list their values in the description.
    assert props["level"]["description"] == "One of: 1, 2."


def test_nested_models_dataclasses_and_typeddicts_are_inlined():
    def plan(home: Address, points: list[Point], stops: dict[str, Stop], work: Address | None = None) -> str:
        """Plan a trip."""
        return ""

    params = tool_from_function(plan).parameters
    text = json.dumps(params)
    assert "$ref" not in text and "$defs" not in text and "title" not in text and "anyOf" not in text
    home = params["properties"]["home"]
    # The model's docstring is the property's description, above a one-variant oneOf (see harmony_schema).
    assert home["description"] == "A postal address."
    assert home["oneOf"][0]["properties"]["street"] == {"description": "Street and number.", "type": "string"}
    assert home["oneOf"][0]["required"] == ["street", "city"]
    assert params["properties"]["points"]["items"]["properties"]["y"] == {"default": 0.0, "type": "number"}
    assert params["properties"]["stops"]["additionalProperties"]["required"] == ["name", "minutes"]
    assert params["properties"]["work"]["oneOf"][1] == {"type": ["null"]}
    assert params["required"] == ["home", "points", "stops"]


def test_nested_and_enum_schemas_read_sensibly_in_the_developer_message():
    def plan(home: Address, unit: Unit = Unit.CELSIUS, points: list[Point] | None = None, work: Address | None = None):
        """Plan a trip.

        Args:
            home: Where the trip starts.
            points: Waypoints.
        """

    message = _developer_message([plan])
    assert "// Plan a trip.\ntype plan = (_: {" in message
    assert 'unit?: "celsius" | "fahrenheit", // default: celsius' in message
    assert (
        "// Where the trip starts.\nhome:\n | {\n   // Street and number.\n   street: string,\n   city: string,"
        in message
    )
    assert "zip?: string | null, // default: null" in message
    assert "points?: {\n    x: number,\n    y?: number, // default: 0.0\n    }[] | null, // default: null" in message
    assert "// A postal address.\n// default: null\nwork?:\n | {" in message and "\n | null\n," in message
    # Nothing rendered as `any`, no pydantic titles as comments, each description once.
    assert "any," not in message and "// Home\n" not in message and "// Zip" not in message
    assert message.count("Street and number.") == 2 and message.count("A postal address.") == 1


def test_optional_and_union_render_as_typescript_unions():
    def f(count: Optional[int] = None, key: int | str = 0, mode: Literal["a", "b"] | None = None):  # noqa: UP045
        """Unions."""

    message = _developer_message([f])
    assert "count?: number | null, // default: null" in message
    assert "key?: number | string, // default: 0" in message
    assert 'mode?: "a" | "b" | null, // default: null' in message


# --- Errors for tools the model could not read -------------------------------------------------------


def test_parameter_type_without_json_schema_is_a_typed_error():
    def f(thing: Opaque) -> str:
        """Uses an arbitrary class."""
        return ""

    with pytest.raises(ToolSchemaError, match="JSON-compatible") as caught:
        tool_from_function(f)
    assert (caught.value.tool, caught.value.field) == ("f", "thing")
    assert "Tool 'f', parameter 'thing'" in str(caught.value)
    assert isinstance(caught.value, ToolError)


def test_recursive_model_is_a_typed_error_naming_the_field():
    def grow(tree: Tree) -> str:
        """Recursive."""
        return ""

    with pytest.raises(ToolSchemaError, match="recursive") as caught:
        tool_from_function(grow)
    assert (caught.value.tool, caught.value.field) == ("grow", "tree.children")


def test_recursive_or_dangling_ref_in_a_dict_schema():
    node = {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}
    recursive = {"type": "object", "properties": {"head": {"$ref": "#/$defs/Node"}}, "$defs": {"Node": node}}
    with pytest.raises(ToolSchemaError, match="recursive") as caught:
        ToolSpec("walk", parameters=recursive)
    assert caught.value.field == "head.next"
    with pytest.raises(ToolSchemaError, match="does not resolve") as caught:
        ToolSpec("walk", parameters={"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}})
    assert caught.value.field == "x"


def test_schema_harmony_cannot_render_is_a_typed_error():
    deep = {"type": "string"}
    for _ in range(200):  # deeper than harmony's JSON parser allows
        deep = {"type": "array", "items": deep}
    with pytest.raises(ToolSchemaError, match="openai-harmony cannot render") as caught:
        ToolSpec("deep", parameters={"type": "object", "properties": {"ok": {"type": "string"}, "matrix": deep}})
    assert caught.value.field == "matrix"


def test_non_json_values_in_a_schema_are_a_typed_error():
    bad = {"type": "object", "properties": {"ratio": {"type": "number", "default": float("nan")}}}
    with pytest.raises(ToolSchemaError, match="not JSON") as caught:
        ToolSpec("f", parameters=bad)
    assert caught.value.field == "ratio"


def test_non_json_default_is_left_out_of_the_schema():
    missing = object()

    def f(x: str = missing) -> str:  # type: ignore[assignment]
        """Sentinel default."""
        return ""

    assert tool_from_function(f).parameters["properties"]["x"] == {"type": "string"}


# --- Tool dicts --------------------------------------------------------------------------------------


def test_all_tool_forms_normalize():
    chat_style = {"type": "function", "function": {"name": "a", "parameters": {"type": "object", "properties": {}}}}
    flat_style = {"type": "function", "name": "b", "description": "B"}
    bare = {"name": "d", "description": "D", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}
    specs = normalize_tools([chat_style, flat_style, ToolSpec("c"), get_weather, bare])
    assert [s.name for s in specs] == ["a", "b", "c", "get_weather", "d"]
    assert specs[4].description == "D" and specs[4].parameters["properties"] == {"x": {"type": "string"}}


def test_pydantic_style_dict_schemas_are_rewritten_for_harmony():
    # What `openai.pydantic_function_tool` sends: $defs, $ref, anyOf and titles.
    parameters = {
        "$defs": {"Unit": {"enum": ["celsius", "fahrenheit"], "title": "Unit", "type": "string"}},
        "properties": {
            "city": {"title": "City", "type": "string"},
            "unit": {"anyOf": [{"$ref": "#/$defs/Unit"}, {"type": "null"}], "default": None},
        },
        "required": ["city"],
        "title": "Weather",
        "type": "object",
    }
    spec = normalize_tools([{"type": "function", "function": {"name": "weather", "parameters": parameters}}])[0]
    assert spec.parameters["properties"]["unit"] == {
        "enum": ["celsius", "fahrenheit"],
        "title": "Unit",
        "type": "string",
        "default": None,
        "nullable": True,
    }
    assert "$defs" not in spec.parameters
    assert 'unit?: "celsius" | "fahrenheit" | null, // default: null' in _developer_message([spec])


def test_harmony_schema_keeps_renderable_schemas_and_is_idempotent():
    plain = {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City."}, "n": {"type": ["integer", "null"]}},
        "required": ["location"],
    }
    assert harmony_schema(plain) == plain
    rewritten = tool_from_function(lambda_free_plan).parameters
    assert harmony_schema(rewritten) == rewritten


def lambda_free_plan(home: Address, unit: Unit | None = None, level: Literal[1, 2] = 1) -> str:
    """Module-level tool for the idempotence test."""
    return ""


def test_multiline_descriptions_become_one_line():
    spec = ToolSpec("f", parameters={"type": "object", "properties": {"x": {"type": "string", "description": "a\nb"}}})
    assert spec.parameters["properties"]["x"]["description"] == "a b"
    assert "// a b\nx?: string," in _developer_message([spec])


@pytest.mark.parametrize(
    ("tools", "match"),
    [
        ([{"type": "function", "function": {"description": "no name"}}], "name"),
        ([{"type": "web_search"}], "builtin_tools"),
        ([{"type": "function", "name": "bad name!"}], "invalid"),
        ([{"type": "function", "name": "x", "parameters": {"type": "array"}}], "object"),
        ([{"type": "function", "name": "x", "parameters": "not a schema"}], "object"),
        ([{"type": "function", "name": "x", "parameters": {"type": "object", "properties": []}}], "properties"),
        ([{"type": "function", "name": "x", "parameters": {"type": "object", "properties": {"a": 5}}}], "'a'"),
        ([{"type": "function", "name": "x", "parameters": {"type": "object", "required": ["a"]}}], "required"),
        ([{"type": "function", "name": "x", "description": 3}], "description"),
        ([get_weather, get_weather], "unique"),
        ([{"name": "get_weather"}, get_weather], "unique"),
        ([42], "dict"),
    ],
)
def test_bad_tool_definitions_are_typed_errors(tools, match):
    with pytest.raises(ToolError, match=match):
        normalize_tools(tools)


# --- Calling tools -----------------------------------------------------------------------------------


def test_toolbox_calls_and_reports_failures_to_the_model():
    def boom() -> str:
        """Fails."""
        raise RuntimeError("no luck")

    box = Toolbox([get_weather, boom])
    assert json.loads(box.call("get_weather", {"location": "Paris"})) == get_weather("Paris")
    assert json.loads(box.call("boom", {})) == {"error": "RuntimeError: no luck"}
    assert "unknown tool" in json.loads(box.call("nope", {}))["error"]
    assert "unexpected keyword" in json.loads(box.call("get_weather", {"city": "Paris"}))["error"]


async def fetch(city: str, delay: float = 0.0) -> dict:
    """Async weather."""
    await asyncio.sleep(delay)
    return {"city": city, "thread": threading.current_thread().name}


async def fail_async() -> str:
    """Async failure."""
    raise ValueError("async no luck")


def test_async_tools_run_from_sync_code():
    box = Toolbox([fetch, fail_async])
    assert json.loads(box.call("fetch", {"city": "Oslo"}))["city"] == "Oslo"
    assert json.loads(box.call("fail_async", {})) == {"error": "ValueError: async no luck"}


def test_async_tool_called_synchronously_inside_a_running_loop_uses_a_worker_thread():
    box = Toolbox([fetch])

    async def inside_loop() -> dict:
        return json.loads(box.call("fetch", {"city": "Oslo"}))

    result = asyncio.run(inside_loop())
    assert result["city"] == "Oslo" and result["thread"] != threading.main_thread().name


def test_acall_awaits_async_tools_and_threads_sync_ones():
    def where() -> str:
        """Which thread runs me."""
        return threading.current_thread().name

    box = Toolbox([fetch, fail_async, where])

    async def calls():
        return await asyncio.gather(
            box.acall("fetch", {"city": "Oslo", "delay": 0.01}),
            box.acall("fail_async", {}),
            box.acall("where", {}),
            box.acall("nope", {}),
            box.acall("fetch", {}),
        )

    fetched, failed, thread, unknown, missing = asyncio.run(calls())
    assert json.loads(fetched) == {"city": "Oslo", "thread": threading.main_thread().name}
    assert json.loads(failed) == {"error": "ValueError: async no luck"}
    assert thread != threading.main_thread().name
    assert "unknown tool" in json.loads(unknown)["error"]
    assert "city: missing required argument" in json.loads(missing)["error"]


def test_arguments_are_validated_and_converted_before_the_call():
    seen = {}

    def ship(to: Address, unit: Unit, points: list[Point], count: int = 1) -> dict:
        """Ship it."""
        seen.update(to=to, unit=unit, points=points, count=count)
        return {"ok": True}

    box = Toolbox([ship])
    arguments = {"to": {"street": "1 Main St", "city": "Oslo"}, "unit": "celsius", "points": [{"x": 1}], "count": 2}
    assert json.loads(box.call("ship", arguments)) == {"ok": True}
    assert seen["to"] == Address(street="1 Main St", city="Oslo")
    assert seen["unit"] is Unit.CELSIUS and seen["points"] == [Point(x=1.0)] and seen["count"] == 2

    error = json.loads(box.call("ship", {**arguments, "unit": "kelvin", "count": "many"}))["error"]
    assert error.startswith("invalid arguments for ship: ")
    assert "unit: Input should be 'celsius' or 'fahrenheit'" in error
    assert "count: Input should be a valid integer" in error
    error = json.loads(box.call("ship", {**arguments, "to": {"street": "x"}}))["error"]
    assert "to.city: Field required" in error
    error = json.loads(box.call("ship", {**arguments, "points": [{"x": 1}, {"y": 2}]}))["error"]
    assert "points[1].x: Field required" in error


def test_validation_can_be_switched_off():
    def echo(count: int) -> str:
        """Echo the type."""
        return type(count).__name__

    assert Toolbox([echo], validate=False).call("echo", {"count": "3"}) == "str"
    assert Toolbox([echo]).call("echo", {"count": "3"}) == "int"  # pydantic's lax mode converts "3"


def test_positional_only_and_extra_keyword_parameters():
    def power(base: int, exp: int = 2, /, **options: object) -> dict:
        """Power."""
        return {"value": base**exp, "options": options}

    box = Toolbox([power])
    assert json.loads(box.call("power", {"base": 3})) == {"value": 9, "options": {}}
    assert json.loads(box.call("power", {"base": 2, "exp": 3, "verbose": True})) == {
        "value": 8,
        "options": {"verbose": True},
    }


def test_arguments_that_are_not_an_object_are_an_error_result():
    box = Toolbox([get_weather])
    assert "must be a JSON object" in json.loads(box.call("get_weather", ["Paris"]))["error"]  # type: ignore[arg-type]


def test_results_are_json_for_models_enums_and_dataclasses():
    def describe() -> dict:
        """Rich result."""
        return {"address": Address(street="1 Main St", city="Oslo"), "unit": Unit.CELSIUS, "point": Point(1, 2)}

    assert json.loads(Toolbox([describe]).call("describe", {})) == {
        "address": {"street": "1 Main St", "city": "Oslo", "zip": None},
        "unit": "celsius",
        "point": {"x": 1, "y": 2},
    }


def test_answer_and_aanswer_build_tool_messages():
    box = Toolbox([fetch])
    good = ToolCall(id="c1", name="fetch", arguments={"city": "Oslo"}, raw_arguments='{"city": "Oslo"}')
    bad = ToolCall(id="c2", name="fetch", arguments=None, raw_arguments="{oops", error="not JSON")
    message = box.answer(good)
    assert message["role"] == "tool" and message["tool_call_id"] == "c1" and message["name"] == "fetch"
    assert json.loads(message["content"])["city"] == "Oslo"
    assert json.loads(asyncio.run(box.aanswer(good))["content"])["city"] == "Oslo"
    for message in (box.answer(bad), asyncio.run(box.aanswer(bad))):
        assert json.loads(message["content"]) == {"error": "not JSON; call fetch again with a JSON object"}


def test_toolbox_needs_functions():
    with pytest.raises(ToolError, match="no Python function"):
        Toolbox([ToolSpec("bare")])


def test_unresolvable_string_annotation_is_a_typed_error():
    def f(x: "NoSuchType") -> str:  # noqa: F821
        """Forward reference to nothing."""
        return ""

    with pytest.raises(ToolSchemaError, match="cannot be resolved") as caught:
        tool_from_function(f)
    assert caught.value.field == "x"


def test_specs_are_built_once_per_function_and_per_tool_dict():
    def lookup(word: str) -> str:
        """Look a word up."""
        return word

    assert normalize_tools([lookup])[0] is normalize_tools([lookup])[0]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    assert normalize_tools([tool])[0] is normalize_tools([dict(tool)])[0]
    # Key order is what decides the order parameters are shown in, so it is part of the key.
    ab = {"name": "g", "parameters": {"type": "object", "properties": {"a": {}, "b": {}}}}
    ba = {"name": "g", "parameters": {"type": "object", "properties": {"b": {}, "a": {}}}}
    assert list(normalize_tools([ab])[0].parameters["properties"]) == ["a", "b"]
    assert list(normalize_tools([ba])[0].parameters["properties"]) == ["b", "a"]


def test_a_tool_dict_that_is_not_json_still_gets_its_typed_error():
    bad = {"name": "h", "parameters": {"type": "object", "properties": {"x": {"default": float("nan")}}}}
    with pytest.raises(ToolSchemaError, match="not JSON"):
        normalize_tools([bad])
