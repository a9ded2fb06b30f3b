"""End to end on the real transformers runtime with the trained tiny-harmony checkpoint."""

import json

import pytest

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.events import ContentDelta, Done, ReasoningDelta, ToolCallArgumentsDelta

pytestmark = pytest.mark.slow

WEATHER_TOKYO = [{"role": "user", "content": "What is the weather in Tokyo?"}]


def test_info_says_how_and_why(tiny_model):
    info = tiny_model.info
    assert (info.backend, info.plugin, info.device, info.dtype) == (
        "transformers/cpu",
        "transformers",
        "cpu",
        "float32",
    )
    assert info.reasons[0].startswith("transformers/cpu: the highest-ranked backend")
    assert any("mxfp4+fa3 passed over" in r for r in info.reasons)


def test_tool_call_then_final_answer_with_the_tool_output(tiny_model):
    reply = tiny_model.chat(WEATHER_TOKYO, tools=[get_weather])
    assert reply.finish_reason == "tool_calls" and reply.reasoning and not reply.content
    (call,) = reply.tool_calls
    assert (call.name, call.arguments, call.raw_arguments) == (
        "get_weather",
        {"location": "Tokyo"},
        '{"location": "Tokyo"}',
    )

    result = json.dumps(get_weather("Tokyo"))
    messages = [*WEATHER_TOKYO, reply.message, {"role": "tool", "tool_call_id": call.id, "content": result}]
    final = tiny_model.chat(messages, tools=[get_weather])
    assert final.finish_reason == "stop" and not final.tool_calls
    weather = get_weather("Tokyo")
    assert str(weather["temperature_c"]) in final.content and weather["conditions"] in final.content


def test_paris_through_the_tool_loop(tiny_model):
    results = []
    reply = tiny_model.run(
        [{"role": "user", "content": "What is the weather in Paris?"}],
        [get_weather],
        on_tool_result=lambda name, args, result: results.append((name, args)),
    )
    assert results == [("get_weather", {"location": "Paris"})]
    assert reply.finish_reason == "stop" and get_weather("Paris")["conditions"] in reply.content


def test_plain_question_splits_reasoning_and_content(tiny_model):
    reply = tiny_model.chat([{"role": "user", "content": "What is 2 + 2?"}])
    assert reply.finish_reason == "stop" and reply.token_ids[-1] == 200002  # <|return|>
    assert reply.reasoning and reply.content
    assert "<|" not in reply.content and reply.reasoning not in reply.content
    assert [m["channel"] for m in reply.harmony] == ["analysis", "final"]


def test_stream_concatenates_to_exactly_chat(tiny_model):
    for messages, tools in ((WEATHER_TOKYO, [get_weather]), ([{"role": "user", "content": "Say hello."}], None)):
        events = list(tiny_model.stream(messages, tools=tools))
        reply = tiny_model.chat(messages, tools=tools)
        done = events[-1]
        assert isinstance(done, Done)
        assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == reply.reasoning
        assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == reply.content
        args = "".join(e.text for e in events if isinstance(e, ToolCallArgumentsDelta))
        assert args == "".join(c.raw_arguments for c in reply.tool_calls)
        assert done.reply.token_ids == reply.token_ids and done.reply.finish_reason == reply.finish_reason


def test_kv_cache_decoding_equals_full_forward_greedy(tiny_model):
    import torch

    prompt = tiny_model.prompt_ids(WEATHER_TOKYO, tools=[get_weather])
    reply = tiny_model.chat(WEATHER_TOKYO, tools=[get_weather], max_tokens=12)
    model = tiny_model._engine.model
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(12):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    assert reply.token_ids == ids[len(prompt) :]


