"""Fuzzing the server: no request, however malformed, gets a 5xx, and every refusal is OpenAI's error shape.

schemathesis generates requests from the server's own OpenAPI description (which declares the real request
bodies); hypothesis mutates valid bodies of both APIs with arbitrary JSON. Both run a fixed, derandomized
budget against a scripted engine, so the run is bounded and the same every time.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted import ScriptedEngine, scripted_model

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")
pytest.importorskip("schemathesis", reason="installed by .ci/run with the dev extra")

import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error

from gptoss_hub.server import create_app

ANSWER = "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Ok.<|return|>"
APP = create_app(scripted_model(ScriptedEngine(ANSWER)), model_name="tiny")
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_the_openapi_description_declares_the_request_bodies_and_metrics_type():
    with TestClient(APP) as client:
        document = client.get("/openapi.json").json()
    for path, model in (("/v1/chat/completions", "ChatCompletionRequest"), ("/v1/responses", "ResponsesRequest")):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}
        assert "messages" in str(document["components"]["schemas"][model]) or path.endswith("responses")
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain; version=0.0.4; charset=utf-8"]


@SCHEMA.parametrize()
@FUZZ
def test_no_generated_request_gets_a_server_error(case):
    case.call_and_validate(checks=[not_a_server_error])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
CHAT_FIELDS = st.sampled_from(
    [
        "model",
        "messages",
        "tools",
        "tool_choice",
        "reasoning_effort",
        "response_format",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "seed",
        "max_tokens",
        "n",
        "stop",
        "stream",
        "stream_options",
        "web_search_options",
    ]
)
RESPONSES_FIELDS = st.sampled_from(
    [
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "reasoning",
        "text",
        "temperature",
        "top_p",
        "max_output_tokens",
        "seed",
        "stream",
        "store",
        "previous_response_id",
        "include",
        "stop",
        "n",
    ]
)


def _answered_properly(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str)


@given(changes=st.dictionaries(CHAT_FIELDS, JSON, min_size=1, max_size=3))
@FUZZ
def test_chat_bodies_with_any_field_replaced_by_any_json_are_answered_or_refused(changes):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]} | changes
    with TestClient(APP) as client:
        _answered_properly(client.post("/v1/chat/completions", json=body))


@given(changes=st.dictionaries(RESPONSES_FIELDS, JSON, min_size=1, max_size=3))
@FUZZ
def test_responses_bodies_with_any_field_replaced_by_any_json_are_answered_or_refused(changes):
    body = {"model": "tiny", "input": "hi"} | changes
    with TestClient(APP) as client:
        _answered_properly(client.post("/v1/responses", json=body))


@given(
    messages=st.lists(
        st.dictionaries(
            st.sampled_from(["role", "content", "tool_calls", "tool_call_id", "name", "thinking"]), JSON, max_size=4
        ),
        min_size=1,
        max_size=3,
    )
)
@FUZZ
def test_any_list_of_message_like_objects_is_answered_or_refused(messages):
    with TestClient(APP) as client:
        _answered_properly(client.post("/v1/chat/completions", json={"model": "tiny", "messages": messages}))
