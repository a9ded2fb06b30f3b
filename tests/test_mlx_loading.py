"""The MLX loader's three fixes to mlx-lm for gpt-oss checkpoints, each with a test that fails without it."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mlx_lm", reason="the mlx extra is installed by .ci/run")

import mlx.core as mx
from gptoss_hub.backends.mlx.loading import (
    load_mlx_model,
    mlx_config_overrides,
    split_transformers_experts,
    yarn_frequencies,
)
from mlx_lm.models.rope_utils import YarnRoPE

from gptoss_hub.errors import CheckpointError
from gptoss_hub.released import released_config

#: gpt-oss's RoPE scaling as released (YaRN, `truncate: false`).
GPT_OSS_ROPE = released_config("20b")["rope_scaling"]


def _swiglu_inputs(experts=3, hidden=8, intermediate=5, seed=0):
    rng = np.random.default_rng(seed)
    gate_up = rng.standard_normal((experts, hidden, 2 * intermediate)).astype(np.float32)
    down = rng.standard_normal((experts, intermediate, hidden)).astype(np.float32)
    gate_up_bias = rng.standard_normal((experts, 2 * intermediate)).astype(np.float32)
    down_bias = rng.standard_normal((experts, hidden)).astype(np.float32)
    x = rng.standard_normal(hidden).astype(np.float32)
    return gate_up, down, gate_up_bias, down_bias, x


def test_transformers_expert_layout_becomes_mlx_projections():
    """transformers: gate_up [E, in, 2I] with gate and up interleaved, down [E, I, out]; each expert's
    projections computed the transformers way equal mlx-lm's `weight @ x + bias` on the converted tensors."""
    gate_up, down, gate_up_bias, down_bias, x = _swiglu_inputs()
    prefix = "model.layers.0.mlp.experts."
    weights = {
        f"{prefix}gate_up_proj": mx.array(gate_up),
        f"{prefix}down_proj": mx.array(down),
        f"{prefix}gate_up_proj_bias": mx.array(gate_up_bias),
        f"{prefix}down_proj_bias": mx.array(down_bias),
        "model.norm.weight": mx.ones(8),
    }
    converted = split_transformers_experts(weights, hidden_size=8, intermediate_size=5)
    assert sorted(converted) == sorted(
        ["model.norm.weight"] + [f"{prefix}{p}_proj.{k}" for p in ("gate", "up", "down") for k in ("weight", "bias")]
    )
    for expert in range(3):
        both = x @ gate_up[expert] + gate_up_bias[expert]  # transformers: x @ [in, 2I]
        gate, up = both[::2], both[1::2]
        got_gate = np.array(converted[f"{prefix}gate_proj.weight"][expert]) @ x + np.array(
            converted[f"{prefix}gate_proj.bias"][expert]
        )
        got_up = np.array(converted[f"{prefix}up_proj.weight"][expert]) @ x + np.array(
            converted[f"{prefix}up_proj.bias"][expert]
        )
        np.testing.assert_allclose(got_gate, gate, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got_up, up, rtol=1e-5, atol=1e-5)
        h = np.ones(5, dtype=np.float32)
        np.testing.assert_allclose(
            np.array(converted[f"{prefix}down_proj.weight"][expert]) @ h,
            h @ down[expert],
            rtol=1e-5,
            atol=1e-5,
        )


def test_out_major_experts_are_split_without_transposing():
    gate_up, down, *_ = _swiglu_inputs()
    out_major = {
        "e.experts.gate_up_proj": mx.array(gate_up.swapaxes(-1, -2)),
        "e.experts.down_proj": mx.array(down.swapaxes(-1, -2)),
    }
    converted = split_transformers_experts(out_major, hidden_size=8, intermediate_size=5)
    np.testing.assert_array_equal(np.array(converted["e.experts.gate_proj.weight"]), gate_up.swapaxes(-1, -2)[:, ::2])
    np.testing.assert_array_equal(np.array(converted["e.experts.down_proj.weight"]), down.swapaxes(-1, -2))


def test_experts_that_fit_no_layout_are_a_checkpoint_error():
    with pytest.raises(CheckpointError, match=r"fits neither .* does not match its config.json"):
        split_transformers_experts({"e.experts.gate_up_proj": mx.zeros((2, 7, 7))}, hidden_size=8, intermediate_size=5)
    with pytest.raises(CheckpointError, match="down_proj is missing"):
        split_transformers_experts({"e.experts.gate_up_proj": mx.zeros((2, 8, 10))}, hidden_size=8, intermediate_size=5)


