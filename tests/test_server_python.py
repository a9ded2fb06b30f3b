"""The python tool on the server: `code_interpreter` in the Responses API, and the Chat Completions extension."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from scripted import ScriptedEngine, scripted_model

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")

from fastapi.testclient import TestClient

from gptoss_hub.engine import GenerationChunk
from gptoss_hub.harmony import harmony_encoding
from gptoss_hub.server import create_app
from gptoss_hub.server.python_calls import PythonContainers
from gptoss_hub.tools.python import PythonResult, PythonSession

FIRST_CALL = (
    "<|channel|>analysis<|message|>Compute it.<|end|><|start|>assistant to=python<|channel|>analysis code<|message|>"
    "x = 6 * 7\nprint(x)<|call|>"
)
SECOND_CALL = "<|channel|>analysis to=python code<|message|>x + 1<|call|>"
ANSWER = "<|channel|>analysis<|message|>Got it.<|end|><|start|>assistant<|channel|>final<|message|>It is 43.<|return|>"
CODE_INTERPRETER = [{"type": "code_interpreter", "container": {"type": "auto"}}]


def _client(*completions):
    engine = ScriptedEngine(*completions)
    app = create_app(scripted_model(engine), model_name="tiny")
    return TestClient(app), app, engine


def _events(text):
    events = []
    for block in text.strip().split("\n\n"):
        data = next(line[len("data: ") :] for line in block.splitlines() if line.startswith("data: "))
        events.append(json.loads(data))
    return events


def test_responses_run_python_calls_on_the_server_and_answer_with_their_results():
    client, _, engine = _client(FIRST_CALL, SECOND_CALL, ANSWER)
    with client:
        body = client.post("/v1/responses", json={"model": "tiny", "input": "6 * 7 + 1?", "tools": CODE_INTERPRETER})
        assert body.status_code == 200, body.text
        response = body.json()
    assert response["status"] == "completed"
    kinds = [item["type"] for item in response["output"]]
    assert kinds == ["reasoning", "code_interpreter_call", "code_interpreter_call", "reasoning", "message"]
    first, second = response["output"][1], response["output"][2]
    assert (first["code"], first["outputs"], first["status"]) == (
        "x = 6 * 7\nprint(x)",
        [{"type": "logs", "logs": "42"}],
        "completed",
    )
    assert (second["code"], second["outputs"]) == ("x + 1", [{"type": "logs", "logs": "43"}])
    assert first["container_id"] == second["container_id"] and first["container_id"].startswith("cntr_")
    assert response["output"][-1]["content"][0]["text"] == "It is 43."
    # Usage counts every turn's prompt, so the tool outputs fed back are counted too.
    assert response["usage"]["input_tokens"] == sum(len(prompt) for prompt in engine.prompts)


def test_a_response_chain_keeps_its_python_session():
    client, app, engine = _client(FIRST_CALL, ANSWER, SECOND_CALL, ANSWER)
    with client:
        first = client.post(
            "/v1/responses", json={"model": "tiny", "input": "Set x.", "tools": CODE_INTERPRETER}
        ).json()
        second = client.post(
            "/v1/responses",
            json={"model": "tiny", "input": "x + 1?", "tools": CODE_INTERPRETER, "previous_response_id": first["id"]},
        ).json()
        assert len(app.state.served.containers) == 1
    call = next(item for item in second["output"] if item["type"] == "code_interpreter_call")
    assert call["outputs"] == [{"type": "logs", "logs": "43"}]  # x was defined in the first response's session
    assert call["container_id"] == first["output"][1]["container_id"]
    # The first turn is complete: its python call, on the analysis channel, left the prompt with the rest of its
    # chain of thought (harmony's rule); the answer stays, and the session keeps the state.
    prompt = _decoded(engine.prompts[2])
    assert "final<|message|>It is 43.<|end|><|start|>user<|message|>x + 1?" in prompt and "to=python" not in prompt
    assert not app.state.served.containers._sessions  # the server's shutdown freed every session


def test_streamed_responses_send_the_code_interpreter_events_in_order():
    client, _, _ = _client(FIRST_CALL, ANSWER)
    with client:
        text = client.post(
            "/v1/responses", json={"model": "tiny", "input": "Set x.", "tools": CODE_INTERPRETER, "stream": True}
        ).text
    events = _events(text)
    names = [event["type"] for event in events]
    start = names.index("response.code_interpreter_call.in_progress")
    assert (
        names[start - 1] == "response.output_item.added"
        and events[start - 1]["item"]["type"] == "code_interpreter_call"
    )
    after = names[start + 1 :]
    deltas = [e["delta"] for e in events[start + 1 :] if e["type"] == "response.code_interpreter_call_code.delta"]
    assert "".join(deltas) == "x = 6 * 7\nprint(x)"
    tail = [name for name in after if not name.endswith("code.delta")][:4]
    assert tail == [
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_item.done",
    ]
    done_item = events[start + 1 + after.index("response.output_item.done")]["item"]
    assert done_item["outputs"] == [{"type": "logs", "logs": "42"}] and done_item["status"] == "completed"
    assert names[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_chat_completions_run_python_and_return_the_calls_beside_the_answer():
    client, app, _ = _client(FIRST_CALL, SECOND_CALL, ANSWER)
    with client:
        completion = client.post(
            "/v1/chat/completions",
            json={"model": "tiny", "messages": [{"role": "user", "content": "6 * 7 + 1?"}], "tools": CODE_INTERPRETER},
        ).json()
        assert len(app.state.served.containers) == 0  # a session lives for its request
    message = completion["choices"][0]["message"]
    assert message["content"] == "It is 43." and "tool_calls" not in message
    assert message["reasoning_content"] == "Compute it.Got it."
    assert [(c["code"], c["output"]) for c in message["code_interpreter_calls"]] == [
        ("x = 6 * 7\nprint(x)", "42"),
        ("x + 1", "43"),
    ]
    assert completion["choices"][0]["finish_reason"] == "stop"


def test_streamed_chat_completions_show_each_call_once_it_ran_never_as_a_function_call():
    client, _, _ = _client(FIRST_CALL, SECOND_CALL, ANSWER)
    with client:
        text = client.post(
            "/v1/chat/completions",
            json={
                "model": "tiny",
                "messages": [{"role": "user", "content": "Go."}],
                "tools": CODE_INTERPRETER,
                "stream": True,
            },
        ).text
    chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    assert not any("tool_calls" in delta for delta in deltas)
    calls = [delta["code_interpreter_call"] for delta in deltas if "code_interpreter_call" in delta]
    assert [(c["code"], c["output"]) for c in calls] == [("x = 6 * 7\nprint(x)", "42"), ("x + 1", "43")]
    assert "".join(delta.get("content") or "" for delta in deltas) == "It is 43."


def test_responses_not_stored_free_their_session_at_once():
    client, app, _ = _client(FIRST_CALL, ANSWER)
    with client:
        response = client.post(
            "/v1/responses", json={"model": "tiny", "input": "Go.", "tools": CODE_INTERPRETER, "store": False}
        ).json()
        assert response["status"] == "completed" and len(app.state.served.containers) == 0


SLEEPING_CALL = "<|channel|>analysis to=python code<|message|>import time\ntime.sleep(30)<|call|>"


class SleepOrAnswerEngine(ScriptedEngine):
    """A python call that sleeps for a request that says "Sleep." and has no tool result yet; an answer
    for anything else."""

    def __init__(self):
        super().__init__(ANSWER)
        self.sleeping = ScriptedEngine(SLEEPING_CALL).completions[0]

    def generate(self, request):
        prompt = harmony_encoding().decode(request.prompt_ids)
        if "Sleep." in prompt and "<|start|>python" not in prompt:
            yield GenerationChunk(list(self.sleeping), "stop")
        else:
            yield from super().generate(request)


def test_long_python_cells_never_hold_up_other_conversations():
    # More cells running at once than the event loop's default executor has threads: the other requests'
    # turns (rendered in worker threads) must still run while the cells sleep.
    engine = SleepOrAnswerEngine()
    app = create_app(scripted_model(engine), model_name="tiny")
    opened: list[PythonSession] = []

    def session():
        opened.append(PythonSession(timeout=60))
        return opened[-1]

    app.state.served.containers = PythonContainers(most=64, open_session=session)
    sleepers = min(32, (os.cpu_count() or 1) + 4) + 1
    finished: list[str] = []
    with TestClient(app) as client:

        def sleeper():
            client.post("/v1/responses", json={"model": "tiny", "input": "Sleep.", "tools": CODE_INTERPRETER})
            finished.append("sleeper")

        threads = [threading.Thread(target=sleeper) for _ in range(sleepers)]
        for thread in threads:
            thread.start()
        while sum(session.running for session in opened) < sleepers:
            time.sleep(0.1)
        time.sleep(1)  # every cell is in its sleep now
        plain = client.post("/v1/responses", json={"model": "tiny", "input": "Hello."})
        finished.append("plain")
        assert plain.status_code == 200 and plain.json()["output"][-1]["content"][0]["text"] == "It is 43."
        for opened_session in opened:
            opened_session.close()  # ends the sleeping cells
        for thread in threads:
            thread.join()
    assert finished[0] == "plain", finished


def test_idle_sessions_are_freed_and_the_least_recently_used_goes_first():
    opened: list[PythonSession] = []

    def session():
        opened.append(PythonSession(timeout=10))
        return opened[-1]

    containers = PythonContainers(idle_seconds=0.3, most=2, open_session=session)
    first, _ = containers.get(None)
    containers.get(None)
    assert containers.get(first)[0] == first  # used again: now the most recent
    containers.get(None)  # a third: the least recently used (second) is freed
    assert opened[1]._closed and not opened[0]._closed and len(containers) == 2
    time.sleep(0.5)
    assert len(containers) == 0 and all(session._closed for session in opened)


def test_freeing_a_session_whose_cell_still_runs_ends_the_cell_instead_of_waiting_for_it():
    # The pool frees sessions on the event loop; waiting there for a cell's two-minute timeout would stall
    # every request the server is serving.
    containers = PythonContainers(idle_seconds=600, most=1, open_session=lambda: PythonSession(timeout=60))
    _, busy = containers.get(None)
    busy.run("started = True")
    results: list[PythonResult] = []
    worker = threading.Thread(target=lambda: results.append(busy.run("while True:\n    pass")))
    worker.start()
    while not busy.running:
        time.sleep(0.05)
    time.sleep(0.3)  # the cell is looping now
    containers.get(None)  # a second conversation: the busy session is the least recently used
    worker.join()
    assert busy._closed and results[0].status == "closed"  # not "timeout": its cell was ended, not awaited
    assert "closed while this call ran" in results[0].text


def _decoded(ids):
    from gptoss_hub.encoding import harmony_encoding

    return harmony_encoding().decode(ids)


# -- the tiny reference model, end to end ------------------------------------------------------------------


def test_the_tiny_model_runs_its_stateful_python_flow_through_both_apis(hub_server):
    """The v3 checkpoint's two-call flow over HTTP with the openai client: the server runs each call in one
    session (the second output exists only if the first call's `x` survived) and answers as taught."""
    import openai

    from gptoss_hub.testing.corpus import PYTHON_FLOWS

    (flow,) = [flow for flow in PYTHON_FLOWS if len(flow.calls) == 2]
    expected = [(call.body, call.output) for call in flow.calls]
    client = openai.OpenAI(base_url=hub_server.url, api_key=hub_server.api_key, max_retries=0)
    response = client.responses.create(model="tiny", input=flow.request, tools=CODE_INTERPRETER, temperature=0)
    calls = [item for item in response.output if item.type == "code_interpreter_call"]
    assert [(call.code, call.outputs[0].logs) for call in calls] == expected
    assert response.output_text == flow.answer

    completion = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": flow.request}],
        tools=[{"type": "code_interpreter"}],  # type: ignore[list-item]  # the server's extension
        temperature=0,
    )
    message = completion.choices[0].message
    ran = (message.model_extra or {})["code_interpreter_calls"]
    assert [(call["code"], call["output"]) for call in ran] == expected
    assert message.content == flow.answer
