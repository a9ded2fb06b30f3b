"""The released gpt-oss checkpoints' `config.json`, as published with `openai/gpt-oss-20b` and `-120b`.

Two uses: `gptoss_hub.testing.shaped` writes random-weight checkpoints with exactly these shapes, and
`gptoss_hub.shape` falls back on them, as a guess it says is a guess, when a model's own files cannot be read.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["MXFP4_QUANTIZATION_CONFIG", "RELEASED_GGUF_REPOS", "RELEASED_REPOS", "released_config"]

#: The released checkpoints by size.
RELEASED_REPOS = {"20b": "openai/gpt-oss-20b", "120b": "openai/gpt-oss-120b"}
#: The GGUF conversions published for the released checkpoints.
RELEASED_GGUF_REPOS = {
    "openai/gpt-oss-20b": "ggml-org/gpt-oss-20b-GGUF",
    "openai/gpt-oss-120b": "ggml-org/gpt-oss-120b-GGUF",
}

#: The `quantization_config` of the released `config.json`: only the experts are MXFP4.
MXFP4_QUANTIZATION_CONFIG: dict[str, Any] = {
    "modules_to_not_convert": [
        "model.layers.*.self_attn",
        "model.layers.*.mlp.router",
        "model.embed_tokens",
        "lm_head",
    ],
    "quant_method": "mxfp4",
}

_COMMON: dict[str, Any] = {
    "architectures": ["GptOssForCausalLM"],
    "attention_bias": True,
    "attention_dropout": 0.0,
    "eos_token_id": 200002,
    "experts_per_token": 4,
    "head_dim": 64,
    "hidden_act": "silu",
    "hidden_size": 2880,
    "initial_context_length": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 2880,
    "max_position_embeddings": 131072,
    "model_type": "gpt_oss",
    "num_attention_heads": 64,
    "num_experts_per_tok": 4,
    "num_key_value_heads": 8,
    "output_router_logits": False,
    "pad_token_id": 199999,
    "quantization_config": MXFP4_QUANTIZATION_CONFIG,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "factor": 32.0,
        "original_max_position_embeddings": 4096,
        "rope_type": "yarn",
        "truncate": False,
    },
    "rope_theta": 150000,
    "router_aux_loss_coef": 0.9,
    "sliding_window": 128,
    "swiglu_limit": 7.0,
    "tie_word_embeddings": False,
    "use_cache": True,
    "vocab_size": 201088,
}
_DIFFERENCES = {
    "20b": {"num_hidden_layers": 24, "num_local_experts": 32},
    "120b": {"num_hidden_layers": 36, "num_local_experts": 128},
}


def released_config(size: str, *, layers: int | None = None) -> dict[str, Any]:
    """The `config.json` of the released `size` ("20b" or "120b"), optionally cut to its first `layers` layers.

    Layers alternate sliding-window and full attention, starting with a sliding one, as released.
    """
    if size not in _DIFFERENCES:
        raise ValueError(f"gpt-oss was released as {' and '.join(_DIFFERENCES)}, not {size!r}.")
    config = copy.deepcopy(_COMMON) | _DIFFERENCES[size]
    if layers is not None:
        if layers < 1:
            raise ValueError(f"layers must be at least 1, got {layers}.")
        config["num_hidden_layers"] = layers
    count = config["num_hidden_layers"]
    config["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(count)]
    return config
