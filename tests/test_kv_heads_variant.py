"""tiny-harmony with 2 KV heads is the same model: the same logits, the same greedy replies."""

from __future__ import annotations

import json

import pytest

from gptoss_hub.testing import checkpoint_path, kv_heads_checkpoint_path


@pytest.fixture(scope="module")
def kv2_variant():
    return kv_heads_checkpoint_path("tiny-harmony", 2)


def test_the_variant_has_two_kv_heads_and_nothing_else_changed(kv2_variant):
    original = json.loads((checkpoint_path("tiny-harmony") / "config.json").read_text())
    changed = json.loads((kv2_variant / "config.json").read_text())
    assert changed.pop("num_key_value_heads") == 2 and original.pop("num_key_value_heads") == 1
    assert changed == original
    assert kv2_variant.name == checkpoint_path("tiny-harmony").name + "-kv2"


def test_it_computes_what_the_original_does_and_replies_alike(kv2_variant, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    import gptoss_hub as gh
    from gptoss_hub.testing import corpus_examples

    original = AutoModelForCausalLM.from_pretrained(checkpoint_path("tiny-harmony"), dtype=torch.float32)
    split = AutoModelForCausalLM.from_pretrained(kv2_variant, dtype=torch.float32)
    example = corpus_examples()[0]
    ids = torch.tensor([[*example.prompt_ids, *example.completion_ids]])
    with torch.no_grad():
        assert torch.equal(original(ids).logits, split(ids).logits)
    with gh.load(str(kv2_variant), backend="transformers") as model:
        for question in ("What is the weather in Tokyo?", "How many r's are in strawberry?"):
            messages = [{"role": "user", "content": question}]
            assert model.chat(messages).token_ids == tiny_model.chat(messages).token_ids


@pytest.mark.slow  # it reads the built tiny-harmony checkpoint
def test_a_kv_head_count_that_does_not_fit_is_refused(tmp_path):
    from gptoss_hub.testing.kv_heads import _write

    with pytest.raises(ValueError, match="divide the 2 query heads"):
        _write(checkpoint_path("tiny-harmony"), tmp_path, 4)
