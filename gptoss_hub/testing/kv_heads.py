"""A reference checkpoint with more KV heads, the same model: so tensor parallel can be tested on it.

gpt-oss does not replicate KV heads across tensor-parallel ranks, so a model splits over at most as many
ranks as it has KV heads, and tiny-harmony has one. `kv_heads_checkpoint_path("tiny-harmony", 2)` copies
each layer's single KV head: the key and value projections (weights and biases) are repeated along their
output, and `num_key_value_heads` says 2. Each group of query heads then attends to its own copy of the
same keys and values, so every output is what the original computes, exactly; tensor parallel 2 gives
each rank one query head with its KV head.

Cached beside the checkpoint as `<name>-<version>-kv<N>` (`gptoss_hub.testing.exports`).
"""

from __future__ import annotations

import json
from pathlib import Path

from gptoss_hub.testing.exports import copy_side_files, derived_checkpoint, read_tensors, save_tensors

__all__ = ["kv_heads_checkpoint_path"]

_README = """# {name} ({version}), {kv_heads} KV heads

`{name}` with each layer's KV head repeated {factor} times (`k_proj` and `v_proj`, weights and biases), so
that it has {kv_heads} KV heads and splits over up to {kv_heads} tensor-parallel ranks. The same model:
every output equals the original's. Made by `gptoss_hub.testing.kv_heads`.
"""


def kv_heads_checkpoint_path(name: str = "tiny-harmony", kv_heads: int = 2, *, build: bool = True) -> Path:
    """The folder of reference checkpoint `name` with `kv_heads` KV heads (a multiple of its own, dividing
    its query heads), made first if missing; with `build=False` the path whether or not it exists."""

    def write(source: Path, folder: Path) -> None:
        _write(source, folder, kv_heads)

    return derived_checkpoint(name, f"kv{kv_heads}", write, build=build)


def _write(source: Path, folder: Path, kv_heads: int) -> None:
    import torch

    config = json.loads((source / "config.json").read_text())
    own, queries = config["num_key_value_heads"], config["num_attention_heads"]
    if kv_heads % own or queries % kv_heads:
        raise ValueError(f"{kv_heads} KV heads must be a multiple of {own} and divide the {queries} query heads")
    factor = kv_heads // own
    head_dim = config["head_dim"]
    tensors = read_tensors(source)
    for tensor_name, tensor in list(tensors.items()):
        if tensor_name.endswith(
            ("self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias")
        ):
            # [own * head_dim, ...] -> [kv_heads * head_dim, ...]: each head's rows repeated, heads kept in order.
            by_head = tensor.reshape(own, head_dim, *tensor.shape[1:])
            tensors[tensor_name] = torch.repeat_interleave(by_head, factor, dim=0).reshape(
                kv_heads * head_dim, *tensor.shape[1:]
            )
    copy_side_files(source, folder)
    config["num_key_value_heads"] = kv_heads
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_tensors(tensors, folder)
    version = source.name.rsplit("-", 1)[-1]
    name = source.name.removesuffix(f"-{version}")
    (folder / "README.md").write_text(_README.format(name=name, version=version, kv_heads=kv_heads, factor=factor))
