"""The shared Model API over engines with no runtime behind them (the echo plugin, a scripted engine)."""

import asyncio
import json

import pytest
from scripted import ScriptedEngine, scripted_model

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.engine import EngineInfo, GenerationChunk, GenerationRequest
from gptoss_hub.errors import ContextLengthError, InvalidRequestError
from gptoss_hub.events import ContentDelta, Done, ReasoningDelta
from gptoss_hub.model import Model, ModelInfo
from gptoss_hub.sources import resolve_model

HELLO = [{"role": "user", "content": "Hello there"}]


def test_chat_reply_usage_and_info(echo_model):
    reply = echo_model.chat(HELLO)
    assert (reply.content, reply.finish_reason) == ("Hello there", "stop")
    assert reply.reasoning == "The user said something; repeat it."
    assert reply.usage.prompt_tokens == len(echo_model.prompt_ids(HELLO))
    assert reply.usage.completion_tokens == len(reply.token_ids) and reply.token_ids[-1] == 200002
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.timings.total_s > 0
    assert echo_model.info.backend == "echo" and echo_model.info.plugin == "echo"


def test_stream_concatenates_to_chat(echo_model):
    events = list(echo_model.stream(HELLO))
    done = events[-1]
    assert isinstance(done, Done)
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == done.reply.content == "Hello there"
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == done.reply.reasoning
    assert done.reply.token_ids == echo_model.chat(HELLO).token_ids


def test_async_twins_match(echo_model):
    async def both():
        events = [e async for e in echo_model.astream(HELLO)]
        return events, await echo_model.achat(HELLO)

    events, reply = asyncio.run(both())
    assert events[-1].reply.content == reply.content == "Hello there"


def test_max_tokens_gives_length(echo_model):
    reply = echo_model.chat(HELLO, max_tokens=3)
    assert reply.finish_reason == "length" and len(reply.token_ids) == 3 == reply.usage.completion_tokens


@pytest.mark.parametrize(
    "options",
    [{"temperature": -1}, {"top_p": 0}, {"top_k": -2}, {"max_tokens": 0}, {"min_p": 2}, {"reasoning_effort": "x"}],
)
def test_invalid_sampling_is_a_typed_error(echo_model, options):
    with pytest.raises(InvalidRequestError):
        echo_model.chat(HELLO, **options)


def test_unsupported_response_format_and_bad_messages(echo_model):
    with pytest.raises(InvalidRequestError, match="structured output"):
        echo_model.chat(HELLO, response_format={"type": "json_object"})
    with pytest.raises(InvalidRequestError, match="list of dicts"):
        echo_model.chat("Hello")


def test_context_overflow_is_a_typed_error(echo_model):
    with pytest.raises(ContextLengthError, match="context holds 8192"):
        echo_model.chat([{"role": "user", "content": "word " * 9000}])


def _scripted_model(*completions, one_chunk=True):
    engine = ScriptedEngine(*completions, one_chunk=one_chunk)
    return scripted_model(engine), engine


def test_run_calls_tools_and_feeds_results_back():
    model, engine = _scripted_model(
        '<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"location": "Oslo"}<|call|>',
        "<|channel|>final<|message|>Cold in Oslo.<|return|>",
    )
    seen = []

    def get_weather(location: str) -> dict:
        """Weather."""
        return {"location": location, "temperature_c": -3}

    reply = model.run(
        [{"role": "user", "content": "Weather in Oslo?"}], [get_weather], on_tool_result=lambda *a: seen.append(a)
    )
    assert reply.content == "Cold in Oslo." and reply.finish_reason == "stop"
    assert seen == [("get_weather", {"location": "Oslo"}, json.dumps(get_weather("Oslo")))]
    second_prompt = harmony_encoding().decode(engine.prompts[1])
    assert (
        '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"location": "Oslo", "temperature_c": -3}'
        in second_prompt
    )
    # The replayed call is byte-identical to what the model generated.
    assert (
        engine.completions[0][:-1]
        == engine.prompts[1][len(engine.prompts[0]) : len(engine.prompts[0]) + len(engine.completions[0]) - 1]
    )


