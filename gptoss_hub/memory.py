"""How much memory a gpt-oss model needs: weights by format, plus the KV cache for a context length.

Dispatch compares these with the memory of the devices a backend would use, so that a plan never picks
a variant that would run out of memory (the classic failure: MXFP4 silently dequantized to bf16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_CONTEXT_TOKENS",
    "GIB",
    "SHAPES",
    "ModelShape",
    "WeightFormat",
    "kv_cache_bytes",
    "required_bytes",
    "weights_bytes",
]

GIB = 1024**3
#: The context a plan budgets for when the caller names none: enough for a long chat with tools.
DEFAULT_CONTEXT_TOKENS = 8192
WeightFormat = Literal["mxfp4", "bf16", "gguf-mxfp4", "gguf-f16"]


@dataclass(frozen=True)
class ModelShape:
    """What memory estimates need to know about a released gpt-oss model."""

    #: Bytes of the checkpoint's weights with MoE experts in MXFP4 (everything else bf16), as released.
    mxfp4_bytes: int
    #: Bytes with every weight in bf16 (what MXFP4 dequantizes to).
    bf16_bytes: int
    layers: int
    kv_heads: int
    head_dim: int
    #: Layers with a full attention window; the others keep only `sliding_window` tokens.
    full_attention_layers: int
    sliding_window: int = 128


#: Sizes from the model card: 20b is 21B parameters (3.6B active), 120b is 117B (5.1B active).
SHAPES = {
    "20b": ModelShape(
        mxfp4_bytes=int(12.8 * GIB),
        bf16_bytes=int(39.0 * GIB),
        layers=24,
        kv_heads=8,
        head_dim=64,
        full_attention_layers=12,
    ),
    "120b": ModelShape(
        mxfp4_bytes=int(60.8 * GIB),
        bf16_bytes=int(218.0 * GIB),
        layers=36,
        kv_heads=8,
        head_dim=64,
        full_attention_layers=18,
    ),
}


def weights_bytes(size: str, weight_format: WeightFormat) -> int:
    """Bytes of weights in memory for `size` ("20b", "120b") loaded in `weight_format`."""
    shape = SHAPES[size]
    return shape.bf16_bytes if weight_format in ("bf16", "gguf-f16") else shape.mxfp4_bytes


def kv_cache_bytes(size: str, context_tokens: int, bytes_per_value: int = 2) -> int:
    """Bytes of KV cache for one sequence of `context_tokens` (bf16 keys and values by default).

    Sliding-window layers hold at most `sliding_window` tokens, so only the full-attention layers grow
    with the context.
    """
    shape = SHAPES[size]
    per_token_per_layer = 2 * shape.kv_heads * shape.head_dim * bytes_per_value
    sliding_layers = shape.layers - shape.full_attention_layers
    return per_token_per_layer * (
        shape.full_attention_layers * context_tokens + sliding_layers * min(context_tokens, shape.sliding_window)
    )


def required_bytes(
    size: str, weight_format: WeightFormat, context_tokens: int = DEFAULT_CONTEXT_TOKENS, overhead: float = 0.10
) -> int:
    """Weights plus KV cache plus a margin for activations and runtime buffers (10% by default)."""
    return int((weights_bytes(size, weight_format) + kv_cache_bytes(size, context_tokens)) * (1 + overhead))
