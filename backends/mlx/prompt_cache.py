"""The KV cache of one MLX engine, kept across requests so a chat does not re-process its history.

gpt-oss alternates full-attention layers (mlx-lm's `KVCache`, which can be cut back to any prefix) and
sliding-window layers (`RotatingKVCache`, which holds only the last `sliding_window` positions and, once it
has wrapped around, cannot be cut back). A new prompt usually repeats the previous one and then diverges
(the hub drops a finished turn's reasoning), so the cache must be cut back past the reply. For the
sliding layers that is only possible before they wrap; after that the cache restores the copy of their
state it took when the previous prompt had been evaluated, which is exactly what the next turn's prompt
starts with. Where neither applies the prompt is evaluated from the start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

__all__ = ["PromptCache"]


class PromptCache:
    """mlx-lm's per-layer caches, the ids they hold (`ids`), and a snapshot of the sliding layers."""

    def __init__(self, model: Any):
        self._model = model
        self.layers: list[Any] = []
        #: The ids whose keys and values the layers hold, in order.
        self.ids: list[int] = []
        #: The ids the snapshot covers, and the sliding layers' states then (by layer index).
        self._snapshot_ids: list[int] = []
        self._snapshot: dict[int, tuple[Any, ...]] = {}
        #: How the last `reuse` kept what it kept: the prompt extended the held ids, the layers were cut
        #: back, the sliding layers were restored from the snapshot, or nothing could be kept.
        self.last_reuse: Literal["extended", "cut back", "restored", "none"] = "none"
        self.reset()

    def reset(self) -> None:
        """Empty caches for every layer."""
        from mlx_lm.models.cache import make_prompt_cache

        self.layers = make_prompt_cache(self._model)
        self.ids = []
        self._snapshot_ids, self._snapshot = [], {}

    def reuse(self, prompt: Sequence[int]) -> int:
        """Cut the cache back to the longest prefix of `prompt` it can keep, and return its length.

        At most all but the last id: the next token's logits come from evaluating at least one.
        """
        shared = 0
        for held, wanted in zip(self.ids, prompt, strict=False):
            if held != wanted:
                break
            shared += 1
        shared = min(shared, len(prompt) - 1)
        drop = len(self.ids) - shared
        if shared == 0:
            self.reset()
            self.last_reuse = "none"
            return 0
        if drop == 0:
            self.last_reuse = "extended"
            return shared
        if all(layer.is_trimmable() for layer in self.layers):
            for layer in self.layers:
                layer.trim(drop)
            self.ids = self.ids[:shared]
            self.last_reuse = "cut back"
            return shared
        kept = len(self._snapshot_ids)
        if self._snapshot and kept <= shared:
            self._restore(kept)
            self.last_reuse = "restored"
            return kept
        self.reset()
        self.last_reuse = "none"
        return 0

    def take_snapshot(self) -> None:
        """Copy the sliding layers' state, to come back to `ids` as they are now (the prompt just evaluated)."""
        import mlx.core as mx
        from mlx_lm.models.cache import RotatingKVCache

        self._snapshot_ids = list(self.ids)
        self._snapshot = {
            index: _copied(layer.state, mx)
            for index, layer in enumerate(self.layers)
            if isinstance(layer, RotatingKVCache) and layer.keys is not None
        }

    def _restore(self, length: int) -> None:
        import mlx.core as mx
        from mlx_lm.models.cache import RotatingKVCache

        for index, layer in enumerate(self.layers):
            if index in self._snapshot:
                state = _copied(self._snapshot[index], mx)  # the snapshot stays usable for later turns
                restored = RotatingKVCache(max_size=layer.max_size)
                restored.state = state
                self.layers[index] = restored
            else:
                layer.trim(layer.offset - length)
        self.ids = self.ids[:length]


def _copied(state: tuple[Any, ...], mx: Any) -> tuple[Any, ...]:
    # mlx-lm writes a sliding layer's new keys into its arrays in place; a copy keeps them as they were.
    return tuple(mx.array(value) if isinstance(value, mx.array) else value for value in state)