def test_rope_parameters_are_read_as_rope_theta_and_scaling():
    config = {"rope_parameters": {"rope_theta": 150000.0, **GPT_OSS_ROPE}}
    assert mlx_config_overrides(config) == {"rope_theta": 150000.0, "rope_scaling": GPT_OSS_ROPE}
    # A config that already has rope_theta (the released one) is left alone.
    assert mlx_config_overrides({"rope_theta": 150000, "rope_scaling": GPT_OSS_ROPE}) == {}


@pytest.mark.parametrize("truncate", [False, True])
def test_yarn_frequencies_equal_transformers(truncate):
    from transformers import GptOssConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaling = {**GPT_OSS_ROPE, "truncate": truncate}
    config = GptOssConfig(head_dim=64, rope_parameters={"rope_theta": 150000.0, **scaling})
    inv_freq, _ = ROPE_INIT_FUNCTIONS["yarn"](config, "cpu")
    ours = 1.0 / np.array(yarn_frequencies(64, 150000.0, scaling))
    np.testing.assert_allclose(ours, inv_freq.numpy(), rtol=1e-5)


def test_truncate_false_changes_the_frequencies():
    """What the third fix is for: mlx-lm's own YaRN (always rounded) differs from gpt-oss's."""
    mlx_lm_own = YarnRoPE(64, base=150000.0, scaling_factor=32.0, original_max_position_embeddings=4096)._freqs
    assert not np.allclose(np.array(mlx_lm_own), np.array(yarn_frequencies(64, 150000.0, GPT_OSS_ROPE)))
    np.testing.assert_allclose(
        np.array(mlx_lm_own), np.array(yarn_frequencies(64, 150000.0, {**GPT_OSS_ROPE, "truncate": True})), rtol=1e-6
    )


@pytest.mark.slow
def test_tiny_checkpoint_fails_in_mlx_lm_and_loads_here():
    """The tiny checkpoints are saved by transformers 5: mlx-lm alone cannot load them; our loader can, with
    YaRN from `rope_parameters` and gpt-oss's frequencies in every attention layer."""
    from mlx_lm.utils import load_model

    from gptoss_hub.testing import checkpoint_path

    folder = checkpoint_path("tiny-harmony")
    assert "rope_parameters" in json.loads((folder / "config.json").read_text())
    with pytest.raises(ValueError, match="not in model"):
        load_model(folder)
    model, config = load_mlx_model(folder)
    assert config["rope_scaling"]["truncate"] is False
    expected = np.array(yarn_frequencies(64, 150000.0, GPT_OSS_ROPE))
    for layer in model.layers:
        rope = layer.self_attn.rope
        assert isinstance(rope, YarnRoPE) and rope.mscale == pytest.approx(0.1 * np.log(32) + 1)
        np.testing.assert_array_equal(np.array(rope._freqs), expected)


@pytest.mark.slow
def test_logits_equal_transformers_on_a_long_prompt(tiny_model):
    """Every fix matters at once: the last position's logits of a 600-token prompt match transformers in
    float32 (YaRN dropped moves them by about 0.5; rounded YaRN ranges move them too)."""
    import torch

    from gptoss_hub.testing import checkpoint_path, corpus_examples

    prompt = [t for example in corpus_examples()[:6] for t in example.prompt_ids][:600]
    with torch.inference_mode():
        expected = tiny_model._engine.model(input_ids=torch.tensor([prompt])).logits[0, -1].numpy()
    model, _ = load_mlx_model(checkpoint_path("tiny-harmony"))
    got = np.array(model(mx.array([prompt]))[0, -1])
    assert np.abs(got - expected).max() < 1e-4


def test_a_broken_folder_is_a_checkpoint_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(CheckpointError, match="model_type 'llama'"):
        load_mlx_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt_oss", "num_hidden_layers": 2}))
    with pytest.raises(CheckpointError, match=r"could not load .* Check that its files are complete"):
        load_mlx_model(tmp_path)
    with pytest.raises(CheckpointError, match=r"no readable config\.json"):
        load_mlx_model(tmp_path / "missing")
