"""Choosing the next token from logits: greedy, or temperature / top-k / top-p / min-p sampling."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from gptoss_hub.engine import GenerationRequest

__all__ = ["next_token"]


def next_token(logits: torch.Tensor, request: GenerationRequest, generator: torch.Generator | None) -> int:
    """Pick the next id from a 1-D logits vector, following the request's sampling settings.

    The filters apply in the order vLLM and llama.cpp use: temperature, then top-k, top-p and min-p
    on the resulting distribution.
    """
    import torch

    if request.greedy:
        return int(torch.argmax(logits))
    logits = logits.float() / request.temperature
    if request.top_k:
        kth = torch.topk(logits, min(request.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if request.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the first token is always kept).
        outside = torch.cumsum(sorted_probs, dim=-1) - sorted_probs >= request.top_p
        outside[0] = False  # even where top_p is below float32's smallest number (1e-300 rounds to 0)
        sorted_probs[outside] = 0.0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    if request.min_p > 0.0:
        probs = probs.masked_fill(probs < request.min_p * probs.max(), 0.0)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
