"""The shape of the tiny reference checkpoints: gpt-oss's architecture, shrunk until it trains in seconds.

Everything a runtime keys on stays real: the o200k_harmony vocabulary (201,088 rows), head_dim 64
(vLLM's CPU attention rejects smaller heads), alternating sliding/full attention, attention sinks,
mixture-of-experts with top-k routing, and the real model's yarn rope parameters.
"""

from __future__ import annotations

from typing import Any

from gptoss_hub.encoding import VOCAB_SIZE

__all__ = ["CALL_ID", "END_ID", "PAD_ID", "RETURN_ID", "START_ID", "tiny_config", "tiny_config_kwargs"]

#: `<|return|>`: the end of a final answer.
RETURN_ID = 200002
#: `<|start|>`: the header of every harmony message.
START_ID = 200006
#: `<|end|>`: the end of a message that is not the last of a turn.
END_ID = 200007
#: `<|call|>`: the end of a tool call.
CALL_ID = 200012
#: `<|endoftext|>`, the id the real gpt-oss checkpoints pad with.
PAD_ID = 199999


def tiny_config_kwargs() -> dict[str, Any]:
    """Keyword arguments for `transformers.GptOssConfig` giving the tiny reference shape."""
    return {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 64,
        "head_dim": 64,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "layer_types": ["sliding_attention", "full_attention"],
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "sliding_window": 128,
        "max_position_embeddings": 4096,
        # The real checkpoints' yarn parameters, so runtimes exercise the same rope code path.
        "rope_parameters": {
            "rope_type": "yarn",
            "rope_theta": 150000.0,
            "factor": 32.0,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "original_max_position_embeddings": 4096,
            "truncate": False,
        },
        "tie_word_embeddings": False,
        "eos_token_id": [RETURN_ID, CALL_ID],
        "pad_token_id": PAD_ID,
        "bos_token_id": None,
        "architectures": ["GptOssForCausalLM"],
        "dtype": "float32",
    }


def tiny_config(**overrides: Any):
    """The tiny `GptOssConfig` (imports transformers)."""
    from transformers import GptOssConfig

    return GptOssConfig(**{**tiny_config_kwargs(), **overrides})
