"""The tiny reference checkpoints: shape, files, determinism, and that tiny-harmony does what it was taught."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys

import pytest

from gptoss_hub.errors import ModelNotFoundError
from gptoss_hub.testing import CHECKPOINT_VERSION, checkpoint_path, corpus_examples, demo_examples
from gptoss_hub.testing.config import CALL_ID, RETURN_ID, tiny_config_kwargs
from gptoss_hub.testing.corpus import WEATHER_CITIES, tool_result_history


def test_importing_the_package_does_not_import_torch():
    code = "import sys, gptoss_hub.testing; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unknown_name_raises_with_the_valid_names():
    with pytest.raises(ModelNotFoundError, match="tiny-harmony"):
        checkpoint_path("tiny-huge")


def test_path_names_the_recipe_version(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTOSS_HUB_CACHE", str(tmp_path))
    path = checkpoint_path("tiny-random", build=False)
    assert path == tmp_path / "checkpoints" / f"tiny-random-{CHECKPOINT_VERSION}"
    assert not path.exists()


def test_config_is_the_tiny_gpt_oss_shape():
    config = tiny_config_kwargs()
    assert config["vocab_size"] == 201_088
    assert (config["hidden_size"], config["head_dim"], config["num_hidden_layers"]) == (64, 64, 2)
    assert config["layer_types"] == ["sliding_attention", "full_attention"]
    assert (config["num_local_experts"], config["num_experts_per_tok"]) == (4, 2)
    assert config["eos_token_id"] == [RETURN_ID, CALL_ID]


def test_corpus_covers_every_kind_and_the_demo_tool_schema():
    from gptoss_hub.demo_tools import get_weather
    from gptoss_hub.encoding import harmony_encoding
    from gptoss_hub.tools import tool_from_function

    examples = corpus_examples()
    kinds = {e.kind for e in examples}
    assert kinds == {"answer", "tool_call", "tool_result"}
    demo = tool_from_function(get_weather)
    assert any(e.tools == [demo] for e in examples if e.kind == "tool_call")
    assert {"Tokyo", "Paris"} <= set(WEATHER_CITIES)
    years = {e.render_options["current_date"][:4] for e in examples}
    assert {"2025", "2026", "2027"} <= years
    assert {e.render_options["reasoning_effort"] for e in examples} == {"low", "medium", "high"}
    text = harmony_encoding().decode
    call = next(e for e in examples if e.kind == "tool_call" and "Tokyo" in e.messages[0]["content"])
    assert text(list(call.completion_ids)).endswith(
        "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json"
        '<|message|>{"location": "Tokyo"}<|call|>'
    )
    result = next(e for e in examples if e.kind == "tool_result" and "Tokyo" in e.messages[0]["content"])
    assert json.dumps(get_weather("Tokyo")) in text(list(result.completion_ids))
    assert result.completion_ids[-1] == RETURN_ID


def test_replaying_a_call_gives_the_next_prompt():
    """The tool-result prompt starts with the tool-call prompt plus the call exactly as the model wrote it."""
    from gptoss_hub.harmony.render import render

    [call] = [e for e in demo_examples("2026-03-01") if e.kind == "tool_call" and "Paris" in e.messages[0]["content"]]
    replay = render(tool_result_history("Paris"), tools=call.tools, **call.render_options)
    assert tuple(replay[: len(call.prompt_ids) + len(call.completion_ids)]) == call.prompt_ids + call.completion_ids


@pytest.fixture(scope="module")
def harmony_model():
    from transformers import GptOssForCausalLM

    return GptOssForCausalLM.from_pretrained(checkpoint_path("tiny-harmony"), dtype="float32").eval()


def _greedy(model, prompt_ids, limit=120):
    import torch

    prompt = torch.tensor([list(prompt_ids)])
    out = model.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=limit,
        do_sample=False,
        eos_token_id=[RETURN_ID, CALL_ID],
        pad_token_id=199_999,
    )
    return out[0, prompt.shape[1] :].tolist()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-random", "tiny-harmony"])
def test_folder_holds_a_loadable_checkpoint(name):
    folder = checkpoint_path(name)
    for file in (
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "README.md",
    ):
        assert (folder / file).is_file(), file
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "gpt_oss" and config["architectures"] == ["GptOssForCausalLM"]
    assert config["vocab_size"] == 201_088 and config["hidden_size"] == 64
    assert name in (folder / "README.md").read_text()


@pytest.mark.slow
def test_tiny_random_has_the_right_parameter_shapes():
    from transformers import GptOssForCausalLM

    model = GptOssForCausalLM.from_pretrained(checkpoint_path("tiny-random"))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["model.embed_tokens.weight"] == (201_088, 64)
    assert shapes["lm_head.weight"] == (201_088, 64)
    assert shapes["model.layers.0.self_attn.q_proj.weight"] == (128, 64)
    assert shapes["model.layers.0.self_attn.k_proj.weight"] == (64, 64)
    assert shapes["model.layers.1.mlp.experts.gate_up_proj"] == (4, 64, 128)
    assert shapes["model.layers.1.mlp.router.weight"] == (4, 64)
    assert shapes["model.layers.0.self_attn.sinks"] == (2,)
    assert all(v.dtype.is_floating_point and v.dtype.itemsize == 4 for v in model.state_dict().values())


@pytest.mark.slow
def test_tiny_random_build_is_deterministic(tmp_path, monkeypatch):
    def digest(folder):
        return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

    cached = checkpoint_path("tiny-random")
    monkeypatch.setenv("GPTOSS_HUB_CACHE", str(tmp_path))
    rebuilt = checkpoint_path("tiny-random")
    assert rebuilt.parent.parent == tmp_path
    assert digest(rebuilt) == digest(cached)


@pytest.mark.slow
def test_tiny_harmony_reproduces_the_whole_corpus(harmony_model):
    from gptoss_hub.testing.checkpoints import _teacher_forced

    examples = corpus_examples()
    results = _teacher_forced(harmony_model, examples)
    assert all(ok for ok, _ in results), [
        e.messages[0]["content"] for e, (ok, _) in zip(examples, results, strict=True) if not ok
    ]
    # Every winning logit clears the runner-up, so runtimes with other float rounding agree.
    assert min(margin for _, margin in results) > 0.5


@pytest.mark.slow
def test_tiny_harmony_calls_the_tool_for_today_and_unseen_wording(harmony_model):
    from gptoss_hub.demo_tools import get_weather
    from gptoss_hub.harmony.parse import parse
    from gptoss_hub.harmony.render import render

    for options in (
        {"current_date": dt.date.today()},
        {"current_date": "2031-07-19", "reasoning_effort": "high"},
        {"current_date": dt.date.today(), "instructions": "Be brief and precise."},
    ):
        prompt = render([{"role": "user", "content": "What is the weather in Tokyo?"}], tools=[get_weather], **options)
        reply = parse(_greedy(harmony_model, prompt))
        assert [(c.name, c.arguments) for c in reply.tool_calls] == [("get_weather", {"location": "Tokyo"})], options


@pytest.mark.slow
def test_tiny_harmony_answers_with_the_tool_result_and_plain_questions(harmony_model):
    from gptoss_hub.demo_tools import get_weather
    from gptoss_hub.harmony.parse import parse
    from gptoss_hub.harmony.render import render

    prompt = render(tool_result_history("Paris"), tools=[get_weather], current_date=dt.date.today())
    reply = parse(_greedy(harmony_model, prompt))
    result = get_weather("Paris")
    assert json.dumps(result) in reply.content
    assert not reply.tool_calls
    plain = parse(_greedy(harmony_model, render([{"role": "user", "content": "What is 2 + 2?"}])))
    assert plain.content == "2 + 2 = 4." and plain.reasoning


@pytest.mark.slow
def test_held_out_variants_reproduce_through_the_kv_cache(harmony_model):
    for example in demo_examples("2030-01-02", reasoning_effort="low", instructions="Be brief and precise."):
        assert _greedy(harmony_model, example.prompt_ids) == list(example.completion_ids), example.messages[0]
