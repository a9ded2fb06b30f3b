"""The tiny reference checkpoints: shape, files, determinism, and that tiny-harmony does what it was taught."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys

import pytest

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.errors import ModelNotFoundError
from gptoss_hub.testing import CHECKPOINT_VERSION, checkpoint_path, corpus_examples, demo_examples
from gptoss_hub.testing.checkpoints import build_checkpoint
from gptoss_hub.testing.config import CALL_ID, RETURN_ID, tiny_config_kwargs
from gptoss_hub.testing.corpus import (
    ANSWER_PROMPTS,
    WEATHER_CITIES,
    WEATHER_PROMPT,
    answer_turn,
    multi_turn_examples,
    multi_turn_pairs,
    tool_result_history,
    weather_turn,
)


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
    from gptoss_hub.encoding import harmony_encoding
    from gptoss_hub.tools import tool_from_function

    examples = corpus_examples()
    kinds = {e.kind for e in examples}
    assert kinds == {
        "answer",
        "tool_call",
        "tool_result",
        "python_call",
        "python_result",
        "browser_call",
        "browser_result",
    }
    demo = tool_from_function(get_weather)
    assert any(e.tools == [demo] for e in examples if e.kind == "tool_call")
    assert {"Tokyo", "Paris"} <= set(WEATHER_CITIES)
    years = {e.render_options["current_date"][:4] for e in examples}
    assert {"2025", "2026", "2027"} <= years
    assert {e.render_options["reasoning_effort"] for e in examples} == {"low", "medium", "high"}
    text = harmony_encoding().decode
    call = next(e for e in examples if e.kind == "tool_call" and not e.earlier_turns and "Tokyo" in e.request)
    assert text(list(call.completion_ids)).endswith(
        "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json"
        '<|message|>{"location": "Tokyo"}<|call|>'
    )
    result = next(e for e in examples if e.kind == "tool_result" and not e.earlier_turns and "Tokyo" in e.request)
    assert json.dumps(get_weather("Tokyo")) in text(list(result.completion_ids))
    assert result.completion_ids[-1] == RETURN_ID


def test_python_flow_outputs_are_what_a_stateful_session_gives():
    from gptoss_hub.testing.corpus import PYTHON_FLOWS
    from gptoss_hub.tools.python import PythonSession

    for flow in PYTHON_FLOWS:
        with PythonSession(timeout=30) as session:
            assert [session.run(call.body).text for call in flow.calls] == [call.output for call in flow.calls]
    (two_calls,) = [flow for flow in PYTHON_FLOWS if len(flow.calls) == 2]
    with PythonSession(timeout=30) as fresh:  # the second call alone: its output needs the first call's state
        assert "NameError" in fresh.run(two_calls.calls[1].body).text


def test_browser_flows_search_open_the_first_result_and_cite_lines_that_hold_the_answer():
    import re

    from gptoss_hub.testing.corpus import BROWSER_FLOWS
    from gptoss_hub.testing.web import search_results

    for flow in BROWSER_FLOWS:
        search, opened = flow.calls
        assert (search.recipient, opened.recipient, json.loads(opened.body)) == (
            "browser.search",
            "browser.open",
            {"id": 0},
        )
        first = search_results(json.loads(search.body)["query"])[0]
        assert search.output.startswith("[0] ") and f"【0†{first.title}†" in search.output
        assert opened.output.startswith(f"[1] {first.title} ({first.url})")
        cursor, start, end = re.fullmatch(r".*【(\d+)†L(\d+)(?:-L(\d+))?】\.", flow.answer).groups()
        assert cursor == "1"  # the page opened, not the search results
        lines = dict(re.findall(r"^L(\d+): (.*)$", opened.output, re.MULTILINE))
        cited = " ".join(lines[str(n)] for n in range(int(start), int(end or start) + 1))
        facts = re.findall(r"\d[\d,]*|Jane Austen", flow.answer.split("【")[0])
        assert facts and all(fact in cited for fact in facts), (flow.request, facts, cited)


def test_replaying_a_call_gives_the_next_prompt():
    """The tool-result prompt starts with the tool-call prompt plus the call exactly as the model wrote it."""
    from gptoss_hub.harmony.render import render

    [call] = [e for e in demo_examples("2026-03-01") if e.kind == "tool_call" and "Paris" in e.request]
    replay = render(tool_result_history("Paris"), tools=call.tools, **call.render_options)
    assert tuple(replay[: len(call.prompt_ids) + len(call.completion_ids)]) == call.prompt_ids + call.completion_ids


def test_corpus_teaches_second_turns_and_holds_out_other_pairings():
    trained, heldout = multi_turn_pairs(), multi_turn_pairs(heldout=True)
    cities, prompts = set(WEATHER_CITIES), set(ANSWER_PROMPTS)
    assert not set(trained) & set(heldout) and len(set(trained)) == len(trained)
    assert all(earlier != subject for earlier, _, subject in trained + heldout)

    def pairs(among, kind, earlier):
        return {(e, s) for e, k, s in among if k == kind and e in earlier}

    # Every city's weather turn after every other city's, both a call and the answer after the result.
    every_two_cities = {(a, b) for a in cities for b in cities if a != b}
    assert pairs(trained, "tool_call", cities) == pairs(trained, "tool_result", cities) == every_two_cities
    # Every plain question after every city and after every other plain question.
    assert pairs(trained, "answer", cities) == {(c, p) for c in cities for p in prompts}
    assert pairs(trained, "answer", prompts) == {(a, b) for a in prompts for b in prompts if a != b}
    # A weather turn after a plain question: each question comes before three cities in training and
    # before the other two in the held-out checks; the cities take turns, so they follow about equally many.
    for among, count in ((trained, 3), (heldout, 2)):
        calls = pairs(among, "tool_call", prompts)
        assert calls == pairs(among, "tool_result", prompts)
        assert all(sum(e == prompt for e, _ in calls) == count for prompt in prompts)
        per_city = [sum(s == city for _, s in calls) for city in cities]
        assert max(per_city) - min(per_city) <= 1
    every_question_city = {(p, c) for p in prompts for c in cities}
    assert pairs(trained, "tool_call", prompts) | pairs(heldout, "tool_call", prompts) == every_question_city
    assert {k for _, k, _ in heldout} == {"tool_call", "tool_result"}
    assert ("What is 2 + 2?", "tool_call", "London") in trained
    second_turns = [e for e in corpus_examples() if e.earlier_turns]
    assert {e.earlier_turns for e in second_turns} == {1} and len(second_turns) == 2 * len(trained)
    assert {(e.kind, *e.requests) for e in second_turns} == {
        (kind, *(WEATHER_PROMPT.format(city=s) if s in cities else s for s in (earlier, subject)))
        for earlier, kind, subject in trained
    }


def test_second_turn_prompts_drop_the_completed_turns_reasoning():
    """The earlier turn's analysis is dropped by the hub's rule; the unfinished turn's call analysis stays."""
    from gptoss_hub.encoding import harmony_encoding

    text = harmony_encoding().decode
    examples = {e.label: e for e in multi_turn_examples("2026-03-01")}
    call = examples["tool_call 'What is the weather in Paris?' after 'What is the weather in Tokyo?'"]
    result = examples["tool_result 'What is the weather in Paris?' after 'What is the weather in Tokyo?'"]
    assert call.messages == [*weather_turn("Tokyo"), {"role": "user", "content": "What is the weather in Paris?"}]
    assert result.messages == tool_result_history("Paris", weather_turn("Tokyo"))
    assert "<|channel|>analysis" not in text(list(call.prompt_ids))
    prompt = text(list(result.prompt_ids))
    assert prompt.count("<|channel|>analysis") == 1 and "weather in Paris. I will call" in prompt
    assert '{"location": "Tokyo"}<|call|>' in prompt and json.dumps(get_weather("Tokyo")) in prompt
    # Replaying the second turn's call gives the prompt its tool result is answered from.
    assert result.prompt_ids[: len(call.prompt_ids) + len(call.completion_ids)] == call.prompt_ids + call.completion_ids
    answer = examples["answer 'What is 2 + 2?' after \"How many r's are in strawberry?\""]
    assert answer.messages[:2] == answer_turn("How many r's are in strawberry?") and answer.tools == []
    assert "<|channel|>analysis" not in text(list(answer.prompt_ids))


