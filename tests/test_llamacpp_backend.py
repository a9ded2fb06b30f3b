"""End to end on llama.cpp (llama-cpp-python) with the tiny-harmony checkpoint exported to GGUF."""

from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("llama_cpp", reason="the llamacpp extra is installed by .ci/run")

from prompt_reuse import chat_ten_turns

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.engine import GenerationRequest
from gptoss_hub.errors import BackendUnavailableError, InvalidRequestError
from gptoss_hub.events import ContentDelta, Done, ReasoningDelta, ToolCallArgumentsDelta

pytestmark = pytest.mark.slow

WEATHER_TOKYO = [{"role": "user", "content": "What is the weather in Tokyo?"}]
STOPS = [200002, 200012]


def test_info_says_what_runs(llamacpp_model):
    info = llamacpp_model.info
    assert (info.backend, info.plugin, info.device, info.dtype) == ("llamacpp/cpu", "llamacpp", "cpu", "f32")
    assert info.details["gguf"].endswith("-f32.gguf") and info.details["n_gpu_layers"] == 0
    assert info.capabilities["json_schema"] and not info.capabilities["batching"]


def test_greedy_ids_equal_the_reference_on_the_whole_corpus(llamacpp_model):
    """The corpus completions are what transformers (fp32) produces greedily: the build verifies it."""
    from gptoss_hub.testing import corpus_examples

    engine = llamacpp_model._engine
    mismatches = []
    examples = corpus_examples()
    for example in examples:
        request = GenerationRequest(
            prompt_ids=list(example.prompt_ids),
            temperature=0.0,
            max_tokens=len(example.completion_ids) + 4,
            stop_token_ids=STOPS,
        )
        produced = [t for chunk in engine.generate(request) for t in chunk.token_ids]
        if produced != list(example.completion_ids):
            mismatches.append(example.completion_text)
    assert not mismatches, f"{len(mismatches)}/{len(examples)} differ, first: {mismatches[0]!r}"


def test_tool_call_then_result_then_final_answer(llamacpp_model):
    reply = llamacpp_model.chat(WEATHER_TOKYO, tools=[get_weather])
    assert reply.finish_reason == "tool_calls" and reply.reasoning and not reply.content
    (call,) = reply.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"location": "Tokyo"})
    messages = [
        *WEATHER_TOKYO,
        reply.message,
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(get_weather("Tokyo"))},
    ]
    final = llamacpp_model.chat(messages, tools=[get_weather])
    weather = get_weather("Tokyo")
    assert final.finish_reason == "stop" and str(weather["temperature_c"]) in final.content

    results = []
    paris = llamacpp_model.run(
        [{"role": "user", "content": "What is the weather in Paris?"}],
        [get_weather],
        on_tool_result=lambda name, args, result: results.append((name, args)),
    )
    assert results == [("get_weather", {"location": "Paris"})]
    assert get_weather("Paris")["conditions"] in paris.content


def test_stream_equals_chat(llamacpp_model):
    for messages, tools in ((WEATHER_TOKYO, [get_weather]), ([{"role": "user", "content": "What is 2 + 2?"}], None)):
        events = list(llamacpp_model.stream(messages, tools=tools))
        reply = llamacpp_model.chat(messages, tools=tools)
        done = events[-1]
        assert isinstance(done, Done) and done.reply.token_ids == reply.token_ids
        assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == reply.reasoning
        assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == reply.content
        args = "".join(e.text for e in events if isinstance(e, ToolCallArgumentsDelta))
        assert args == "".join(c.raw_arguments for c in reply.tool_calls)


def test_ten_turn_chat_evaluates_only_what_is_new(llamacpp_model):
    chat_ten_turns(llamacpp_model)


