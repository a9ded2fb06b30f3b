"""`stop` strings: the answer ends just before the first one, however the tokens split it, on every path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scripted import ScriptedEngine, scripted_model

from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.events import ContentDelta, Done, ReasoningDelta
from gptoss_hub.stop_strings import StopStrings, stop_list

ANSWER = (
    "<|channel|>analysis<|message|>I will say END in the answer.<|end|><|start|>assistant<|channel|>final"
    "<|message|>Alpha beta. END gamma delta.<|return|>"
)


def _shown(stops, pieces):
    watcher = StopStrings(stops)
    shown = "".join(watcher.feed(piece) for piece in pieces)
    return shown + ("" if watcher.matched else watcher.flush()), watcher.matched


@settings(max_examples=1000, derandomize=True, deadline=None)  # the same examples every run
@given(
    st.text(alphabet="abc", max_size=40),
    st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=1, max_size=3),
    st.lists(st.integers(0, 40), max_size=8),
)
def test_the_text_shown_ends_before_the_first_complete_stop_however_it_is_split(text, stops, cuts):
    pieces = [text[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(text)], strict=True)]
    # The answer ends before the stop string that is complete first (the earliest end), whatever the split.
    found = [(text.find(stop) + len(stop), text.find(stop)) for stop in stops if stop in text]
    shown, matched = _shown(stops, pieces)
    assert matched == bool(found)
    assert shown == (text[: min(found)[1]] if found else text)


def test_text_that_may_begin_a_stop_is_held_back_until_it_cannot():
    watcher = StopStrings(["</answer>"])
    assert watcher.feed("It is 42 </ans") == "It is 42 "
    assert watcher.feed("wer> is next") == "" and watcher.matched
    watcher = StopStrings(["</answer>"])
    assert watcher.feed("a </an") == "a " and watcher.feed("d b") == "</and b"
    assert watcher.flush() == ""


@pytest.mark.parametrize(
    ("stop", "problem"),
    [(["a"] * 5, "at most 4"), ([""], "empty"), ("x" * 300, "256"), ([1], "strings"), ({"a": 1}, "strings")],
)
def test_bad_stop_options_say_what_is_wrong(stop, problem):
    with pytest.raises(InvalidRequestError, match=problem):
        stop_list(stop)


def test_chat_ends_the_answer_before_the_stop_string_and_stops_generating():
    engine = ScriptedEngine(ANSWER)
    reply = scripted_model(engine).chat([{"role": "user", "content": "Go."}], stop=["END"])
    assert reply.content == "Alpha beta. " and reply.finish_reason == "stop" and reply.error is None
    assert reply.reasoning == "I will say END in the answer."  # reasoning is not the answer: not watched
    full = scripted_model(ScriptedEngine(ANSWER)).chat([{"role": "user", "content": "Go."}])
    assert reply.usage.completion_tokens < full.usage.completion_tokens  # it stopped generating there
    assert reply.message["content"] == "Alpha beta. "


def test_streaming_never_shows_part_of_a_stop_string_split_over_tokens():
    engine = ScriptedEngine(ANSWER)  # one token per chunk: "END" arrives over several
    events = list(scripted_model(engine).stream([{"role": "user", "content": "Go."}], stop="END gam"))
    content = [event.text for event in events if isinstance(event, ContentDelta)]
    assert "".join(content) == "Alpha beta. " and not any("E" in piece for piece in content)
    assert "END" in "".join(event.text for event in events if isinstance(event, ReasoningDelta))
    (done,) = [event for event in events if isinstance(event, Done)]
    assert done.reply.content == "Alpha beta. " and done.reply.finish_reason == "stop"


def test_a_stop_string_that_never_appears_changes_nothing():
    plain = scripted_model(ScriptedEngine(ANSWER)).chat([{"role": "user", "content": "Go."}])
    watched = list(scripted_model(ScriptedEngine(ANSWER)).stream([{"role": "user", "content": "Go."}], stop=["delta!"]))
    (done,) = [event for event in watched if isinstance(event, Done)]
    assert done.reply.content == plain.content == "Alpha beta. END gamma delta."
    assert "".join(e.text for e in watched if isinstance(e, ContentDelta)) == plain.content
    assert done.reply.finish_reason == "stop"


def test_a_commentary_preamble_is_not_watched():
    preamble = "<|channel|>commentary<|message|>Checking END. <|end|><|start|>assistant<|channel|>final<|message|>Done END x.<|return|>"
    reply = scripted_model(ScriptedEngine(preamble)).chat([{"role": "user", "content": "Go."}], stop="END")
    assert reply.content == "Checking END. Done "
