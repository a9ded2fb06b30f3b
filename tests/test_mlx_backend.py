"""End to end on MLX's CPU build (mlx/cpu) with the tiny-harmony checkpoint and its exports."""

from __future__ import annotations

import threading

import pytest
from benchmark_scripts import load_benchmark

pytest.importorskip("mlx_lm", reason="the mlx extra is installed by .ci/run")

from prompt_reuse import chat_ten_turns

import gptoss_hub as gh
from gptoss_hub.demo_tools import get_weather
from gptoss_hub.engine import GenerationRequest
from gptoss_hub.errors import ContextLengthError, InvalidRequestError
from gptoss_hub.testing import corpus_examples

pytestmark = pytest.mark.slow

STOPS = [200002, 200012]


def _ids(engine, prompt, **settings):
    request = GenerationRequest(prompt_ids=list(prompt), stop_token_ids=STOPS, **settings)
    return [t for chunk in engine.generate(request) for t in chunk.token_ids]


def _greedy_mismatches(engine, examples):
    return [
        e.completion_text
        for e in examples
        if _ids(engine, e.prompt_ids, temperature=0.0, max_tokens=len(e.completion_ids) + 4) != list(e.completion_ids)
    ]


def test_info_says_what_runs(mlx_model):
    info = mlx_model.info
    assert (info.backend, info.plugin, info.device, info.dtype) == ("mlx/cpu", "mlx", "cpu", "float32")
    assert info.capabilities["logprobs"] and not info.capabilities["json_schema"]
    assert info.capabilities["max_context"] == 4096  # the checkpoint's own, below the hub's default plan


def test_greedy_ids_equal_the_reference_on_the_whole_corpus(mlx_model):
    """The corpus completions are what transformers (fp32) produces greedily."""
    examples = corpus_examples()
    mismatches = _greedy_mismatches(mlx_model._engine, examples)
    assert not mismatches, f"{len(mismatches)}/{len(examples)} differ, first: {mismatches[0]!r}"


def test_mxfp4_export_gives_the_reference_greedy_ids():
    """The released layout (`*_blocks`/`*_scales`, quant_method mxfp4) runs as MLX mxfp4 matmuls; its values
    are the tiny checkpoint's rounded to MXFP4, which the reference build checks keep every greedy reply."""
    from gptoss_hub.testing import mxfp4_checkpoint_path

    model = gh.load(str(mxfp4_checkpoint_path()), backend="mlx/cpu")
    try:
        assert model.info.quantization == "mxfp4"
        experts = model._engine._model.layers[0].mlp.experts
        assert type(experts.gate_proj).__name__ == "QuantizedSwitchLinear" and experts.gate_proj.mode == "mxfp4"
        examples = corpus_examples()[::4]
        mismatches = _greedy_mismatches(model._engine, examples)
        assert not mismatches, f"{len(mismatches)}/{len(examples)} differ, first: {mismatches[0]!r}"
    finally:
        model.close()


def test_the_reference_mxfp4_export_by_option():
    model = gh.load("tiny", backend="mlx/cpu", quantization="mxfp4")
    try:
        assert model.info.quantization == "mxfp4" and model.info.details["checkpoint"].endswith("-mxfp4")
    finally:
        model.close()
    with pytest.raises(InvalidRequestError, match="'f32' or 'mxfp4', not 'q4'"):
        gh.load("tiny", backend="mlx/cpu", quantization="q4")
    with pytest.raises(InvalidRequestError, match="Invalid option for mlx: n_gpu_layers"):
        gh.load("tiny", backend="mlx/cpu", n_gpu_layers=1)


def test_ten_turn_chat_evaluates_only_what_is_new(mlx_model):
    """The sliding layers' window (128) is long past after two turns: late turns reuse the history through the
    copy of those layers taken after the previous prompt."""
    ways: list[str] = []
    chat_ten_turns(mlx_model, lambda: ways.append(mlx_model._engine._cache.last_reuse))
    assert ways[-1] == "restored", ways


