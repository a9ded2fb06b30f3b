"""A prompt's cost is bounded before it is tokenized, and the asynchronous path tokenizes off the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from scripted import ScriptedEngine, scripted_model

from gptoss_hub.errors import ContextLengthError, InvalidRequestError
from gptoss_hub.prompt_limits import MAX_PIECE_BYTES

ANSWER = "<|channel|>final<|message|>Ok.<|return|>"


@pytest.mark.parametrize(
    "text",
    [
        "a" * 300_000,
        "😀" * 100_000,
        "word " + "x" * (MAX_PIECE_BYTES + 1),
        "x" + " " * 40_000 + "y",  # whitespace is a piece too
        "!" * 20_000,
        " ".join(["z" * 8_000] * 5),  # no single run past the bound, but five of half of it
    ],
)
def test_runs_past_the_bound_are_refused_before_tokenizing(text, monkeypatch):
    import gptoss_hub.turn as turn

    tokenized = []
    monkeypatch.setattr(turn, "render", lambda *args, **kwargs: tokenized.append(1) or [1])
    model = scripted_model(ScriptedEngine(ANSWER))
    with pytest.raises(InvalidRequestError, match=r"too long to tokenize quickly: at most 16384 bytes in one run"):
        model.chat([{"role": "user", "content": text}])
    with pytest.raises(InvalidRequestError, match="too long to tokenize quickly"):
        model.chat([{"role": "user", "content": "hi"}], instructions=text)
    assert not tokenized


def test_long_ordinary_data_is_not_mistaken_for_a_run():
    import base64
    import json
    import random

    rng = random.Random(7)
    blob = base64.b64encode(rng.randbytes(60_000)).decode()
    minified = json.dumps(
        [{"id": n, "name": f"item{n}", "tags": ["a", "b"]} for n in range(3000)], separators=(",", ":")
    )
    model = scripted_model(ScriptedEngine(ANSWER))
    for text in (blob, minified, "lorem ipsum " * 20_000, "x" * (MAX_PIECE_BYTES - 1)):
        assert model.chat([{"role": "user", "content": text}]).content == "Ok."


def test_a_prompt_longer_than_the_context_could_hold_is_refused_before_tokenizing(monkeypatch):
    import gptoss_hub.turn as turn

    model = scripted_model(ScriptedEngine(ANSWER, max_context=1000))
    tokenized = []
    monkeypatch.setattr(turn, "render", lambda *args, **kwargs: tokenized.append(1) or [1])
    with pytest.raises(ContextLengthError, match=r"more than the 1000-token context can hold"):
        model.chat([{"role": "user", "content": "ab " * 50_000}])
    assert not tokenized


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
