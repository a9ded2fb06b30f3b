"""Tiny gpt-oss reference checkpoints: test every runtime end to end without the real weights.

- `checkpoint_path("tiny-random")`: the tiny gpt-oss shape with seeded random weights.
- `checkpoint_path("tiny-harmony")`: the same shape trained on a synthetic harmony corpus (answers,
  a `get_weather` tool call, a final answer after the tool's result), each as a first turn and as a
  second turn after an earlier completed weather or plain turn, until greedy decoding reproduces it.
- `corpus_examples()`: that corpus, as requests and exact completion ids, for tests and backends.
- `mxfp4_checkpoint_path(name)`: the checkpoint with MXFP4 experts in the real checkpoints' layout, and
  `dequantized_twin_path(name)`: the same values dequantized by `gptoss_hub.convert.mxfp4`.
- `gguf_path(name, outtype)`: the checkpoint converted to GGUF for llama.cpp (needs `gguf`).
- `gptoss_hub.testing.shaped` and `gptoss_hub.testing.sparse`: random weights, or headers over holes, with
  the released 20b/120b shapes and layout.

Checkpoints are built on first use (about a minute on a laptop CPU) and cached under
`<cache>/checkpoints/`; `python -m gptoss_hub.testing build` builds them ahead of time. Importing this
package does not import torch or transformers.
"""

from __future__ import annotations

from gptoss_hub.testing.checkpoints import CHECKPOINT_NAMES, CHECKPOINT_VERSION, checkpoint_path
from gptoss_hub.testing.corpus import CorpusExample, corpus_examples, demo_examples
from gptoss_hub.testing.gguf_exports import gguf_path
from gptoss_hub.testing.kv_heads import kv_heads_checkpoint_path
from gptoss_hub.testing.mxfp4_exports import dequantized_twin_path, mxfp4_checkpoint_path

__all__ = [
    "CHECKPOINT_NAMES",
    "CHECKPOINT_VERSION",
    "CorpusExample",
    "checkpoint_path",
    "corpus_examples",
    "demo_examples",
    "dequantized_twin_path",
    "gguf_path",
    "kv_heads_checkpoint_path",
    "mxfp4_checkpoint_path",
]