def test_reused_cache_gives_the_ids_of_a_fresh_one(mlx_model):
    """Turns served from a cut-back or restored cache produce exactly what evaluating the whole prompt does."""
    engine = mlx_model._engine
    messages: list[dict] = []
    ways = set()
    for question in ["What is the weather in Tokyo?", "Say hello.", "What color is the sky?", "Tell me a joke."] * 2:
        messages.append({"role": "user", "content": question})
        prompt = mlx_model.prompt_ids(messages, tools=[get_weather])
        reused = _ids(engine, prompt, temperature=0.0, max_tokens=40)
        ways.add(engine._cache.last_reuse)
        engine._cache.reset()
        fresh = _ids(engine, prompt, temperature=0.0, max_tokens=40)
        assert reused == fresh
        messages.append(mlx_model.chat(messages, tools=[get_weather], max_tokens=40).message)
    assert "restored" in ways  # the prompts are longer than the sliding window: its layers have wrapped


def test_a_short_history_is_cut_back_and_a_new_one_starts_over(mlx_model):
    engine = mlx_model._engine
    first, other = corpus_examples()[0], corpus_examples()[1]
    assert len(first.prompt_ids) + 10 < 128  # inside the sliding window: every layer can be cut back
    _ids(engine, first.prompt_ids, temperature=0.0, max_tokens=10)
    follow_up = [*first.prompt_ids, 200007, *first.prompt_ids[-3:]]
    reused = _ids(engine, follow_up, temperature=0.0, max_tokens=10)
    assert (engine._cache.last_reuse, engine.last_prompt.reused_tokens) == ("cut back", len(first.prompt_ids))
    engine._cache.reset()
    assert _ids(engine, follow_up, temperature=0.0, max_tokens=10) == reused
    unrelated = [1, *other.prompt_ids]
    _ids(engine, unrelated, temperature=0.0, max_tokens=4)
    assert (engine._cache.last_reuse, engine.last_prompt.reused_tokens) == ("none", 0)


def test_sampling_seed_and_limits(mlx_model):
    messages = [{"role": "user", "content": "Say hello."}]
    sampled = [mlx_model.chat(messages, temperature=5.0, seed=s, max_tokens=8).token_ids for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] != sampled[2]
    greedy = mlx_model.chat(messages, temperature=0.0).token_ids
    assert mlx_model.chat(messages, temperature=5.0, top_k=1, seed=3).token_ids == greedy
    assert mlx_model.chat(messages, temperature=5.0, top_p=1e-9, seed=3).token_ids == greedy
    assert mlx_model.chat(messages, temperature=5.0, min_p=1.0, seed=3).token_ids == greedy
    reply = mlx_model.chat(messages, max_tokens=3)
    assert reply.finish_reason == "length" and len(reply.token_ids) == 3


def test_top_k_keeps_only_the_k_most_likely(mlx_model):
    import mlx.core as mx
    from gptoss_hub.backends.mlx.sampling import SamplingKeys, next_token

    logits = mx.array([0.0, 3.0, 2.9, -1.0, 1.0])
    request = GenerationRequest(prompt_ids=[1], temperature=1.0, top_k=2)
    keys = SamplingKeys(7)
    drawn = {int(next_token(logits, request, keys).item()) for _ in range(200)}
    assert drawn == {1, 2}
    top_p = GenerationRequest(prompt_ids=[1], temperature=1.0, top_p=0.5)
    assert {int(next_token(logits, top_p, keys).item()) for _ in range(100)} <= {1, 2}


def test_logprobs_hold_the_chosen_id_and_the_top_ones(mlx_model):
    example = corpus_examples()[0]
    request = GenerationRequest(prompt_ids=list(example.prompt_ids), temperature=0.0, max_tokens=6, logprobs=3)
    chunks = list(mlx_model._engine.generate(request))
    for chunk in chunks:
        (entry,) = chunk.logprobs
        (token,) = chunk.token_ids
        assert token in entry and 3 <= len(entry) <= 4 and all(v <= 0.0 for v in entry.values())
        assert entry[token] == max(entry.values())  # greedy: the chosen id is the most likely


def test_context_limit_and_schema_refused(mlx_model):
    engine = mlx_model._engine
    with pytest.raises(ContextLengthError, match="context holds 4096"):
        list(engine.generate(GenerationRequest(prompt_ids=[1] * 4096)))
    with pytest.raises(InvalidRequestError, match="JSON schema"):
        list(engine.generate(GenerationRequest(prompt_ids=[1], json_schema={"type": "object"})))


