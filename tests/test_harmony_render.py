import pytest
from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    ToolDescription,
)

from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.harmony import render, render_text

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


def _reference(messages):
    return harmony_encoding().render_conversation_for_completion(Conversation.from_messages(messages), Role.ASSISTANT)


def test_tool_conversation_matches_openai_harmony():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use metric units."},
        {"role": "user", "content": "Weather in Tokyo?"},
        {
            "role": "assistant",
            "thinking": "Need the tool.",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Tokyo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"temperature_c": 20}'},
    ]
    ids = render(messages, tools=[WEATHER], reasoning_effort="high", current_date="2025-03-01")
    expected = _reference(
        [
            Message.from_role_and_content(
                Role.SYSTEM,
                SystemContent.new()
                .with_reasoning_effort(ReasoningEffort.HIGH)
                .with_conversation_start_date("2025-03-01"),
            ),
            Message.from_role_and_content(
                Role.DEVELOPER,
                DeveloperContent.new()
                .with_instructions("Be brief.\n\nUse metric units.")
                .with_function_tools(
                    [ToolDescription.new("get_weather", "Get the weather", WEATHER["function"]["parameters"])]
                ),
            ),
            Message.from_role_and_content(Role.USER, "Weather in Tokyo?"),
            Message.from_role_and_content(Role.ASSISTANT, "Need the tool.").with_channel("analysis"),
            Message.from_role_and_content(Role.ASSISTANT, '{"location":"Tokyo"}')
            .with_channel("commentary")
            .with_recipient("functions.get_weather")
            .with_content_type("<|constrain|>json"),
            Message.from_author_and_content(Author.new(Role.TOOL, "functions.get_weather"), '{"temperature_c": 20}')
            .with_channel("commentary")
            .with_recipient("assistant"),
        ]
    )
    assert ids == expected
    assert ids == render(messages, tools=[WEATHER], reasoning_effort="high", current_date="2025-03-01")


def test_dict_arguments_are_json_dumped_and_strings_kept_verbatim():
    def call(arguments):
        return [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": arguments}}]},
        ]

    assert '{"location": "Paris"}' in render_text(call({"location": "Paris"}), current_date=None)
    assert '{ "location" :"Paris" }' in render_text(call('{ "location" :"Paris" }'), current_date=None)


def test_tool_name_comes_from_name_then_call_id_then_latest_call():
    base = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "a", "function": {"name": "first", "arguments": "{}"}},
                {"id": "b", "function": {"name": "second", "arguments": "{}"}},
            ],
        },
    ]
    assert "<|start|>functions.named to=assistant" in render_text(
        [*base, {"role": "tool", "name": "named", "content": "1"}]
    )
    assert "<|start|>functions.first to=assistant" in render_text(
        [*base, {"role": "tool", "tool_call_id": "a", "content": "1"}]
    )
    assert "<|start|>functions.second to=assistant" in render_text([*base, {"role": "tool", "content": "1"}])


def test_system_message_options():
    text = render_text(
        [{"role": "user", "content": "hi"}],
        reasoning_effort="low",
        model_identity="You are Tester.",
        current_date=None,
        builtin_tools=["python"],
    )
    assert text.startswith("<|start|>system<|message|>You are Tester.\nKnowledge cutoff: 2024-06\n\nReasoning: low")
    assert "Current date" not in text and "## python" in text
    assert text.endswith("<|start|>user<|message|>hi<|end|><|start|>assistant")


@pytest.mark.parametrize(
    ("messages", "options", "match"),
    [
        ([{"role": "user", "content": "hi"}], {"reasoning_effort": "max"}, "reasoning_effort"),
        ([{"role": "robot", "content": "hi"}], {}, "role"),
        ([{"role": "user", "content": [{"type": "image_url"}]}], {}, "text"),
        ([{"role": "user", "content": "x"}, {"role": "tool", "content": "1"}], {}, "name"),
        (["hello"], {}, "dict"),
    ],
)
def test_bad_input_is_a_typed_error(messages, options, match):
    with pytest.raises(InvalidRequestError, match=match):
        render(messages, **options)


def _call(call_id, city):
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": f'{{"location": "{city}"}}'},
    }


TWO_TURNS_MID_CHAIN = [
    {"role": "user", "content": "Weather in Tokyo?"},
    {"role": "assistant", "thinking": "TURN-ONE-CALL", "tool_calls": [_call("a", "Tokyo")]},
    {"role": "tool", "tool_call_id": "a", "content": "rainy"},
    {"role": "assistant", "thinking": "TURN-ONE-FINAL", "content": "Rainy in Tokyo."},
    {"role": "user", "content": "And Paris?"},
    {"role": "assistant", "thinking": "TURN-TWO-CALL", "tool_calls": [_call("b", "Paris")]},
    {"role": "tool", "tool_call_id": "b", "content": "snowy"},
]


