"""A soak: the tiny model served for a while to a crowd that streams, leaves early, hangs up, sends long
prompts and sends garbage. Afterwards nothing is in progress, memory is back near where it started and the
model still answers exactly as the reference does."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from benchmark_scripts import load_benchmark

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")

#: Seconds of load; long enough for every kind of client to come round many times.
SOAK_SECONDS = 75
CLIENTS = 8
HELLO = [{"role": "user", "content": "Say hello."}]


def _rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _in_progress(metrics: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith("gptoss_hub_requests_in_progress "))
    return float(line.split()[1])


async def _stream_whole(http, base: str) -> None:
    body = {"model": "tiny", "messages": HELLO, "stream": True, "temperature": 0}
    content = []
    async with http.stream("POST", f"{base}/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    content.append(choice["delta"].get("content") or "")
    assert "".join(content) == "Hello!"


async def _stream_and_leave(http, base: str) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Tell me a long story." * 20}], "stream": True}
    async with http.stream("POST", f"{base}/v1/chat/completions", json=body) as response:
        seen = 0
        async for _ in response.aiter_lines():
            seen += 1
            if seen == 3:
                return  # leaves mid-stream


async def _hang_up(http, base: str) -> None:
    port = int(base.rsplit(":", 1)[1])
    payload = json.dumps({"model": "tiny", "input": "Tell me a long story." * 20}).encode()
    head = f"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}"
    connection = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 10)
    await asyncio.to_thread(connection.sendall, head.encode() + b"\r\n\r\n" + payload)
    await asyncio.sleep(0.2)
    connection.close()  # a non-streaming client that gave up


async def _long_prompt(http, base: str) -> None:
    words = " ".join(f"word{number}" for number in range(1500))
    body = {"model": "tiny", "messages": [{"role": "user", "content": words}], "max_tokens": 4}
    response = await http.post(f"{base}/v1/chat/completions", json=body)
    assert response.status_code in (200, 400), response.text


async def _garbage(http, base: str) -> None:
    for content, kind in (
        (b'{"model": "tiny", "messages": [', "application/json"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (
            json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "a" * 200_000}]}).encode(),
            "application/json",
        ),
        (
            json.dumps({"model": "tiny", "input": [{"type": "reasoning", "encrypted_content": "xx"}]}).encode(),
            "application/json",
        ),
        (b"\xff\xfe binary", "application/octet-stream"),
    ):
        response = await http.post(f"{base}/v1/chat/completions", content=content, headers={"content-type": kind})
        assert 400 <= response.status_code < 500, response.text


async def _store_response(http, base: str) -> None:
    response = await http.post(f"{base}/v1/responses", json={"model": "tiny", "input": "Say hello.", "temperature": 0})
    assert response.status_code == 200 and response.json()["output"][-1]["content"][0]["text"] == "Hello!"


KINDS = (_stream_whole, _stream_and_leave, _hang_up, _long_prompt, _garbage, _store_response)


@pytest.mark.slow
def test_the_server_comes_back_to_rest_after_a_soak_of_mixed_abuse(tmp_path):
    """`gptoss-hub serve` in a process of its own, so its memory is the server's alone."""
    from loopback import serving_hub

    arguments = ["--model", "tiny", "--backend", "transformers"]
    with serving_hub(arguments, tmp_path / "serve.log", start_seconds=600) as (server, base):
        _soak(base, server.pid)


def _soak(base: str, pid: int) -> None:
    import httpx

    async def crowd(seconds: float) -> dict[str, int]:
        counts = {kind.__name__: 0 for kind in KINDS}
        deadline = time.monotonic() + seconds

        async def client(number: int) -> None:
            async with httpx.AsyncClient(timeout=120) as http:
                turn = number
                while time.monotonic() < deadline:
                    kind = KINDS[turn % len(KINDS)]
                    await kind(http, base)
                    counts[kind.__name__] += 1
                    turn += 1

        await asyncio.gather(*(client(number) for number in range(CLIENTS)))
        return counts

    asyncio.run(crowd(15))  # warm up: the first of each kind allocates what it keeps
    before = _rss_mib(pid)
    counts = asyncio.run(crowd(SOAK_SECONDS))
    assert all(count >= 2 for count in counts.values()), counts
    with httpx.Client(timeout=60) as http:
        deadline = time.monotonic() + 60
        while _in_progress(http.get(f"{base}/metrics").text) != 0:
            assert time.monotonic() < deadline, "requests still in progress after the crowd left"
            time.sleep(0.2)
        after = _rss_mib(pid)
        assert after - before < 200, f"the server's memory grew from {before:.0f} MiB to {after:.0f} MiB"
        answer = http.post(f"{base}/v1/chat/completions", json={"model": "tiny", "messages": HELLO, "temperature": 0})
    assert answer.json()["choices"][0]["message"]["content"] == "Hello!"


@pytest.mark.slow
def test_the_abuse_benchmark_runs_every_kind():
    """`benchmarks/server_abuse.py` with one round: every kind is sent and measured (the figures unchecked)."""
    benchmark = load_benchmark("server_abuse")
    results = benchmark.main(["--rounds", "1"])
    assert set(results) == {"quiet", *benchmark.kinds("http://127.0.0.1:1", 1)}
    assert all(figures["health_ms"] > 0 and figures["rss_mib"] > 0 for figures in results.values())
