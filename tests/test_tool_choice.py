"""`tool_choice`: validation, and steering the model into the call a forced choice asks for."""

from __future__ import annotations

import asyncio

import pytest
from scripted import ScriptedEngine, scripted_model

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.events import ContentDelta, Done, ToolCallStarted
from gptoss_hub.harmony import render
from gptoss_hub.tool_choice import ToolChoice

TOKYO = [{"role": "user", "content": "What is the weather in Tokyo?"}]
ARITHMETIC = [{"role": "user", "content": "What is 2 + 2?"}]
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}


def get_time(city: str) -> str:
    """The local time in a city.

    Args:
        city: The city name.
    """
    return "12:00"


# -- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ToolChoice("auto")),
        ("auto", ToolChoice("auto")),
        ("none", ToolChoice("none")),
        ("required", ToolChoice("required", names=("get_weather", "get_time"))),
        (FORCE_WEATHER, ToolChoice("function", "get_weather")),
        ({"type": "function", "name": "get_time"}, ToolChoice("function", "get_time")),
    ],
)
def test_accepted_shapes(value, expected):
    assert ToolChoice.parse(value, ["get_weather", "get_time"]) == expected


def test_required_with_one_tool_steers_to_that_tool():
    assert ToolChoice.parse("required", ["get_weather"]) == ToolChoice("function", "get_weather")


@pytest.mark.parametrize(
    ("value", "tools", "message"),
    [
        ("required", [], "needs tools"),
        ({"type": "function", "function": {"name": "get_time"}}, ["get_weather"], "not among the tools offered"),
        ("get_weather", ["get_weather"], "tool_choice must be"),
        ({"type": "function"}, ["get_weather"], "tool_choice must be"),
        ({"type": "file_search"}, ["get_weather"], "tool_choice must be"),
    ],
)
def test_refused_shapes_say_what_is_accepted(value, tools, message):
    with pytest.raises(InvalidRequestError, match=message):
        ToolChoice.parse(value, tools)


def test_which_headers_a_forced_choice_accepts():
    named, anyone = ToolChoice("function", "get_weather"), ToolChoice("required", names=("get_weather", "get_time"))
    assert named.accepts("analysis", None) and named.accepts("commentary", None)  # reasoning, preambles
    assert named.accepts("commentary", "functions.get_weather")
    assert not named.accepts("commentary", "functions.get_time")
    assert not named.accepts("final", None) and not named.accepts(None, None)
    assert anyone.accepts("commentary", "functions.get_time") and not anyone.accepts("commentary", "browser.search")
    assert not anyone.accepts("commentary", "functions.get_stock")  # "required" means one of the tools offered
    assert not anyone.accepts("commentary", "functions")  # a recipient the model left unfinished
    assert ToolChoice("auto").accepts("final", None)


def test_the_written_header_is_the_one_the_model_writes(tiny_model):
    reply = tiny_model.chat(TOKYO, tools=[get_weather])
    start = reply.token_ids.index(harmony_encoding().encode("<|start|>", allowed_special="all")[0])
    header = ToolChoice("function", "get_weather").header_ids(new_message=True)
    assert reply.token_ids[start : start + len(header)] == header


# -- steering, on the transformers CPU backend (no JSON-schema support) --------------------------------


def test_a_reply_that_already_calls_the_tool_is_untouched(tiny_model):
    auto = tiny_model.chat(TOKYO, tools=[get_weather])
    for choice in ("required", FORCE_WEATHER):
        assert tiny_model.chat(TOKYO, tools=[get_weather], tool_choice=choice).token_ids == auto.token_ids


def test_a_final_answer_is_steered_into_the_call_and_the_reasoning_kept(tiny_model):
    auto = tiny_model.chat(ARITHMETIC, tools=[get_weather])
    assert auto.content and not auto.tool_calls
    forced = tiny_model.chat(ARITHMETIC, tools=[get_weather], tool_choice=FORCE_WEATHER)
    assert forced.finish_reason == "tool_calls" and forced.content == ""
    assert forced.reasoning == auto.reasoning
    assert [call.name for call in forced.tool_calls] == ["get_weather"]
    # The analysis message is kept token for token; the refused final answer is gone; the call follows.
    analysis_end = auto.token_ids.index(harmony_encoding().encode("<|end|>", allowed_special="all")[0]) + 1
    header = ToolChoice("function", "get_weather").header_ids(new_message=True)
    assert forced.token_ids[: analysis_end + len(header)] == auto.token_ids[:analysis_end] + header
    assert forced.usage.completion_tokens == len(forced.token_ids)
    # The tiny model was never taught this call, so its arguments may not be JSON: that is reported, not lost.
    assert forced.tool_calls[0].arguments is not None or forced.error.code == "invalid_tool_arguments"


def test_streamed_steering_shows_no_refused_content(tiny_model):
    events = list(tiny_model.stream(ARITHMETIC, tools=[get_weather], tool_choice="required"))
    assert not [e for e in events if isinstance(e, ContentDelta)]
    assert [e.name for e in events if isinstance(e, ToolCallStarted)] == ["get_weather"]
    done = events[-1]
    assert isinstance(done, Done)
    assert done.reply.token_ids == tiny_model.chat(ARITHMETIC, tools=[get_weather], tool_choice="required").token_ids


def test_async_steering_equals_sync(tiny_model):
    sync = tiny_model.chat(ARITHMETIC, tools=[get_weather], tool_choice=FORCE_WEATHER)
    asynchronous = asyncio.run(tiny_model.achat(ARITHMETIC, tools=[get_weather], tool_choice=FORCE_WEATHER))
    assert asynchronous.token_ids == sync.token_ids