def test_sampling_seed_and_limits(llamacpp_model):
    messages = [{"role": "user", "content": "Say hello."}]
    sampled = [llamacpp_model.chat(messages, temperature=5.0, seed=s, max_tokens=8).token_ids for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and sampled[0] != sampled[2]
    short = llamacpp_model.chat(messages, max_tokens=5)
    assert short.finish_reason == "length" and len(short.token_ids) == 5


def test_json_schema_constrains_the_output():
    import gptoss_hub as gh

    schema = {
        "type": "object",
        "properties": {"city": {"enum": ["Tokyo", "Paris"]}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    with gh.load("tiny-random", backend="llamacpp", n_threads=1) as model:
        engine = model._engine
        prompt = model.prompt_ids([{"role": "user", "content": "Weather, as JSON."}])
        request = GenerationRequest(prompt_ids=prompt, temperature=0.0, json_schema=schema, max_tokens=64)
        chunks = list(engine.generate(request))
    assert chunks[-1].finish_reason == "stop"
    ids = [t for c in chunks for t in c.token_ids][:-1]  # the end-of-generation id closes it
    from gptoss_hub.encoding import harmony_encoding

    value = json.loads(harmony_encoding().decode(ids))
    assert value["city"] in ("Tokyo", "Paris") and isinstance(value["days"], int) and set(value) == {"city", "days"}


def test_control_tokens_never_fill_a_json_string(llamacpp_model):
    """llama.cpp's grammar matches a token by its text, and "<|end|>" is text a JSON string may hold: under a
    schema no harmony control token is sampled, or the reply would end inside the JSON."""
    from gptoss_hub.encoding import FIRST_SPECIAL_ID

    engine = llamacpp_model._engine
    schema = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
    for question in ("Say hello.", "How many r's are in strawberry?", "What is 2 + 2?"):
        prompt = llamacpp_model.prompt_ids([{"role": "user", "content": question}])
        request = GenerationRequest(prompt_ids=prompt, temperature=1.0, seed=7, json_schema=schema, max_tokens=48)
        ids = [t for chunk in engine.generate(request) for t in chunk.token_ids]
        assert all(token < FIRST_SPECIAL_ID for token in ids[:-1]), ids


def test_concurrent_callers_are_served_one_at_a_time(llamacpp_model):
    prompts = [
        llamacpp_model.prompt_ids([{"role": "user", "content": q}])
        for q in ("What is 2 + 2?", "Say hello.", "What color is the sky?")
    ]
    engine = llamacpp_model._engine

    def run(prompt):
        request = GenerationRequest(prompt_ids=prompt, temperature=0.0, max_tokens=30, stop_token_ids=STOPS)
        return [t for c in engine.generate(request) for t in c.token_ids]

    sequential = [run(p) for p in prompts]
    results: dict[int, list[int]] = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, run(prompts[n]))) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [results[n] for n in range(3)] == sequential


def test_mxfp4_export_runs_with_the_same_harmony_structure():
    import gptoss_hub as gh

    with gh.load("tiny", backend="llamacpp", quantization="mxfp4", n_threads=1) as model:
        assert model.info.details["gguf"].endswith("-mxfp4.gguf") and model.info.quantization == "mxfp4-moe"
        reply = model.chat(WEATHER_TOKYO, tools=[get_weather])
        plain = model.chat([{"role": "user", "content": "What is 2 + 2?"}])
    assert reply.error is None and reply.reasoning and reply.finish_reason == "tool_calls"
    assert [c.name for c in reply.tool_calls] == ["get_weather"]
    assert plain.error is None and [m["channel"] for m in plain.harmony] == ["analysis", "final"]


def test_options_are_checked():
    import gptoss_hub as gh

    with pytest.raises(
        InvalidRequestError, match=r"Accepted: n_gpu_layers, n_ctx, .*; and on every backend device= and max_context="
    ):
        gh.load("tiny", backend="llamacpp", gpu_layers=3)
    with pytest.raises(BackendUnavailableError, match=r"(?s)no CUDA GPU was found.*device='cuda' was asked for"):
        gh.load("tiny", backend="llamacpp", device="cuda")
    with pytest.raises(InvalidRequestError, match="not both"):
        gh.load("tiny", backend="llamacpp", n_ctx=1024, max_context=2048)


def test_gguf_repo_loads_from_the_hub_cache_offline(offline_hub):
    """A GGUF repo id goes through huggingface_hub; offline, the file is chosen among the cached ones."""
    import subprocess
    import sys

    from gptoss_hub.testing.gguf_exports import gguf_path

    files = {f"gpt-oss-tiny-{outtype}.gguf": gguf_path("tiny-harmony", outtype) for outtype in ("f32", "mxfp4")}
    env = offline_hub("someorg/gpt-oss-tiny-GGUF", files)
    code = (
        "import gptoss_hub as gh; m = gh.load('someorg/gpt-oss-tiny-GGUF', quantization='f32', n_threads=1);"
        "r = m.chat([{'role': 'user', 'content': 'What is 2 + 2?'}], temperature=0);"
        "print(m.info.backend, m.info.details['gguf'].rsplit('/', 1)[-1], repr(r.content))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "llamacpp/cpu gpt-oss-tiny-f32.gguf '2 + 2 = 4.'"
    ambiguous = subprocess.run(
        [sys.executable, "-c", "import gptoss_hub as gh; gh.load('someorg/gpt-oss-tiny-GGUF', quantization='q4')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ambiguous.returncode != 0 and "available: gpt-oss-tiny-f32.gguf, gpt-oss-tiny-mxfp4.gguf" in ambiguous.stderr


def test_llamacpp_log_goes_to_logging_not_the_terminal(capfd, caplog):
    """llama.cpp's warnings (here: a context past the model's 4096) reach the `gptoss_hub.llamacpp.native`
    logger at DEBUG and never the terminal; by default the context is the model's own, so none is raised."""
    import logging

    import gptoss_hub as gh

    with caplog.at_level(logging.DEBUG, logger="gptoss_hub.llamacpp.native"):
        past = gh.load("tiny", backend="llamacpp", n_ctx=8192, n_threads=1)
        past.close()
        default = gh.load("tiny", backend="llamacpp", n_threads=1)
        assert default.info.details["n_ctx"] == 4096  # the model's trained context, below the hub's 8192
        default.close()
    captured = capfd.readouterr()
    assert "n_ctx_seq" not in captured.err and "llama_" not in captured.err
    warnings = [r.getMessage() for r in caplog.records if r.name == "gptoss_hub.llamacpp.native"]
    assert sum("n_ctx_seq (8192) > n_ctx_train (4096)" in w for w in warnings) == 1
