"""A prompt's cost is bounded before it is tokenized, and the asynchronous path tokenizes off the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from scripted import ScriptedEngine, scripted_model

from gptoss_hub.errors import ContextLengthError, InvalidRequestError
from gptoss_hub.prompt_limits import MAX_RUN_BYTES

ANSWER = "<|channel|>final<|message|>Ok.<|return|>"


@pytest.mark.parametrize("text", ["a" * 300_000, "😀" * 100_000, "word " + "x" * (MAX_RUN_BYTES + 1)])
def test_a_run_without_whitespace_past_the_bound_is_refused_before_tokenizing(text):
    model = scripted_model(ScriptedEngine(ANSWER))
    with pytest.raises(InvalidRequestError, match=r"without whitespace; at most 65536 are accepted"):
        model.chat([{"role": "user", "content": text}])
    with pytest.raises(InvalidRequestError, match="without whitespace"):
        model.chat([{"role": "user", "content": "hi"}], instructions=text)


def test_a_prompt_longer_than_the_context_could_hold_is_refused_before_tokenizing(monkeypatch):
    import gptoss_hub.turn as turn

    model = scripted_model(ScriptedEngine(ANSWER, max_context=1000))
    tokenized = []
    monkeypatch.setattr(turn, "render", lambda *args, **kwargs: tokenized.append(1) or [1])
    with pytest.raises(ContextLengthError, match=r"more than the 1000-token context can hold"):
        model.chat([{"role": "user", "content": "ab " * 50_000}])
    assert not tokenized


def test_a_run_just_under_the_bound_is_accepted():
    reply = scripted_model(ScriptedEngine(ANSWER)).chat([{"role": "user", "content": "x" * (MAX_RUN_BYTES - 1)}])
    assert reply.content == "Ok."


def test_the_async_path_renders_in_a_worker_thread(monkeypatch):
    import gptoss_hub.turn as turn

    render_threads = []
    real_render = turn.render

    def recording_render(*args, **kwargs):
        render_threads.append(threading.current_thread())
        return real_render(*args, **kwargs)

    monkeypatch.setattr(turn, "render", recording_render)
    model = scripted_model(ScriptedEngine(ANSWER))

    async def chat():
        return threading.current_thread(), await model.achat([{"role": "user", "content": "hi"}])

    loop_thread, reply = asyncio.run(chat())
    assert reply.content == "Ok." and render_threads and render_threads[0] is not loop_thread