def test_no_room_left_for_the_call_ends_with_length(tiny_model):
    auto = tiny_model.chat(ARITHMETIC, tools=[get_weather])
    analysis_tokens = auto.token_ids.index(harmony_encoding().encode("<|end|>", allowed_special="all")[0])
    reply = tiny_model.chat(ARITHMETIC, tools=[get_weather], tool_choice=FORCE_WEATHER, max_tokens=analysis_tokens + 8)
    assert reply.finish_reason == "length" and not reply.content
    assert len(reply.token_ids) <= analysis_tokens + 8


def test_none_hides_the_tools(tiny_model):
    reply = tiny_model.chat(TOKYO, tools=[get_weather], tool_choice="none")
    assert reply.usage.prompt_tokens == len(render(TOKYO)) < len(render(TOKYO, tools=[get_weather]))


def test_the_tool_loop_forces_only_its_first_turn(tiny_model, monkeypatch):
    choices = []
    chat = tiny_model.chat

    def spy(messages, **options):
        choices.append(options.get("tool_choice"))
        return chat(messages, **options)

    monkeypatch.setattr(tiny_model, "chat", spy)
    reply = tiny_model.run(ARITHMETIC, tools=[get_weather], tool_choice="required", max_turns=3)
    assert reply.transcript[0]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert choices[0] == "required" and choices[1:] == [None] * (len(choices) - 1) and len(choices) >= 2


def test_errors_reach_the_caller_before_any_generation(tiny_model):
    with pytest.raises(InvalidRequestError, match="not among the tools offered"):
        tiny_model.chat(TOKYO, tools=[get_weather], tool_choice={"type": "function", "name": "get_time"})


# -- with a JSON-schema engine the steered arguments follow the tool's schema ---------------------------


def test_llamacpp_steered_arguments_follow_the_schema(llamacpp_model):
    for messages in (ARITHMETIC, [{"role": "user", "content": "Say hello."}]):
        reply = llamacpp_model.chat(messages, tools=[get_weather, get_time], tool_choice=FORCE_WEATHER)
        (call,) = reply.tool_calls
        assert call.name == "get_weather" and reply.error is None
        assert set(call.arguments) <= {"location", "unit"} and isinstance(call.arguments["location"], str)


# -- turns that end without a second steer, on a scripted engine ---------------------------------------


def _Scripted(*completions: str) -> ScriptedEngine:
    return ScriptedEngine(*completions, max_context=4096)


_model = scripted_model


TWO_TOOLS = [get_weather, get_time]
ANALYSIS = "<|channel|>analysis<|message|>Thinking.<|end|>"


def test_a_model_that_refuses_the_written_header_ends_the_turn_with_an_error():
    # It answers, is steered, and then names no offered tool: the turn ends instead of steering for ever.
    engine = _Scripted(
        ANALYSIS + "<|start|>assistant<|channel|>final<|message|>4.<|return|>",
        ".get_stock<|channel|>commentary <|constrain|>json<|message|>{}<|call|>",
    )
    reply = _model(engine).chat(ARITHMETIC, tools=TWO_TOOLS, tool_choice="required")
    assert len(engine.requests) == 2
    assert reply.error.code == "tool_choice_unmet" and "one of get_weather, get_time" in reply.error.message
    assert reply.reasoning == "Thinking." and not reply.tool_calls and not reply.content
    assert reply.finish_reason == "error"


def test_a_call_ended_with_end_is_not_followed_by_a_second_forced_call():
    engine = _Scripted(
        ANALYSIS + "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>"
        '{"location": "Oslo"}<|end|><|start|>assistant<|channel|>final<|message|>Done.<|return|>'
    )
    reply = _model(engine).chat(ARITHMETIC, tools=TWO_TOOLS, tool_choice=FORCE_WEATHER)
    assert len(engine.requests) == 1  # nothing steered: the wanted call was made
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("get_weather", {"location": "Oslo"})]
    assert reply.finish_reason == "tool_calls" and not reply.content


def test_a_message_without_start_is_dropped_whole_when_refused():
    # The final answer comes with no "<|start|>assistant": the reasoning before it is still kept.
    engine = _Scripted(
        ANALYSIS + "<|channel|>final<|message|>4.<|return|>",
        '{"location": "Oslo"}<|call|>',
    )
    reply = _model(engine).chat(ARITHMETIC, tools=TWO_TOOLS, tool_choice=FORCE_WEATHER)
    assert reply.reasoning == "Thinking." and reply.tool_calls[0].arguments == {"location": "Oslo"}
    kept = harmony_encoding().encode(ANALYSIS, allowed_special="all")
    assert engine.requests[1].prompt_ids[-len(kept) - 14 : -14] == kept


def test_steering_that_would_pass_the_context_ends_with_length():
    answer = ANALYSIS + "<|start|>assistant<|channel|>final<|message|>4.<|return|>"
    prompt = render(ARITHMETIC, tools=[get_weather], current_date=None)
    kept = len(harmony_encoding().encode(ANALYSIS, allowed_special="all"))
    for room, steered in ((kept + 14, False), (kept + 15, True)):  # the written header is 14 tokens
        engine = _Scripted(answer, '{"location": "Oslo"}<|call|>')
        engine.capabilities = type(engine.capabilities)(streaming=True, max_context=len(prompt) + room)
        reply = _model(engine).chat(ARITHMETIC, tools=[get_weather], tool_choice=FORCE_WEATHER, current_date=None)
        assert (len(engine.requests) == 2) == steered
        assert reply.finish_reason == ("tool_calls" if steered else "length")