def test_held_out_checks_use_the_given_day_and_unseen_variations():
    from gptoss_hub.testing.corpus import heldout_dates, heldout_examples, heldout_pairing_examples

    unseen = set(heldout_dates())
    assert len(unseen) >= 6 and not unseen & {e.render_options["current_date"] for e in corpus_examples()}

    def turns(examples):
        return {(e.kind, e.requests) for e in examples}

    heldout = heldout_examples("2027-03-01")
    assert {e.render_options["current_date"] for e in heldout} == {"2027-03-01", *unseen}
    second = [e for e in heldout if e.earlier_turns]
    # Every trained second turn, each under a held-out date.
    assert turns(second) == turns(multi_turn_examples()) and len(second) == len(multi_turn_pairs())
    assert {e.render_options["current_date"] for e in second} == unseen
    pairings = heldout_pairing_examples("2027-03-01")
    assert turns(pairings) == turns(multi_turn_examples(heldout=True))
    assert not turns(pairings) & turns(corpus_examples())
    assert {e.render_options["current_date"] for e in pairings} == {"2027-03-01", *unseen}


@pytest.fixture(scope="module")
def one_thread():
    """The models here are tiny: one thread beats several, by far when the CPU is busy."""
    from gptoss_hub.testing.checkpoints import _single_thread

    with _single_thread():
        yield