def test_run_stops_after_max_turns():
    call = "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>"
    model, engine = _scripted_model(call, call, call)

    def f() -> str:
        """F."""
        return "again"

    reply = model.run([{"role": "user", "content": "loop"}], [f], max_turns=2)
    assert reply.finish_reason == "tool_calls" and len(engine.prompts) == 2
    with pytest.raises(InvalidRequestError):
        model.run([{"role": "user", "content": "loop"}], [f], max_turns=0)


def test_reply_message_round_trips_to_the_ids_the_model_wrote_across_turns():
    turn_one_call = (
        "<|channel|>analysis<|message|>Need Oslo.<|end|><|start|>assistant<|channel|>commentary<|message|>Checking.<|end|>"
        '<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"location": "Oslo"}<|call|>'
    )
    turn_one_final = (
        "<|channel|>analysis<|message|>Got it.<|end|><|start|>assistant<|channel|>final<|message|>Cold.<|return|>"
    )
    turn_two = "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>Bye.<|return|>"
    model, engine = _scripted_model(turn_one_call, turn_one_final, turn_two)
    encoding = harmony_encoding()
    tool_result = '{"temperature_c": -3}'
    messages = [{"role": "user", "content": "Weather in Oslo?"}]

    first = model.chat(messages, current_date=None)
    messages += [first.message, {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": tool_result}]
    second = model.chat(messages, current_date=None)
    # Mid-chain, the next prompt is exactly the last prompt, what the model wrote, and the tool result.
    tool_ids = encoding.encode(
        f"<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{tool_result}<|end|><|start|>assistant",
        allowed_special="all",
    )
    assert engine.prompts[1] == engine.prompts[0] + first.token_ids + tool_ids

    messages += [second.message, {"role": "user", "content": "Thanks"}]
    model.chat(messages, current_date=None)
    # The turn is complete: its reasoning is gone, everything the user saw stays.
    third_prompt = encoding.decode(engine.prompts[2])
    assert "Need Oslo." not in third_prompt and "Got it." not in third_prompt
    assert "<|start|>assistant<|channel|>commentary<|message|>Checking.<|end|>" in third_prompt
    assert third_prompt.endswith(
        "<|start|>assistant<|channel|>final<|message|>Cold.<|end|><|start|>user<|message|>Thanks<|end|><|start|>assistant"
    )


def test_run_awaits_async_tools_and_reports_unknown_tools_to_the_model():
    model, engine = _scripted_model(
        '<|channel|>commentary to=functions.lookup <|constrain|>json<|message|>{"key": "k"}<|call|>',
        "<|channel|>commentary to=functions.missing <|constrain|>json<|message|>{}<|call|>",
        "<|channel|>final<|message|>Done.<|return|>",
    )

    async def lookup(key: str) -> dict:
        """Look a key up."""
        return {"key": key, "value": 42}

    reply = model.run([{"role": "user", "content": "go"}], [lookup])
    assert reply.content == "Done." and len(engine.prompts) == 3
    tool_messages = [m for m in reply.transcript if m["role"] == "tool"]
    assert json.loads(tool_messages[0]["content"]) == {"key": "k", "value": 42}
    assert "unknown tool" in json.loads(tool_messages[1]["content"])["error"]
    assert reply.transcript[-1] == reply.message


def test_the_hub_enforces_max_tokens_and_stop_ids_whatever_the_engine_does():
    """ScriptedEngine ignores both: it yields its whole completion in one chunk."""
    overrun = "<|channel|>final<|message|>one two three four five six seven eight<|return|>"
    model, _ = _scripted_model(overrun)
    reply = model.chat([{"role": "user", "content": "Count."}], max_tokens=5)
    assert len(reply.token_ids) == 5 and reply.finish_reason == "length"
    assert reply.usage.completion_tokens == 5
    past_stop = "<|channel|>final<|message|>Done.<|return|><|start|>assistant<|channel|>final<|message|>junk<|return|>"
    model, _ = _scripted_model(past_stop)
    events = list(model.stream([{"role": "user", "content": "Stop."}]))
    reply = events[-1].reply
    assert reply.content == "Done." and reply.finish_reason == "stop"
    assert reply.token_ids[-1] == 200002 and "junk" not in harmony_encoding().decode(reply.token_ids)


def test_raise_for_error_keeps_the_partial_reply_and_the_ids():
    from gptoss_hub.errors import HarmonyParseError

    model, _ = _scripted_model("<|channel|>final<|message|>All good.<|return|>")
    reply = model.chat([{"role": "user", "content": "Hi"}])
    assert reply.raise_for_error() is reply
    broken = "<|channel|>final<|message|>Half an answer"  # stops mid-message: no <|return|>
    model, _ = _scripted_model(broken)
    reply = model.chat([{"role": "user", "content": "Hi"}])
    assert reply.error is not None
    with pytest.raises(HarmonyParseError) as error:
        reply.raise_for_error()
    assert error.value.partial is reply and error.value.token_ids == reply.token_ids
    assert str(error.value).startswith(f"{reply.error.code}: ")


def test_a_message_engine_needs_only_its_async_stream():
    """A remote engine implementing `astream_messages` alone: `chat()` (sync) runs it through the default
    `stream_messages`, and `achat()` directly."""
    from gptoss_hub.engine import MessageEngine
    from gptoss_hub.reply import Reply

    class Remote(MessageEngine):
        info = EngineInfo(device="remote", dtype="remote")

        async def astream_messages(self, messages, options):
            yield ContentDelta("Hello ")
            yield ContentDelta(messages[-1]["content"])
            yield Done(Reply(content="Hello " + messages[-1]["content"]))

    info = ModelInfo(model="remote", source="remote", backend="remote", plugin="test", device="remote", dtype="remote")
    model = Model(Remote(), resolve_model("http://host:8000/v1"), info)
    assert model.chat([{"role": "user", "content": "there"}]).content == "Hello there"
    events = list(model.stream([{"role": "user", "content": "you"}]))
    assert [type(e).__name__ for e in events] == ["ContentDelta", "ContentDelta", "Done"]
    assert asyncio.run(model.achat([{"role": "user", "content": "async"}])).content == "Hello async"


def test_a_generation_outliving_its_event_loop_ends_quietly():
    """The default `agenerate` runs `generate` on a thread: when the caller's loop closes first (the turn
    ended at a stop id, `asyncio.run` returned), the thread stops without an exception of its own."""
    import threading

    release = threading.Event()
    finished = threading.Event()

    class Slow(ScriptedEngine):
        def generate(self, request):
            try:
                yield GenerationChunk([200005], None)
                release.wait(5)
                yield GenerationChunk([200002], "stop")
            finally:
                finished.set()

    errors = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:

        async def first_chunk():
            async for chunk in Slow("x").agenerate(GenerationRequest(prompt_ids=[1])):
                return chunk

        assert asyncio.run(first_chunk()).token_ids == [200005]
        release.set()
        assert finished.wait(5)
    finally:
        threading.excepthook = previous
    assert errors == []


@pytest.mark.parametrize("one_chunk", [False, True])
@pytest.mark.parametrize(
    ("completion", "options"),
    [
        ("<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Hi.<|return|>", {}),
        ("<|channel|>final<|message|>one two three four five six<|return|>", {"max_tokens": 4}),
        ("<|channel|>final<|message|>Done.<|return|><|start|>assistant<|channel|>final<|message|>junk<|return|>", {}),
        ("<|channel|>final<|message|>Half an answer", {}),  # no terminator: a parse error, kept with the ids
        ("<|start|>assistant<|channel|>final<|message|>A repeated role header.<|return|>", {}),
        (
            '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location": "Oslo"}<|call|>',
            {"tools": [get_weather]},
        ),
    ],
)
def test_chat_parses_once_at_the_end_into_the_reply_streaming_builds(completion, options, one_chunk):
    """`chat()` parses the ids after the generation, `stream()` as they come: the replies are the same."""
    messages = [{"role": "user", "content": "Go."}]
    chatted = _scripted_model(completion, one_chunk=one_chunk)[0].chat(messages, **options)
    streamed = list(_scripted_model(completion, one_chunk=one_chunk)[0].stream(messages, **options))[-1].reply
    # Each reply draws fresh tool call ids; timings differ by nature.
    same = {"usage": True, "timings": True, "tool_calls": {"__all__": {"id"}}}
    assert chatted.model_dump(exclude=same) == streamed.model_dump(exclude=same)
    assert chatted.usage == streamed.usage and len(chatted.tool_calls) == len(streamed.tool_calls)
