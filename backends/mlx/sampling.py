"""Choosing the next token from MLX logits: greedy, or temperature / top-k / top-p / min-p sampling.

The same rules as the other local backends (temperature first, then top-k, top-p and min-p on the
resulting distribution, as vLLM and llama.cpp order them). Randomness comes from an explicit key that the
engine splits once per token, so a seed reproduces a reply whatever else uses MLX's global generator.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mlx.core as mx

    from gptoss_hub.engine import GenerationRequest

__all__ = ["SamplingKeys", "next_token", "top_logprobs"]


class SamplingKeys:
    """The random keys of one generation: from the request's seed, else from a fresh random seed."""

    def __init__(self, seed: int | None):
        import mlx.core as mx

        self._key = mx.random.key(seed if seed is not None else random.getrandbits(63))

    def next(self) -> mx.array:
        """A new key for one token (the sequence of keys depends only on the seed)."""
        import mlx.core as mx

        self._key, key = mx.random.split(self._key)
        return key


def next_token(logits: mx.array, request: GenerationRequest, keys: SamplingKeys | None) -> mx.array:
    """The next id (a lazy 0-d array) from a 1-D logits vector, following the request's sampling settings."""
    import mlx.core as mx

    if request.greedy or keys is None:
        return mx.argmax(logits)
    logits = logits.astype(mx.float32) / request.temperature
    if request.top_k and request.top_k < logits.shape[-1]:
        kth = mx.topk(logits, request.top_k).min()
        logits = mx.where(logits < kth, -mx.inf, logits)
    probs = mx.softmax(logits, axis=-1)
    if request.top_p < 1.0:
        order = mx.argsort(-probs)
        sorted_probs = probs[order]
        # Keep the smallest prefix whose mass reaches top_p; the most likely token always stays.
        outside = (mx.cumsum(sorted_probs) - sorted_probs) >= request.top_p
        outside = mx.concatenate([mx.array([False]), outside[1:]])
        kept = mx.where(outside, 0.0, sorted_probs)
        probs = mx.zeros_like(probs).at[order].add(kept)
    if request.min_p > 0.0:
        probs = mx.where(probs < request.min_p * probs.max(), 0.0, probs)
    return mx.random.categorical(mx.log(probs), key=keys.next())


def top_logprobs(logits: mx.array, token: int, count: int) -> dict[int, float]:
    """The `count` most likely ids' log probabilities under the model (before any sampling setting), and
    the chosen `token`'s."""
    import mlx.core as mx

    logprobs = logits.astype(mx.float32) - mx.logsumexp(logits.astype(mx.float32))
    best = mx.argpartition(-logprobs, count - 1)[:count] if count else mx.array([], dtype=mx.int32)
    ids = [*best.tolist(), token]
    values = logprobs[mx.array(ids)].tolist()
    return dict(zip(ids, values, strict=True))