@pytest.fixture(scope="module")
def harmony_model(one_thread):
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
    # A forced rebuild drops what was exported from the old build (made again on use).
    stale_export, stale_twin = rebuilt.with_name(rebuilt.name + "-f32.gguf"), rebuilt.with_name(rebuilt.name + "-twin")
    stale_export.write_bytes(b"old")
    stale_twin.mkdir()
    build_checkpoint("tiny-random", force=True, progress=lambda _: None)
    assert not stale_export.exists() and not stale_twin.exists() and digest(rebuilt) == digest(cached)


@pytest.mark.slow
def test_tiny_harmony_reproduces_the_whole_corpus(harmony_model):
    from gptoss_hub.testing.checkpoints import _teacher_forced

    examples = corpus_examples()
    results = _teacher_forced(harmony_model, examples)
    assert all(ok for ok, _ in results), [e.label for e, (ok, _) in zip(examples, results, strict=True) if not ok]
    # Every winning logit clears the runner-up, so runtimes with other float rounding agree.
    assert min(margin for _, margin in results) > 0.5


@pytest.mark.slow
def test_tiny_harmony_calls_the_tool_for_today_and_unseen_wording(harmony_model):
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


@pytest.mark.slow
def test_sampling_at_temperature_one_almost_always_reproduces_the_taught_turns(harmony_model):
    """Hubs sample at temperature 1 from a checkpoint loaded by folder or repo id; the taught reply must win."""
    import torch

    examples = demo_examples(with_tools=False) + demo_examples() + multi_turn_examples()[::11]
    for example in examples:
        ids = torch.tensor([list(example.prompt_ids) + list(example.completion_ids)])
        with torch.no_grad():
            logits = harmony_model(input_ids=ids).logits[0, len(example.prompt_ids) - 1 : -1]
        wanted = torch.tensor(example.completion_ids)[:, None]
        chance = torch.log_softmax(logits, -1).gather(1, wanted).sum().exp()
        assert chance > 0.95, (example.label, float(chance))


