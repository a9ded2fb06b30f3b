"""Sealed reasoning: the Responses API's stateless multi-turn, the chain of thought kept by the client."""

from __future__ import annotations

import argparse
import json

import pytest
from scripted import ScriptedEngine, scripted_model

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")

from fastapi.testclient import TestClient

from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.server import create_app
from gptoss_hub.server.sealed_reasoning import ReasoningSeal, UnsealError

THOUGHT = "The user wants the weather; call get_weather for Tokyo, then report it."
CALL = (
    f"<|channel|>analysis<|message|>{THOUGHT}<|end|><|start|>assistant to=functions.get_weather<|channel|>commentary"
    ' <|constrain|>json<|message|>{"location": "Tokyo"}<|call|>'
)
ANSWER = "<|channel|>final<|message|>It is sunny in Tokyo.<|return|>"
WEATHER = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    }
]


def test_sealed_text_opens_only_with_the_same_secret_and_unaltered():
    seal = ReasoningSeal(b"a secret of enough bytes")
    token = seal.seal("thinking… 🤔")
    assert seal.unseal(token) == "thinking… 🤔" and "thinking" not in token
    assert ReasoningSeal(b"a secret of enough bytes").unseal(token) == "thinking… 🤔"  # a replica, a restart
    assert seal.seal("same") != seal.seal("same")  # a fresh nonce each time
    with pytest.raises(UnsealError, match="another server"):
        ReasoningSeal(b"another secret, not ours").unseal(token)
    with pytest.raises(UnsealError, match="another server"):
        ReasoningSeal().unseal(token)  # a random key
    flipped = bytearray(token.encode())
    flipped[-5] = ord("A") if flipped[-5] != ord("A") else ord("B")
    with pytest.raises(UnsealError, match="altered"):
        seal.unseal(flipped.decode())
    for garbage in ("", "not base64!", "AAAA"):
        with pytest.raises(UnsealError):
            seal.unseal(garbage)


def _client(*completions):
    engine = ScriptedEngine(*completions)
    app = create_app(scripted_model(engine), model_name="tiny", reasoning_seal=ReasoningSeal(b"test secret, 16+ bytes"))
    return TestClient(app), engine


def _first_turn(client, include=True):
    body = {"model": "tiny", "input": "Weather in Tokyo?", "tools": WEATHER, "store": False}
    if include:
        body["include"] = ["reasoning.encrypted_content"]
    return client.post("/v1/responses", json=body).json()


def _second_turn_input(first, keep_reasoning=True):
    reasoning, call = first["output"][0], first["output"][1]
    kept = [
        {"type": "reasoning", "id": reasoning["id"], "summary": [], "encrypted_content": reasoning["encrypted_content"]}
    ]
    return [
        {"role": "user", "content": "Weather in Tokyo?"},
        *(kept if keep_reasoning else []),
        {"type": "function_call", "call_id": call["call_id"], "name": call["name"], "arguments": call["arguments"]},
        {"type": "function_call_output", "call_id": call["call_id"], "output": '{"sky": "sunny"}'},
    ]


def test_a_tool_chain_continues_with_its_reasoning_and_nothing_stored():
    client, engine = _client(CALL, ANSWER, ANSWER)
    with client:
        first = _first_turn(client)
        assert first["output"][0]["type"] == "reasoning" and first["output"][0]["encrypted_content"]
        for keep in (True, False):
            second = client.post(
                "/v1/responses",
                json={"model": "tiny", "input": _second_turn_input(first, keep), "tools": WEATHER, "store": False},
            )
            assert second.status_code == 200, second.text
        assert len(client.app.state.served.store) == 0
    decode = harmony_encoding().decode
    # Harmony keeps the reasoning of a turn that called a tool: the sealed one came back into the prompt.
    assert THOUGHT in decode(engine.prompts[1]) and THOUGHT not in decode(engine.prompts[2])


def test_reasoning_is_sealed_only_when_asked_and_in_streams_too():
    client, _ = _client(CALL)
    with client:
        plain = _first_turn(client, include=False)
        streamed = client.post(
            "/v1/responses",
            json={
                "model": "tiny",
                "input": "Weather?",
                "tools": WEATHER,
                "stream": True,
                "include": ["reasoning.encrypted_content"],
            },
        )
    assert "encrypted_content" not in plain["output"][0]
    done = [json.loads(line[6:]) for line in streamed.text.splitlines() if '"response.output_item.done"' in line]
    sealed = done[0]["item"]["encrypted_content"]
    assert ReasoningSeal(b"test secret, 16+ bytes").unseal(sealed) == THOUGHT


def test_an_altered_sealed_reasoning_or_an_unknown_include_is_a_400():
    client, _ = _client(CALL, ANSWER)
    with client:
        first = _first_turn(client)
        altered = _second_turn_input(first)
        altered[1]["encrypted_content"] = altered[1]["encrypted_content"][:-8] + "AAAAAAAA"
        refused = client.post("/v1/responses", json={"model": "tiny", "input": altered, "tools": WEATHER})
        unknown = client.post(
            "/v1/responses", json={"model": "tiny", "input": "hi", "include": ["message.output_text.logprobs"]}
        )
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["param"] == "input[1].encrypted_content"
    assert error["code"] == "invalid_encrypted_content"
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "include"


def test_the_key_file_and_the_environment_give_the_servers_secret(tmp_path, monkeypatch):
    from gptoss_hub.cli.serve import reasoning_seal
    from gptoss_hub.errors import InvalidRequestError

    key = tmp_path / "key"
    key.write_text("a long enough shared secret\n")
    sealed = reasoning_seal(argparse.Namespace(reasoning_key_file=str(key))).seal("x")
    assert ReasoningSeal(b"a long enough shared secret").unseal(sealed) == "x"
    monkeypatch.setenv("GPTOSS_HUB_REASONING_KEY", "from the environment, long")
    from_env = reasoning_seal(argparse.Namespace(reasoning_key_file=None)).seal("y")
    assert ReasoningSeal(b"from the environment, long").unseal(from_env) == "y"
    key.write_text("short")
    with pytest.raises(InvalidRequestError, match="at least"):
        reasoning_seal(argparse.Namespace(reasoning_key_file=str(key)))
