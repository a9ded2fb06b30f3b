from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.events import ContentDelta, Done, ReasoningDelta, ToolCallArgumentsDelta, ToolCallDone, ToolCallStarted
from gptoss_hub.harmony import ReplyParser, parse


def _ids(text):
    return harmony_encoding().encode(text, allowed_special="all")


def test_reasoning_and_content_split_by_channel():
    reply = parse(
        _ids("<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Hi!<|return|>")
    )
    assert (reply.reasoning, reply.content, reply.finish_reason, reply.tool_calls) == ("Think.", "Hi!", "stop", [])
    assert [m["channel"] for m in reply.harmony] == ["analysis", "final"]
    assert reply.message == {"role": "assistant", "content": "Hi!", "thinking": "Think."}


def test_tool_call_is_parsed_with_raw_and_dict_arguments():
    reply = parse(
        _ids(
            "<|channel|>analysis<|message|>Call it.<|end|><|start|>assistant to=functions.get_weather"
            '<|channel|>commentary <|constrain|>json<|message|>{"location": "Tokyo"}<|call|>'
        )
    )
    assert reply.finish_reason == "tool_calls" and reply.content == ""
    (call,) = reply.tool_calls
    assert (call.name, call.arguments, call.raw_arguments) == (
        "get_weather",
        {"location": "Tokyo"},
        '{"location": "Tokyo"}',
    )
    assert reply.message["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"location": "Tokyo"}'}


def test_stream_events_concatenate_to_the_reply():
    parser = ReplyParser()
    events = []
    for token in _ids(
        "<|channel|>analysis<|message|>Let me think about it.<|end|><|start|>assistant to=functions.f"
        '<|channel|>commentary <|constrain|>json<|message|>{"a": [1, 2]}<|call|>'
    ):
        events.extend(parser.feed(token))
    events.extend(parser.finish())
    done = events[-1]
    assert isinstance(done, Done)
    reply = done.reply
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == reply.reasoning
    assert not [e for e in events if isinstance(e, ContentDelta)]
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [s.name for s in started] == ["f"]
    assert "".join(e.text for e in events if isinstance(e, ToolCallArgumentsDelta)) == '{"a": [1, 2]}'
    assert [e.tool_call for e in events if isinstance(e, ToolCallDone)] == reply.tool_calls
    assert reply.tool_calls[0].id == started[0].id


def test_malformed_output_keeps_what_was_parsed_and_the_raw_ids():
    good = _ids("<|channel|>final<|message|>Partial answer<|end|>")
    broken = _ids("<|message|><|call|>")  # a message marker where a header must start
    reply = parse(good + broken)
    assert reply.finish_reason == "error"
    assert reply.content == "Partial answer"
    assert reply.token_ids == good + broken
    assert reply.error and "invalid harmony" in reply.error


def test_bad_tool_arguments_are_kept_raw_with_an_error():
    reply = parse(_ids('<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"a": <|call|>'))
    (call,) = reply.tool_calls
    assert call.arguments is None and call.raw_arguments == '{"a": '
    assert "not a JSON object" in reply.error


def test_cut_off_reply_has_length_finish():
    reply = parse(_ids("<|channel|>final<|message|>Once upon"))
    assert reply.finish_reason == "length" and reply.content == "Once upon"
