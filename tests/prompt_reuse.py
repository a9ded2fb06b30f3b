"""A ten-turn chat that checks an engine evaluates only what its cache does not hold (llama.cpp, MLX)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

QUESTIONS = ["What is 2 + 2?", "Say hello.", "What color is the sky?", "Tell me a joke.", "What is 2 + 2?"] * 2


def chat_ten_turns(model: Any, after_turn: Callable[[], None] = lambda: None) -> None:
    """Chat ten turns with `model`, whose engine records `last_prompt` (prompt, reused and evaluated tokens);
    `after_turn` runs after each turn. Each turn reuses everything the engine held of its prompt, at least
    the previous prompt but its last header, so late turns cost a turn, not the history."""
    engine = model._engine
    messages: list[dict[str, Any]] = []
    evaluated, prompt_lengths = [], []
    for turn, question in enumerate(QUESTIONS):
        messages.append({"role": "user", "content": question})
        reply = model.chat(messages, max_tokens=24)
        stats = engine.last_prompt
        after_turn()
        prompt_lengths.append(stats.prompt_tokens)
        evaluated.append(stats.evaluated_tokens)
        # Everything the engine already held of this prompt was reused, nothing re-evaluated.
        assert stats.evaluated_tokens == stats.prompt_tokens - stats.reused_tokens
        if turn:
            # The previous prompt is this prompt's prefix up to the previous reply, whose completed
            # reasoning the hub drops: so at least the previous prompt but its last header is reused.
            assert stats.reused_tokens >= prompt_lengths[turn - 1] - 2
        messages.append(reply.message)
    assert prompt_lengths[-1] > 3 * max(evaluated[1:])  # late turns cost a turn, not the history
    assert sum(evaluated) < 2 * prompt_lengths[-1]
