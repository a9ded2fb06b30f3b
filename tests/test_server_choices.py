"""Chat Completions' `n` (several choices, each its own generation) and `stop` strings in both APIs."""

from __future__ import annotations

import json

import pytest
from scripted import ScriptedEngine, scripted_model

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")

from fastapi.testclient import TestClient

from gptoss_hub.server import create_app

ANSWER = (
    "<|channel|>analysis<|message|>Say it, then END.<|end|><|start|>assistant<|channel|>final"
    "<|message|>Alpha beta. END gamma.<|return|>"
)
USER = [{"role": "user", "content": "Go."}]


def _client(*completions):
    engine = ScriptedEngine(*completions)
    return TestClient(create_app(scripted_model(engine), model_name="tiny")), engine


def _chunks(text):
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def test_chat_n_gives_a_choice_per_generation_with_seeds_of_their_own():
    client, engine = _client(ANSWER, ANSWER.replace("Alpha", "Omega"), ANSWER.replace("Alpha", "Sigma"))
    with client:
        body = client.post("/v1/chat/completions", json={"model": "tiny", "messages": USER, "n": 3, "seed": 7})
    assert body.status_code == 200, body.text
    completion = body.json()
    assert [choice["index"] for choice in completion["choices"]] == [0, 1, 2]
    contents = sorted(choice["message"]["content"] for choice in completion["choices"])
    assert contents == sorted(f"{word} beta. END gamma." for word in ("Alpha", "Omega", "Sigma"))
    assert sorted(request.seed for request in engine.requests) == [7, 8, 9]
    usage = completion["usage"]
    assert usage["prompt_tokens"] == len(engine.prompts[0])  # one prompt, counted once
    assert usage["completion_tokens"] == 3 * len(engine.completions[0])


def test_streamed_chat_n_interleaves_the_choices_and_finishes_each():
    client, engine = _client(ANSWER, ANSWER.replace("Alpha", "Omega"))
    with client:
        body = client.post(
            "/v1/chat/completions",
            json={"model": "tiny", "messages": USER, "n": 2, "stream": True, "stream_options": {"include_usage": True}},
        )
    chunks = _chunks(body.text)
    content = {0: "", 1: ""}
    finished = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            content[choice["index"]] += choice["delta"].get("content") or ""
            if choice["finish_reason"]:
                finished[choice["index"]] = choice["finish_reason"]
    assert sorted(content.values()) == ["Alpha beta. END gamma.", "Omega beta. END gamma."]
    assert finished == {0: "stop", 1: "stop"}
    assert chunks[-1]["usage"]["completion_tokens"] == 2 * len(engine.completions[0])
    assert body.text.rstrip().endswith("data: [DONE]")


def test_n_with_tools_the_server_runs_is_refused():
    client, _ = _client(ANSWER)
    with client:
        body = client.post(
            "/v1/chat/completions",
            json={"model": "tiny", "messages": USER, "n": 2, "tools": [{"type": "code_interpreter"}]},
        )
    assert body.status_code == 400 and body.json()["error"]["param"] == "n"


def test_stop_strings_end_the_answer_in_both_apis_streamed_or_not():
    client, _ = _client(ANSWER)
    with client:
        chat = client.post("/v1/chat/completions", json={"model": "tiny", "messages": USER, "stop": "END"}).json()
        streamed = client.post(
            "/v1/chat/completions", json={"model": "tiny", "messages": USER, "stop": ["END"], "stream": True}
        )
        response = client.post("/v1/responses", json={"model": "tiny", "input": "Go.", "stop": "END"}).json()
        events = client.post("/v1/responses", json={"model": "tiny", "input": "Go.", "stop": "END", "stream": True})
    choice = chat["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("Alpha beta. ", "stop")
    assert choice["message"]["reasoning_content"] == "Say it, then END."
    deltas = [c["choices"][0]["delta"].get("content") or "" for c in _chunks(streamed.text) if c["choices"]]
    assert "".join(deltas) == "Alpha beta. "
    assert response["status"] == "completed" and response["output"][-1]["content"][0]["text"] == "Alpha beta. "
    done = [json.loads(line[6:]) for line in events.text.splitlines() if '"response.output_text.done"' in line]
    assert done[0]["text"] == "Alpha beta. "


def test_the_tiny_model_answers_n_times_the_same_when_greedy(hub_server):
    import openai

    client = openai.OpenAI(base_url=hub_server.url, api_key=hub_server.api_key, max_retries=0)
    question = [{"role": "user", "content": "What is the weather in Tokyo?"}]
    one = client.chat.completions.create(model="tiny", messages=question, temperature=0)
    three = client.chat.completions.create(model="tiny", messages=question, temperature=0, n=3)
    assert [choice.index for choice in three.choices] == [0, 1, 2]
    answers = {
        json.dumps(choice.message.model_dump(exclude={"tool_calls"}), sort_keys=True) for choice in three.choices
    }
    assert len(answers) == 1
    calls = [
        [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or ()] for choice in three.choices
    ]
    first = [(c.function.name, c.function.arguments) for c in one.choices[0].message.tool_calls or ()]
    assert calls == [first] * 3


def test_the_choices_are_generated_at_the_same_time_so_a_batching_engine_batches_them():
    import asyncio

    class Concurrent(ScriptedEngine):
        """Counts the generations in flight at once (what a batching engine would put in one batch)."""

        in_flight = most = 0

        async def agenerate(self, request):
            Concurrent.in_flight += 1
            Concurrent.most = max(Concurrent.most, Concurrent.in_flight)
            try:
                await asyncio.sleep(0.05)  # the others start meanwhile
                for chunk in self.generate(request):
                    yield chunk
            finally:
                Concurrent.in_flight -= 1

    for stream in (False, True):
        Concurrent.most = 0
        client = TestClient(create_app(scripted_model(Concurrent(ANSWER)), model_name="tiny"))
        with client:
            body = client.post(
                "/v1/chat/completions", json={"model": "tiny", "messages": USER, "n": 4, "stream": stream}
            )
        assert body.status_code == 200 and Concurrent.most == 4, (stream, Concurrent.most)
