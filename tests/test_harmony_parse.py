import pytest

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
    assert reply.content == "Partial answer" and [m["channel"] for m in reply.harmony] == ["final"]
    assert reply.token_ids == good + broken
    assert reply.error.code == "unexpected_token" and reply.error.token_index == len(good)
    assert reply.error.raw_text == "<|channel|>final<|message|>Partial answer<|end|><|message|><|call|>"


def test_parsing_resumes_at_the_next_start_after_damage():
    reply = parse(
        _ids(
            "<|channel|>analysis<|message|>Think.<|end|>garbage here<|start|>assistant"
            "<|channel|>final<|message|>Still here.<|return|>"
        )
    )
    assert (reply.reasoning, reply.content) == ("Think.", "Still here.")
    assert reply.finish_reason == "error" and reply.error.code == "unexpected_token"
    assert [m["channel"] for m in reply.harmony] == ["analysis", "final"]


@pytest.mark.parametrize(
    "completion",
    [
        # a stray terminator where a new message should start
        "<|channel|>analysis<|message|>Think.<|end|><|end|><|start|>assistant<|channel|>final<|message|>Done.<|return|>",
        "<|channel|>analysis<|message|>Think.<|end|><|return|><|start|>assistant<|channel|>final<|message|>Done.<|return|>",
        # the next message starts with <|channel|>, its <|start|>assistant left out
        "<|channel|>analysis<|message|>Think.<|end|><|channel|>final<|message|>Done.<|return|>",
    ],
)
def test_tolerated_slips_parse_cleanly(completion):
    reply = parse(_ids(completion))
    assert (reply.reasoning, reply.content, reply.finish_reason, reply.error) == ("Think.", "Done.", "stop", None)


@pytest.mark.parametrize(
    "header",
    [
        "<|channel|>commentary to=functions.get_weather <|constrain|>json",
        "<|channel|>commentary to=functions.get_weather<|constrain|>json",
        " to=functions.get_weather<|channel|>commentary <|constrain|>json",
        " to=functions.get_weather<|channel|>commentary",
    ],
)
def test_recipient_and_constrain_in_any_position(header):
    reply = parse(_ids(header + '<|message|>{"location": "Oslo"}<|call|>'))
    assert reply.finish_reason == "tool_calls" and reply.error is None
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("get_weather", {"location": "Oslo"})]


def test_commentary_preamble_is_shown_as_content():
    reply = parse(
        _ids(
            "<|channel|>commentary<|message|>Let me check.<|end|><|start|>assistant<|channel|>commentary "
            "to=functions.f <|constrain|>json<|message|>{}<|call|>"
        )
    )
    assert reply.content == "Let me check." and reply.tool_calls[0].name == "f"
    assert reply.message["content"] == "Let me check."


def test_header_without_message_marker_is_reported():
    reply = parse(_ids("<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final Done<|return|>"))
    assert reply.reasoning == "Think." and reply.finish_reason == "error"
    assert reply.error.code == "malformed_header" and "final Done" in reply.error.raw_text


def test_multibyte_characters_split_across_tokens():
    text = "héllo 日本語 🎉 👩‍👩‍👧"
    ids = _ids(f"<|channel|>final<|message|>{text}<|return|>")
    parser = ReplyParser()
    deltas = [e.text for token in ids for e in parser.feed(token) if isinstance(e, ContentDelta)]
    assert "".join(deltas) == text and all("\ufffd" not in d for d in deltas)
    assert parser.finish()[-1].reply.content == text


def test_stream_that_stops_mid_message_is_truncated():
    reply = parse(_ids("<|channel|>final<|message|>Once upon"), finish_reason="stop")
    assert reply.content == "Once upon" and reply.error.code == "truncated"


def test_bad_tool_arguments_are_kept_raw_with_an_error():
    reply = parse(_ids('<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"a": <|call|>'))
    (call,) = reply.tool_calls
    assert call.arguments is None and call.raw_arguments == '{"a": ' and "not valid JSON" in call.error
    assert reply.finish_reason == "tool_calls" and reply.error.code == "invalid_tool_arguments"
    assert (
        parse(_ids("<|channel|>commentary to=functions.f <|constrain|>json<|message|>[1]<|call|>")).tool_calls[0].error
        == "arguments must be a JSON object, got list"
    )


def test_cut_off_reply_has_length_finish():
    reply = parse(_ids("<|channel|>final<|message|>Once upon"))
    assert reply.finish_reason == "length" and reply.content == "Once upon" and reply.error is None
    assert reply.harmony[0]["content"][0]["text"] == "Once upon"