def test_a_reader_that_stops_early_leaves_the_engine_consistent(mlx_model):
    engine = mlx_model._engine
    example = corpus_examples()[3]
    stream = engine.generate(GenerationRequest(prompt_ids=list(example.prompt_ids), temperature=0.0))
    first = next(stream)
    stream.close()
    assert first.token_ids == [example.completion_ids[0]]
    mismatches = _greedy_mismatches(engine, corpus_examples()[:5])
    assert not mismatches


def test_concurrent_callers_queue_and_get_what_they_would_alone(mlx_model):
    engine = mlx_model._engine
    examples = corpus_examples()[:6]
    results: dict[int, list[int]] = {}

    def run(index: int) -> None:
        e = examples[index]
        results[index] = _ids(engine, e.prompt_ids, temperature=0.0, max_tokens=len(e.completion_ids) + 4)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(examples))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(len(examples))] == [list(e.completion_ids) for e in examples]


def _mlx_converted(folder, bits: int):
    """tiny-harmony as mlx-lm converts a model for `mlx-community`: experts split, weights quantized to
    `bits` (group 32), `quantization` in config.json."""
    from gptoss_hub.backends.mlx.engine import mlx_thread
    from gptoss_hub.backends.mlx.loading import load_mlx_model
    from mlx_lm.utils import quantize_model, save_config, save_model

    from gptoss_hub.testing import checkpoint_path

    def convert():
        model, config = load_mlx_model(checkpoint_path("tiny-harmony"))
        model, config = quantize_model(model, config, group_size=32, bits=bits)
        save_model(folder, model)
        save_config(config, folder / "config.json")

    mlx_thread().call("cpu", convert)
    return folder


def test_mlx_converted_repo_loads_as_mlx_lm_loads_it(tmp_path):
    """An `mlx-community`-style folder gives the ids mlx-lm's own loader and greedy loop give on it, in 4
    and 8 bits."""
    import mlx.core as mx
    from gptoss_hub.backends.mlx.engine import mlx_thread
    from mlx_lm.generate import generate_step
    from mlx_lm.utils import load_model

    prompt = list(corpus_examples()[0].prompt_ids)
    for bits in (4, 8):
        folder = _mlx_converted(tmp_path / f"tiny-harmony-{bits}bit", bits)

        def raw_greedy(folder=folder):
            raw, _ = load_model(folder)
            return [int(t) for t, _ in generate_step(mx.array(prompt), raw, max_tokens=20)]

        raw_ids = mlx_thread().call("cpu", raw_greedy)
        hub = gh.load(str(folder), backend="mlx/cpu")
        try:
            assert hub.info.quantization == f"{bits}-bit affine, group 32"
            assert _ids(hub._engine, prompt, temperature=0.0, max_tokens=20)[:20] == raw_ids
        finally:
            hub.close()


def test_mlx_converted_repo_loads_from_the_hub_cache_offline(offline_hub, tmp_path):
    """A repo id goes through huggingface_hub (offline: its cache), is sized from its files and runs."""
    import subprocess
    import sys

    folder = _mlx_converted(tmp_path / "tiny-8bit", 8)
    env = offline_hub("mlx-community/gpt-oss-tiny-8bit", {p.name: p for p in folder.iterdir()})
    code = (
        "import gptoss_hub as gh; m = gh.load('mlx-community/gpt-oss-tiny-8bit', backend='mlx');"
        "r = m.chat([{'role': 'user', 'content': 'What is 2 + 2?'}], temperature=0, max_tokens=40);"
        "print(m.info.backend, m.info.quantization, bool(r.reasoning or r.content))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "mlx/cpu 8-bit affine, group 32 True"


def test_the_overhead_benchmark_runs_and_reports_each_figure():
    benchmark = load_benchmark("mlx_overhead")
    results = benchmark.main(["--rounds", "1"])  # it raises if the hub and mlx-lm generate different lengths
    assert set(results) == {"raw", "hub", "hub, cache reused", "ratio"}
    assert all(value > 0 for value in results.values())