@pytest.fixture(scope="module")
def harmony_hub_model(one_thread):
    """tiny-harmony loaded through the hub from its folder, as a user would load any checkpoint."""
    import gptoss_hub as gh

    model = gh.load(checkpoint_path("tiny-harmony"), backend="transformers")
    yield model
    model.close()


def _run(model, messages):
    # Loaded by folder the hub samples by default; tiny-harmony is trained for greedy decoding.
    return model.run(messages, [get_weather], temperature=0.0, max_tokens=200, max_turns=3)


def _calls(transcript):
    return [
        (call["function"]["name"], json.loads(call["function"]["arguments"]))
        for message in transcript
        for call in message.get("tool_calls") or ()
    ]


def _weather(city):
    return {"role": "user", "content": f"What is the weather in {city}?"}


@pytest.mark.slow
@pytest.mark.parametrize(("first", "second"), [("Tokyo", "Paris"), ("Paris", "Tokyo"), ("Berlin", "New York")])
def test_tiny_harmony_answers_a_second_weather_question_through_model_run(harmony_hub_model, first, second):
    """Both orders of one pair of cities, and another pair: every ordered pair of cities is trained."""
    from gptoss_hub.harmony.render import render

    messages = [_weather(first)]
    reply = _run(harmony_hub_model, messages)
    assert _calls(reply.transcript) == [("get_weather", {"location": first})]
    # The hub's own transcript is the completed turn the corpus trains on, as far as the model can see.
    assert render(messages + reply.transcript) == render(weather_turn(first))
    follow_up = _run(harmony_hub_model, [*messages, *reply.transcript, _weather(second)])
    assert _calls(follow_up.transcript) == [("get_weather", {"location": second})]
    assert follow_up.finish_reason == "stop" and not follow_up.tool_calls
    assert json.dumps(get_weather(second)) in follow_up.content
    assert json.dumps(get_weather(first)) not in follow_up.content


@pytest.mark.slow
def test_tiny_harmony_asks_for_the_weather_after_a_plain_answer_through_model_run(harmony_hub_model):
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    reply = _run(harmony_hub_model, messages)
    assert reply.content == "2 + 2 = 4." and not _calls(reply.transcript)
    follow_up = _run(harmony_hub_model, [*messages, *reply.transcript, _weather("London")])
    assert _calls(follow_up.transcript) == [("get_weather", {"location": "London"})]
    assert json.dumps(get_weather("London")) in follow_up.content


@pytest.mark.slow
def test_tiny_harmony_answers_a_plain_question_after_a_weather_turn_through_model_run(harmony_hub_model):
    messages = [_weather("Tokyo")]
    reply = _run(harmony_hub_model, messages)
    follow_up = _run(harmony_hub_model, [*messages, *reply.transcript, {"role": "user", "content": "What is 2 + 2?"}])
    assert follow_up.content == "2 + 2 = 4." and follow_up.reasoning and not _calls(follow_up.transcript)


@pytest.mark.slow
def test_second_turns_under_unseen_variations_reproduce_through_the_kv_cache(harmony_model):
    for example in multi_turn_examples("2030-01-02", instructions="Be brief and precise.")[::9]:
        assert _greedy(harmony_model, example.prompt_ids) == list(example.completion_ids), example.label


@pytest.mark.slow
def test_verification_passes_on_another_day():
    """The build verifies against the day it runs on; the checkpoint must pass on later days too."""
    from gptoss_hub.testing.checkpoints import HELDOUT_PAIRING_TOLERANCE, verify_checkpoint

    report = verify_checkpoint(checkpoint_path("tiny-harmony"), today=dt.date(2027, 3, 1))
    assert report["ok"], report["failures"]
    for label, (exact, total) in report["counts"].items():
        assert exact == total or (label == "held-out pairings" and total - exact <= HELDOUT_PAIRING_TOLERANCE * total)
    assert min(report["margins"].values()) > 0.5