def test_completed_turns_lose_their_reasoning_the_unfinished_turn_keeps_it():
    text = render_text(TWO_TURNS_MID_CHAIN, tools=[WEATHER], current_date=None)
    assert "TURN-ONE" not in text
    assert "TURN-TWO-CALL" in text
    assert "Rainy in Tokyo." in text and '{"location": "Tokyo"}' in text  # only the reasoning goes


def test_openai_harmony_alone_would_keep_completed_reasoning_mid_chain():
    # Why the hub applies its own rule: harmony's auto_drop_analysis keeps turn one's reasoning here.
    from gptoss_hub.harmony import build_conversation

    conversation = build_conversation(TWO_TURNS_MID_CHAIN, tools=[WEATHER], current_date=None, keep_reasoning=True)
    harmony_text = harmony_encoding().decode(
        harmony_encoding().render_conversation_for_completion(conversation, Role.ASSISTANT)
    )
    assert "TURN-ONE-CALL" in harmony_text


def test_keep_reasoning_keeps_every_analysis_message():
    text = render_text(TWO_TURNS_MID_CHAIN, tools=[WEATHER], current_date=None, keep_reasoning=True)
    assert all(marker in text for marker in ("TURN-ONE-CALL", "TURN-ONE-FINAL", "TURN-TWO-CALL"))


def test_content_beside_tool_calls_is_a_commentary_preamble():
    text = render_text(
        [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [_call("a", "Oslo")]},
        ],
        current_date=None,
    )
    assert text.endswith(
        "<|start|>assistant<|channel|>commentary<|message|>Let me check.<|end|>"
        "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json"
        '<|message|>{"location": "Oslo"}<|call|><|start|>assistant'
    )


def test_pydantic_messages_render_like_dicts():
    from pydantic import BaseModel

    class ChatMessage(BaseModel):
        role: str
        content: str | None = None
        name: str | None = None

    as_models = [ChatMessage(role="developer", content="Short answers."), ChatMessage(role="user", content="Hi")]
    as_dicts = [{"role": "developer", "content": "Short answers."}, {"role": "user", "content": "Hi"}]
    assert render(as_models, current_date=None) == render(as_dicts, current_date=None)


# --- The system and developer messages are rendered once and reused ------------------------------------

_SECOND_TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
}


@pytest.mark.parametrize(
    ("messages", "options"),
    [
        ([{"role": "user", "content": "hi"}], {}),
        ([{"role": "user", "content": "hi"}], {"current_date": None, "knowledge_cutoff": None}),
        ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], {"instructions": "First."}),
        (TWO_TURNS_MID_CHAIN, {"tools": [WEATHER], "reasoning_effort": "high"}),
        (TWO_TURNS_MID_CHAIN, {"tools": [WEATHER, _SECOND_TOOL], "keep_reasoning": True}),
        (TWO_TURNS_MID_CHAIN[:3], {"tools": [_SECOND_TOOL, WEATHER], "current_date": "2030-01-02"}),
        ([{"role": "user", "content": "hi"}], {"builtin_tools": ["browser", "python"], "model_identity": "Me."}),
        ([], {"tools": [WEATHER]}),
    ],
)
def test_reused_header_gives_the_ids_of_the_whole_conversation(messages, options):
    from gptoss_hub.harmony import build_conversation
    from gptoss_hub.harmony.render import _config

    whole = harmony_encoding().render_conversation_for_completion(
        build_conversation(messages, **options), Role.ASSISTANT, _config()
    )
    assert render(messages, **options) == whole
    assert render(messages, **options) == whole  # the second time from the cache


def test_header_cache_tells_apart_every_option():
    base = [{"role": "user", "content": "hi"}]
    variants = [
        {},
        {"reasoning_effort": "low"},
        {"current_date": "2025-01-01"},
        {"current_date": "2025-01-02"},
        {"tools": [WEATHER]},
        {"tools": [_SECOND_TOOL]},
        {"tools": [WEATHER, _SECOND_TOOL]},
        {"tools": [_SECOND_TOOL, WEATHER]},
        {"instructions": "A."},
        {"model_identity": "B."},
        {"knowledge_cutoff": "2025-01"},
        {"builtin_tools": ["python"]},
    ]
    rendered = [tuple(render(base, **options)) for options in variants]
    assert len(set(rendered)) == len(variants)


def test_header_options_of_the_wrong_type_are_typed_errors():
    with pytest.raises(InvalidRequestError, match="model_identity"):
        render([{"role": "user", "content": "hi"}], model_identity=["x"])
    with pytest.raises(InvalidRequestError, match="builtin_tools"):
        render([{"role": "user", "content": "hi"}], builtin_tools=["shell"])


