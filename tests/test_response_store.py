"""The Responses store is bounded by bytes as well as by count, and says what it holds in /metrics."""

from __future__ import annotations

import json

import pytest
from scripted import ScriptedEngine, scripted_model

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")

from fastapi.testclient import TestClient

from gptoss_hub.server import create_app
from gptoss_hub.server.errors import APIError
from gptoss_hub.server.responses import ResponseStore


def _conversation(characters: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": "x" * characters}]


def _size(messages) -> int:
    return len(json.dumps(messages).encode())


def test_the_oldest_conversations_go_when_the_bytes_run_out():
    store = ResponseStore(size=100, max_bytes=1000)
    for index in range(5):
        store.save(f"r{index}", _conversation(300), {"python": f"c{index}", "browser": f"b{index}"})
    kept = _size(_conversation(300))
    assert len(store) == 1000 // kept and store.bytes == len(store) * kept <= 1000
    with pytest.raises(APIError, match="No stored response 'r0'"):
        store.conversation("r0")
    assert store.sessions("r0") == {} and store.sessions("r4") == {"python": "c4", "browser": "b4"}
    assert store.conversation("r4") == _conversation(300)


def test_a_conversation_larger_than_the_store_is_not_kept():
    store = ResponseStore(size=100, max_bytes=1000)
    store.save("small", _conversation(10))
    store.save("huge", _conversation(5000))
    assert len(store) == 1 and store.bytes == _size(_conversation(10))
    with pytest.raises(APIError, match="Send the whole conversation"):
        store.conversation("huge")


def test_the_count_bound_still_holds():
    store = ResponseStore(size=3, max_bytes=10**9)
    for index in range(10):
        store.save(f"r{index}", _conversation(1))
    assert len(store) == 3 and store.bytes == 3 * _size(_conversation(1))


def test_metrics_show_what_the_store_holds():
    engine = ScriptedEngine("<|channel|>final<|message|>Hi.<|return|>")
    with TestClient(create_app(scripted_model(engine), model_name="tiny")) as client:
        assert client.post("/v1/responses", json={"model": "tiny", "input": "Hello"}).status_code == 200
        exposition = client.get("/metrics").text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in exposition.splitlines()
        if line.startswith("gptoss_hub_stored")
    }
    assert values["gptoss_hub_stored_responses"] == 1.0
    assert values["gptoss_hub_stored_response_bytes"] > len('"Hello"')
