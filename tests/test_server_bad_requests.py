"""Requests that used to get a 500 get a 400 that names what is wrong, in OpenAI's error shape."""

from __future__ import annotations

import pytest
from scripted import ScriptedEngine, scripted_model

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")

from fastapi.testclient import TestClient

from gptoss_hub.server import create_app

ANSWER = "<|channel|>final<|message|>Ok.<|return|>"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(scripted_model(ScriptedEngine(ANSWER)), model_name="tiny")) as opened:
        yield opened


def _error(response, status=400):
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_json_nested_ten_thousand_levels(client):
    body = '{"model": "tiny", "messages": ' + "[" * 10_000 + "]" * 10_000 + "}"
    error = _error(client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"}))
    assert "nested more than 64 levels" in error["message"] and error["type"] == "invalid_request_error"
    shallow = '{"model": "tiny", "messages": ' + "[" * 70 + "]" * 70 + "}"
    assert "nested more than 64" in _error(client.post("/v1/responses", content=shallow))["message"]


@pytest.mark.parametrize("text_format", ["json", ["json_schema"]])
def test_responses_text_format_that_is_not_an_object(client, text_format):
    error = _error(client.post("/v1/responses", json={"model": "tiny", "input": "hi", "text": {"format": text_format}}))
    assert error["param"] == "text.format" and "must be an object" in error["message"]


def test_chat_response_format_with_a_string_schema(client):
    body = {"model": "tiny", "messages": USER, "response_format": {"type": "json_schema", "json_schema": "x"}}
    assert "response_format must be" in _error(client.post("/v1/chat/completions", json=body))["message"]


@pytest.mark.parametrize("seed", [2**64, 2**63, -1])
def test_a_seed_out_of_range(client, seed):
    error = _error(client.post("/v1/chat/completions", json={"model": "tiny", "messages": USER, "seed": seed}))
    assert "seed" in error["message"]


@pytest.mark.parametrize("field", ["content", "instructions"])
def test_a_lone_surrogate(client, field):
    body = '{"model": "tiny", "input": "hi", "instructions": "\\ud800"}'
    if field == "content":
        body = '{"model": "tiny", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    route = "/v1/responses" if field == "instructions" else "/v1/chat/completions"
    error = _error(client.post(route, content=body, headers={"content-type": "application/json"}))
    assert "surrogate" in error["message"]


def test_a_vanishing_temperature_samples_greedily():
    from gptoss_hub.engine import GenerationRequest

    for temperature in (1e-39, 1e-6):
        assert GenerationRequest(prompt_ids=[1], temperature=temperature).greedy
    assert not GenerationRequest(prompt_ids=[1], temperature=1e-4).greedy


def test_sampling_with_extreme_values_gives_a_token():
    torch = pytest.importorskip("torch")
    from gptoss_hub.backends.transformers.sampling import next_token

    from gptoss_hub.engine import GenerationRequest

    logits = torch.tensor([3.0, 1.0, 0.5, -2.0])
    generator = torch.Generator().manual_seed(0)
    for settings in ({"temperature": 1e-39}, {"top_p": 1e-300}, {"temperature": 1e-4, "top_p": 1e-300}, {"min_p": 1.0}):
        request = GenerationRequest(prompt_ids=[1], seed=0, **settings)
        assert next_token(logits, request, generator) == 0, settings


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/responses"])
@pytest.mark.parametrize("stream", ["yes", 1, "true"])
def test_stream_must_be_a_boolean(client, route, stream):
    body = {"model": "tiny", "stream": stream, **({"messages": USER} if "chat" in route else {"input": "hi"})}
    error = _error(client.post(route, json=body))
    assert error["param"] == "stream"


@pytest.mark.parametrize(("field", "value"), [("n", 2), ("n", 0), ("stop", ["a", "b", "c", "d", "e"]), ("stop", [""])])
def test_responses_refuse_several_outputs_and_bad_stops(client, field, value):
    error = _error(client.post("/v1/responses", json={"model": "tiny", "input": "hi", field: value}))
    assert error["param"] == field


@pytest.mark.parametrize(("field", "value"), [("n", 17), ("n", 0), ("stop", "x" * 300), ("stop", [3])])
def test_chat_refuses_too_many_choices_and_bad_stops(client, field, value):
    body = {"model": "tiny", "messages": USER, field: value}
    error = _error(client.post("/v1/chat/completions", json=body))
    assert error["param"].split(".")[0] == field  # "stop.str": pydantic names the type it tried


def test_unknown_routes_and_methods_answer_in_openais_error_shape(client):
    error = _error(client.get("/v1/nothing"), status=404)
    assert error["code"] == "not_found" and "/v1/chat/completions" in error["message"]
    assert _error(client.get("/v1/chat/completions"), status=405)["code"] == "method_not_allowed"


def test_the_model_answers_to_the_name_it_was_loaded_by():
    model = scripted_model(ScriptedEngine(ANSWER))  # loaded as "tiny", whose model is tiny-harmony
    with TestClient(create_app(model, model_name="served-as")) as opened:
        for name in ("served-as", "tiny", "tiny-harmony"):
            assert opened.post("/v1/chat/completions", json={"model": name, "messages": USER}).status_code == 200
        assert opened.post("/v1/chat/completions", json={"model": "other", "messages": USER}).status_code == 404


def test_health_and_metrics_are_not_requests_in_progress():
    with TestClient(create_app(scripted_model(ScriptedEngine(ANSWER)), model_name="tiny", max_pending=0)) as opened:
        assert opened.get("/health").status_code == 200  # a full server still answers its health check
        exposition = opened.get("/metrics").text
        assert "gptoss_hub_requests_in_progress 0.0" in exposition  # the scrape does not count itself
        assert opened.post("/v1/chat/completions", json={"model": "tiny", "messages": USER}).status_code == 429


def test_the_api_key_needs_exactly_one_matching_header():
    with TestClient(create_app(scripted_model(ScriptedEngine(ANSWER)), model_name="tiny", api_key="k")) as opened:
        body = {"model": "tiny", "messages": USER}
        assert opened.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer k"}).status_code == 200
        twice = [("authorization", "Bearer wrong"), ("authorization", "Bearer k")]
        assert opened.post("/v1/chat/completions", json=body, headers=twice).status_code == 401
        assert opened.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer kk"}).status_code == 401


def test_the_api_key_can_come_from_a_file(tmp_path):
    import argparse

    from gptoss_hub.cli.serve import api_key
    from gptoss_hub.errors import InvalidRequestError

    key_file = tmp_path / "key"
    key_file.write_text("s3cret\n")
    assert api_key(argparse.Namespace(api_key="ignored", api_key_file=str(key_file))) == "s3cret"
    assert api_key(argparse.Namespace(api_key="given", api_key_file=None)) == "given"
    key_file.write_text("\n")
    with pytest.raises(InvalidRequestError, match="is empty"):
        api_key(argparse.Namespace(api_key=None, api_key_file=str(key_file)))
    with pytest.raises(InvalidRequestError, match="No such file"):
        api_key(argparse.Namespace(api_key=None, api_key_file=str(tmp_path / "missing")))