def test_text_without_a_message_marker_is_a_malformed_header_and_parsing_recovers():
    from gptoss_hub.harmony.parse import MAX_HEADER_TOKENS

    garbage = _ids(" lighthouse" * (MAX_HEADER_TOKENS + 50))
    tail = _ids("<|start|>assistant<|channel|>final<|message|>Recovered.<|return|>")
    reply = parse(garbage + tail)
    assert reply.error.code == "malformed_header" and f"past {MAX_HEADER_TOKENS} tokens" in reply.error.message
    assert reply.error.token_index == MAX_HEADER_TOKENS and reply.error.raw_text.startswith(" lighthouse")
    assert reply.content == "Recovered." and reply.token_ids == garbage + tail
    # A real header, however long its recipient, stays well inside the bound.
    long_name = "functions." + "very_long_tool_name_" * 4
    call = parse(_ids(f"<|channel|>commentary to={long_name} <|constrain|>json<|message|>{{}}<|call|>"))
    assert call.error is None and call.tool_calls[0].name == long_name.removeprefix("functions.")


PYTHON_CODE = 'data = {"a": [1, 2\nprint(sum(data["a"]))'  # not valid JSON, nor even valid Python: kept as written


@pytest.mark.parametrize(
    "header",
    [
        "<|channel|>analysis to=python code<|message|>",  # the recipient after the channel, as gpt-oss writes it first
        "<|channel|>analysis<|message|>Run it.<|end|><|start|>assistant to=python<|channel|>analysis code<|message|>",
        " to=functions.python<|channel|>analysis code<|message|>",  # the spelling the reference also accepts
        "<|channel|>analysis to=python<|message|>",  # no content type
    ],
)
def test_python_calls_parse_into_a_builtin_call_that_keeps_the_code_verbatim(header):
    reply = parse(_ids(header + PYTHON_CODE + "<|call|>"))
    (call,) = reply.tool_calls
    assert (call.kind, call.name, call.code, call.arguments, call.error) == (
        "python",
        "python",
        PYTHON_CODE,
        None,
        None,
    )
    assert reply.error is None and reply.finish_reason == "tool_calls"
    # The call goes back into the conversation as the model wrote it.
    assert reply.message["tool_calls"][0]["function"] == {"name": "python", "arguments": PYTHON_CODE}


def test_python_code_streams_as_it_is_written():
    parser = ReplyParser()
    events = [
        e
        for token in _ids("<|channel|>analysis to=python code<|message|>" + PYTHON_CODE + "<|call|>")
        for e in parser.feed(token)
    ]
    events += parser.finish()
    (started,) = [e for e in events if isinstance(e, ToolCallStarted)]
    deltas = [e.text for e in events if isinstance(e, ToolCallArgumentsDelta)]
    assert started.name == "python" and len(deltas) > 3 and "".join(deltas) == PYTHON_CODE
    (done,) = [e for e in events if isinstance(e, ToolCallDone)]
    assert done.tool_call.code == PYTHON_CODE


def test_a_function_call_is_not_a_python_call():
    reply = parse(_ids('<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"a": 1}<|call|>'))
    (call,) = reply.tool_calls
    assert (call.kind, call.code, call.arguments) == ("function", None, {"a": 1})


@pytest.mark.parametrize(
    "header",
    [
        "<|channel|>analysis to=browser.search code<|message|>",  # as gpt-oss writes it
        " to=browser.search<|channel|>analysis code<|message|>",  # as harmony renders it back
        "<|channel|>commentary to=browser.search <|constrain|>json<|message|>",  # the function-call spelling
    ],
)
def test_browser_calls_parse_into_builtin_calls_with_json_arguments(header):
    reply = parse(_ids(header + '{"query": "tallest mountain", "topn": 3}<|call|>'))
    (call,) = reply.tool_calls
    assert (call.kind, call.name, call.arguments, call.code) == (
        "browser",
        "browser.search",
        {"query": "tallest mountain", "topn": 3},
        None,
    )
    assert reply.error is None and reply.finish_reason == "tool_calls"
    assert reply.message["tool_calls"][0]["function"]["name"] == "browser.search"


def test_a_browser_call_with_broken_json_keeps_the_raw_text_and_says_so():
    reply = parse(_ids('<|channel|>analysis to=browser.open code<|message|>{"id": 3<|call|>'))
    (call,) = reply.tool_calls
    assert call.kind == "browser" and call.arguments is None and call.raw_arguments == '{"id": 3'
    assert reply.error is not None and reply.error.code == "invalid_tool_arguments"


def test_a_function_in_another_namespace_is_not_the_browser():
    reply = parse(_ids("<|channel|>commentary to=browser.shop <|constrain|>json<|message|>{}<|call|>"))
    assert reply.tool_calls[0].kind == "function"