def test_sampling_honours_seed_and_limits(tiny_model):
    messages = [{"role": "user", "content": "Say hello."}]
    sampled = [tiny_model.chat(messages, temperature=5.0, seed=s, max_tokens=8).token_ids for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and sampled[0] != sampled[2]
    assert (
        tiny_model.chat(messages, temperature=5.0, top_k=1, max_tokens=8).token_ids
        == tiny_model.chat(messages, max_tokens=8).token_ids
    )
    short = tiny_model.chat(messages, max_tokens=5)
    assert short.finish_reason == "length" and len(short.token_ids) == 5


def test_unknown_load_option_is_a_typed_error():
    import gptoss_hub as gh

    with pytest.raises(
        InvalidRequestError, match="Accepted: dtype, threads; and on every backend device= and max_context="
    ):
        gh.load("tiny", backend="transformers", flash=True)
    with pytest.raises(InvalidRequestError, match="runs on device 'cpu'"):
        gh.load("tiny", backend="transformers", device="cuda")


def test_hugging_face_repo_id_loads_from_the_hub_cache_offline(offline_hub):
    """A repo id goes through huggingface_hub; with HF_HUB_OFFLINE=1 its local cache is used."""
    import subprocess
    import sys

    from gptoss_hub.testing import checkpoint_path

    env = offline_hub("someorg/gpt-oss-tiny", {p.name: p for p in checkpoint_path("tiny-harmony").iterdir()})
    code = (
        "import gptoss_hub as gh; m = gh.load('someorg/gpt-oss-tiny', backend='transformers');"
        "r = m.chat([{'role': 'user', 'content': 'What is 2 + 2?'}]);"
        "print(m.info.model, m.info.backend, repr(r.content))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "someorg/gpt-oss-tiny transformers/cpu '2 + 2 = 4.'"
    missing = subprocess.run(
        [sys.executable, "-c", "import gptoss_hub as gh; gh.load('someorg/not-cached')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode != 0 and "HF_HUB_OFFLINE is set" in missing.stderr


def test_two_turn_tool_conversation_drops_only_completed_reasoning(tiny_model, monkeypatch):
    from gptoss_hub.encoding import harmony_encoding

    prompts = []
    engine = tiny_model._engine
    original = engine.generate

    def spy(request):
        prompts.append(request.prompt_ids)
        yield from original(request)

    monkeypatch.setattr(engine, "generate", spy)
    first_turn = [{"role": "user", "content": "What is the weather in Tokyo?"}]
    first = tiny_model.run(first_turn, [get_weather])
    assert get_weather("Tokyo")["conditions"] in first.content
    second_turn = [*first_turn, *first.transcript, {"role": "user", "content": "What is the weather in Paris?"}]
    prompts.clear()
    second = tiny_model.run(second_turn, [get_weather])

    calls = [m for m in second.transcript if m.get("tool_calls")]
    assert [json.loads(c["tool_calls"][0]["function"]["arguments"]) for c in calls] == [{"location": "Paris"}]
    paris = get_weather("Paris")
    assert str(paris["temperature_c"]) in second.content and paris["conditions"] in second.content
    last_prompt = harmony_encoding().decode(prompts[-1])
    first_reasoning = [m["thinking"] for m in first.transcript if m.get("thinking")]
    assert first_reasoning and not any(r in last_prompt for r in first_reasoning)  # turn one is complete
    assert calls[0]["thinking"] in last_prompt  # the turn in progress keeps its reasoning


def test_only_the_last_positions_logits_are_computed(tiny_model):
    """A prefill of a long prompt makes one row of logits, not one per prompt position (201,088 floats each)."""
    from gptoss_hub.engine import GenerationRequest

    engine = tiny_model._engine
    shapes = []
    hook = engine.model.register_forward_hook(lambda module, args, output: shapes.append(tuple(output.logits.shape)))
    try:
        prompt = tiny_model.prompt_ids([{"role": "user", "content": "weather " * 600}])
        request = GenerationRequest(prompt_ids=prompt, max_tokens=3, temperature=0.0)
        produced = [t for chunk in engine.generate(request) for t in chunk.token_ids]
    finally:
        hook.remove()
    assert len(prompt) > 600 and len(produced) == 3
    assert shapes == [(1, 1, 201088)] * 3  # the prefill and each decoding step: the last position only