def test_python_calls_and_results_render_as_openai_harmony_renders_them():
    code = 'import math\nx = {"r": 2}\nprint(math.pi * x["r"] ** 2)'  # code, not JSON: kept verbatim
    messages = [
        {"role": "user", "content": "Area of a circle of radius 2?"},
        {
            "role": "assistant",
            "thinking": "Compute it.",
            "tool_calls": [{"id": "p1", "type": "function", "function": {"name": "python", "arguments": code}}],
        },
        {"role": "tool", "tool_call_id": "p1", "content": "12.566370614359172\n"},
        # A later call answered by name, as `Model.run` and the servers write it.
        {"role": "assistant", "tool_calls": [{"id": "p2", "function": {"name": "python", "arguments": "x"}}]},
        {"role": "tool", "name": "python", "content": "{'r': 2}"},
    ]
    ids = render(messages, builtin_tools=["python"], current_date="2025-03-01")
    expected = _reference(
        [
            Message.from_role_and_content(
                Role.SYSTEM, SystemContent.new().with_conversation_start_date("2025-03-01").with_python_tool()
            ),
            Message.from_role_and_content(Role.USER, "Area of a circle of radius 2?"),
            Message.from_role_and_content(Role.ASSISTANT, "Compute it.").with_channel("analysis"),
            Message.from_role_and_content(Role.ASSISTANT, code)
            .with_channel("analysis")
            .with_recipient("python")
            .with_content_type("code"),
            Message.from_author_and_content(Author.new(Role.TOOL, "python"), "12.566370614359172\n")
            .with_recipient("assistant")
            .with_channel("analysis"),
            Message.from_role_and_content(Role.ASSISTANT, "x")
            .with_channel("analysis")
            .with_recipient("python")
            .with_content_type("code"),
            Message.from_author_and_content(Author.new(Role.TOOL, "python"), "{'r': 2}")
            .with_recipient("assistant")
            .with_channel("analysis"),
        ]
    )
    assert ids == expected
    text = harmony_encoding().decode(ids)
    assert "<|start|>assistant to=python<|channel|>analysis code<|message|>import math" in text
    assert "<|start|>python to=assistant<|channel|>analysis<|message|>12.566370614359172\n<|end|>" in text


def test_a_function_tool_may_not_take_the_python_tools_name():
    from gptoss_hub.errors import ToolError

    python_function = {"type": "function", "function": {"name": "python", "parameters": {"type": "object"}}}
    with pytest.raises(ToolError, match=r"builtin_tools=\['python'\], or rename"):
        render([{"role": "user", "content": "hi"}], tools=[python_function])


def test_browser_calls_and_results_render_as_openai_harmony_renders_them():
    page = "[0] tallest mountain\n**viewing lines [0 - 2] of 2**\n\nL0: \nL1: URL: \nL2: # Search Results"
    messages = [
        {"role": "user", "content": "Search for the tallest mountain."},
        {
            "role": "assistant",
            "thinking": "Search.",
            "tool_calls": [
                {"id": "b1", "function": {"name": "browser.search", "arguments": '{"query": "tallest mountain"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "b1", "content": page},
        {
            "role": "assistant",
            "tool_calls": [{"id": "b2", "function": {"name": "browser.open", "arguments": '{"id": 0}'}}],
        },
        {"role": "tool", "name": "browser.open", "content": "[1] Everest"},
    ]
    ids = render(messages, builtin_tools=["browser"], current_date="2025-03-01")

    def call(function: str, arguments: str) -> Message:
        return (
            Message.from_role_and_content(Role.ASSISTANT, arguments)
            .with_channel("analysis")
            .with_recipient(function)
            .with_content_type("code")
        )

    def result(function: str, text: str) -> Message:
        return (
            Message.from_author_and_content(Author.new(Role.TOOL, function), text)
            .with_recipient("assistant")
            .with_channel("analysis")
        )

    expected = _reference(
        [
            Message.from_role_and_content(
                Role.SYSTEM, SystemContent.new().with_conversation_start_date("2025-03-01").with_browser_tool()
            ),
            Message.from_role_and_content(Role.USER, "Search for the tallest mountain."),
            Message.from_role_and_content(Role.ASSISTANT, "Search.").with_channel("analysis"),
            call("browser.search", '{"query": "tallest mountain"}'),
            result("browser.search", page),
            call("browser.open", '{"id": 0}'),
            result("browser.open", "[1] Everest"),
        ]
    )
    assert ids == expected
    text = harmony_encoding().decode(ids)
    assert '<|start|>assistant to=browser.search<|channel|>analysis code<|message|>{"query"' in text
    assert "<|start|>browser.open to=assistant<|channel|>analysis<|message|>[1] Everest<|end|>" in text


def test_a_function_tool_may_not_take_a_browser_functions_name():
    from gptoss_hub.errors import ToolError

    search = {"type": "function", "function": {"name": "browser.search", "parameters": {"type": "object"}}}
    with pytest.raises(ToolError, match=r"builtin browser tool.*builtin_tools=\['browser'\]"):
        render([{"role": "user", "content": "hi"}], tools=[search])
