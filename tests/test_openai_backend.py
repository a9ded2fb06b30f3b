"""The `openai` backend: `gh.load("http://…/v1")` behind the same `Model` API, against our own server."""

from __future__ import annotations

import json

import pytest

import gptoss_hub as gh
from gptoss_hub.demo_tools import get_weather
from gptoss_hub.errors import (
    BackendError,
    BackendUnavailableError,
    ContextLengthError,
    InvalidRequestError,
    ModelNotFoundError,
)
from gptoss_hub.events import ContentDelta, Done, ReasoningDelta, ToolCallArgumentsDelta, ToolCallDone, ToolCallStarted

pytest.importorskip("openai", reason="the openai extra is installed by .ci/run")

TOKYO = [{"role": "user", "content": "What is the weather in Tokyo?"}]


@pytest.fixture(scope="module")
def remote(hub_server):
    model = gh.load(hub_server.url, api_key=hub_server.api_key)
    yield model
    model.close()


def test_an_endpoint_plans_the_openai_backend_and_asks_for_its_model(remote, hub_server):
    assert remote.info.backend == "openai" and remote.info.device == "remote"
    assert remote.info.details == {"base_url": hub_server.url, "model": "tiny-harmony"}
    # The server knows the model it serves: a call without a temperature leaves it to the server's default.
    assert remote.default_temperature is None and "temperature" not in remote._with_default_temperature({})
    plan = gh.plan(hub_server.url)
    assert plan.chosen.backend == "openai"
    assert all(c.reasons for c in plan.candidates if c.backend != "openai")


def test_replies_split_like_the_local_model(remote, tiny_model):
    for messages, tools in (([{"role": "user", "content": "What is 2 + 2?"}], None), (TOKYO, [get_weather])):
        local, far = tiny_model.chat(messages, tools=tools), remote.chat(messages, tools=tools)
        assert (far.reasoning, far.content, far.finish_reason) == (local.reasoning, local.content, local.finish_reason)
        assert [(c.name, c.arguments) for c in far.tool_calls] == [(c.name, c.arguments) for c in local.tool_calls]
        assert far.usage.prompt_tokens == local.usage.prompt_tokens
        assert far.usage.completion_tokens == local.usage.completion_tokens


def test_the_tool_loop_runs_over_the_endpoint(remote):
    reply = remote.run(TOKYO, tools=[get_weather])
    assert reply.finish_reason == "stop" and "Tokyo" in reply.content
    call = reply.transcript[0]["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"location": "Tokyo"}


def test_stream_events_match_the_reply(remote):
    events = list(remote.stream(TOKYO, tools=[get_weather]))
    done = events[-1]
    assert isinstance(done, Done)
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == done.reply.reasoning
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == done.reply.content
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    arguments = "".join(e.text for e in events if isinstance(e, ToolCallArgumentsDelta))
    (finished,) = [e.tool_call for e in events if isinstance(e, ToolCallDone)]
    assert [s.name for s in started] == ["get_weather"] and finished.raw_arguments == arguments


def test_async_chat_from_two_event_loops(remote):
    import asyncio

    for _ in range(2):  # each asyncio.run is a new loop; the engine keeps a client per loop
        reply = asyncio.run(remote.achat([{"role": "user", "content": "Say hello."}]))
        assert reply.content and reply.finish_reason == "stop"


def test_server_errors_become_typed_errors(remote, hub_server, tiny_model):
    words = " ".join(["weather"] * (tiny_model.capabilities.max_context + 8))
    with pytest.raises(ContextLengthError):
        remote.chat([{"role": "user", "content": words}])
    with pytest.raises(InvalidRequestError, match="temperature"):
        remote.chat(TOKYO, temperature=-1)
    with pytest.raises(BackendError, match="401"):
        gh.load(hub_server.url, api_key="wrong")
    with pytest.raises(ModelNotFoundError, match="404"):
        gh.load(hub_server.url, api_key=hub_server.api_key, model_name="gpt-5").chat(TOKYO)
    with pytest.raises(BackendError, match="Could not reach the server"):
        gh.load("http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(InvalidRequestError, match="does not take current_date"):
        remote.chat(TOKYO, current_date="2025-01-01")


def test_a_named_model_reaches_the_server_given_by_base_url_or_the_environment(hub_server, monkeypatch):
    # The server is asked for the model by name (the tiny one is served as "tiny-harmony"), not for its first.
    by_argument = gh.load("tiny", base_url=hub_server.url, api_key=hub_server.api_key)
    assert by_argument.info.backend == "openai"
    assert by_argument.info.details == {"base_url": hub_server.url, "model": "tiny-harmony"}
    assert by_argument.chat(TOKYO, tools=[get_weather]).tool_calls[0].arguments == {"location": "Tokyo"}
    by_argument.close()

    monkeypatch.setenv("OPENAI_BASE_URL", hub_server.url + "/")
    monkeypatch.setenv("OPENAI_API_KEY", hub_server.api_key)
    # Without backend="openai" the variable changes nothing: a local model stays local.
    assert gh.plan("tiny").chosen.backend != "openai"
    by_environment = gh.load("tiny", backend="openai")
    assert by_environment.info.details["base_url"] == hub_server.url
    assert by_environment.chat([{"role": "user", "content": "Say hello."}]).content
    by_environment.close()
    # A repo id is asked for as such; this server does not serve it.
    with pytest.raises(ModelNotFoundError, match="404"):
        gh.load("20b", backend="openai").chat(TOKYO)


def test_the_openai_backend_without_a_server_says_how_to_name_one(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendUnavailableError, match="OPENAI_BASE_URL"):
        gh.load("20b", backend="openai")
    with pytest.raises(InvalidRequestError, match="base_url must be an http"):
        gh.load("20b", base_url="localhost:8000/v1")


def test_tool_choice_travels_to_the_server(remote, tiny_model):
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    forced = {"type": "function", "name": "get_weather"}  # the Responses shape is sent in the Chat Completions one
    # Greedy on both sides: an endpoint's default temperature is 1, and the tiny model was never taught these
    # arguments, so sampling them would differ.
    local = tiny_model.chat(messages, tools=[get_weather], tool_choice=forced, temperature=0)
    far = remote.chat(messages, tools=[get_weather], tool_choice=forced, temperature=0)
    assert far.usage.prompt_tokens == local.usage.prompt_tokens
    assert [(c.name, c.raw_arguments) for c in far.tool_calls] == [(c.name, c.raw_arguments) for c in local.tool_calls]
    assert far.finish_reason == "tool_calls" and far.reasoning == local.reasoning
    with pytest.raises(InvalidRequestError, match="not among the tools offered"):
        remote.chat(messages, tools=[get_weather], tool_choice={"type": "function", "name": "get_time"})


def test_stop_strings_travel_to_the_server(remote, tiny_model):
    question = [{"role": "user", "content": "How many r's are in strawberry?"}]
    whole = tiny_model.chat(question, temperature=0).content
    assert whole == 'There are 3 r\'s in "strawberry".'
    far = remote.chat(question, stop=["r's"], temperature=0)
    assert (far.content, far.finish_reason) == ("There are 3 ", "stop")
