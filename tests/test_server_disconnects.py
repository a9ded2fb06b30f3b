"""Clients that leave: their generations stop, whether they streamed or not, and whether they left before the
first token or while queued behind another request; a stream's headers go out before the first token."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from scripted import ScriptedEngine, scripted_model

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")

from gptoss_hub.server import create_app

#: A long answer: 300 tokens at 20 ms each take 6 s, far longer than a client that leaves at once stays.
LONG = "<|channel|>final<|message|>" + " la" * 300 + "<|return|>"
TOKENS = len(ScriptedEngine(LONG).completions[0])


class SlowEngine(ScriptedEngine):
    """A scripted engine that serves one request at a time, waits for `gate` before its first token, then
    yields one token every 20 ms, and records how many tokens each generation produced once it ends."""

    def __init__(self, *completions: str):
        super().__init__(*completions)
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Semaphore(0)
        self.produced: list[int] = []
        self.lock = threading.Lock()

    def generate(self, request):
        with self.lock:
            self.started.release()
            produced = 0
            try:
                assert self.gate.wait(60), "the test never opened the gate"
                for chunk in super().generate(request):
                    time.sleep(0.02)
                    produced += len(chunk.token_ids)
                    yield chunk
            finally:
                self.produced.append(produced)


def _raw_request(port: int, path: str, body: bytes) -> socket.socket:
    """An HTTP request sent on a socket the test can close whenever it likes."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    connection.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return connection


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _chat(stream: bool) -> bytes:
    import json

    body = {"model": "tiny", "messages": [{"role": "user", "content": "Sing."}], "stream": stream}
    return json.dumps(body).encode()


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_a_non_streaming_client_that_leaves_stops_its_generation(serve_app, path):
    engine = SlowEngine(LONG)
    app = create_app(scripted_model(engine), model_name="tiny")
    base = serve_app(app)
    body = _chat(False) if "chat" in path else b'{"model": "tiny", "input": "Sing."}'
    connection = _raw_request(_port(base), path, body)
    assert engine.started.acquire(timeout=30)
    connection.close()
    _wait_for(lambda: engine.produced, "the generation of a client that left never ended")
    assert engine.produced[0] < TOKENS // 2  # it stopped long before the end
    _wait_for(lambda: b'status="499"' in app.state.served.metrics.exposition(), "the request is not counted as 499")


def test_a_streaming_client_gets_its_headers_before_the_first_token_and_may_leave_before_it(serve_app):
    """The headers arrive while the engine has not produced a token (its gate is shut); the client leaves
    then, and once the gate opens the generation stops at its first chunk."""
    engine = SlowEngine(LONG)
    engine.gate.clear()
    base = serve_app(create_app(scripted_model(engine), model_name="tiny"))
    connection = _raw_request(_port(base), "/v1/chat/completions", _chat(True))
    head = b""
    while b"\r\n\r\n" not in head:
        piece = connection.recv(4096)
        assert piece, "the server closed the connection"
        head += piece
    assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
    assert not engine.produced and engine.started.acquire(timeout=30)  # generating, no token yet
    connection.close()
    time.sleep(0.5)  # the server notices the client left
    engine.gate.set()
    _wait_for(lambda: engine.produced, "the generation never ended")
    assert engine.produced[0] <= 1


@pytest.mark.slow
def test_a_queued_request_whose_client_left_does_not_run_to_the_end(serve_app):
    """Two requests on an engine that serves one at a time: the second client leaves while it waits; once
    the first is done, the second's generation stops at once instead of running its whole answer."""
    import httpx

    engine = SlowEngine(LONG)
    base = serve_app(create_app(scripted_model(engine), model_name="tiny"))
    first: list[httpx.Response] = []
    staying = threading.Thread(
        target=lambda: first.append(httpx.post(f"{base}/v1/chat/completions", content=_chat(False), timeout=60))
    )
    staying.start()
    assert engine.started.acquire(timeout=30)
    leaving = _raw_request(_port(base), "/v1/chat/completions", _chat(False))
    time.sleep(0.5)  # queued behind the first
    leaving.close()
    staying.join(60)
    assert first[0].status_code == 200
    _wait_for(lambda: len(engine.produced) == 2, "the departed client's generation never ended")
    assert engine.produced[0] == TOKENS and engine.produced[1] <= 1
