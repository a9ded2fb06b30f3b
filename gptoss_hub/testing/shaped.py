"""Random-weight gpt-oss checkpoints with the released shapes: exercise memory, loading and throughput at full size.

`write_shaped_checkpoint("20b", out)` writes a folder laid out exactly as `openai/gpt-oss-20b` stores its
weights on the Hub: the released `config.json` (with its `quantization_config`), the released tensor
names, dtypes and shapes (bfloat16 everywhere but the experts, whose projections are MXFP4
`*_blocks`/`*_scales` uint8 tensors beside bfloat16 `*_bias`), sharded safetensors named
`model-00000-of-0000N.safetensors` (numbered from zero, as released) with `model.safetensors.index.json`,
the released `generation_config.json`, the o200k_harmony tokenizer files the tiny reference checkpoints
carry, and a README saying what it is. `gptoss-hub convert`, transformers and vLLM load it like the real one.

The weights are seeded random values chosen so that runtimes give finite logits: dense weights are
N(0, 0.02) rounded to bfloat16, norms 1, biases N(0, 0.01), attention sinks 0, MXFP4 codes uniform random
bytes with E8M0 scale bytes 119 to 121 (weights of about 2**-7 times an E2M1 value, standard deviation
about 0.023). Each tensor's values depend only on the seed, its name and its shape, so a checkpoint cut to
fewer layers holds the same values as the first layers of the full one.

Writing streams: each shard's header is written first, then each tensor in chunks of at most
`_CHUNK_BYTES`, generated on a second thread while the previous chunk is written, so memory stays at a
few hundred MiB whatever the shard size (gpt-oss-20b, 12.8 GiB, takes a couple of minutes on two cores).
The folder is written beside `out` under a hidden name and renamed into place, so `out` never holds a
half-written checkpoint. `python -m gptoss_hub.testing shaped 20b OUT` does the same from a shell.

Needs numpy and, for the tokenizer files, the `tokenizers` package; not torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import statistics
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gptoss_hub.errors import GptOssHubError
from gptoss_hub.released import MXFP4_QUANTIZATION_CONFIG, RELEASED_REPOS, released_config
from gptoss_hub.testing.staging import staged_folder

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "INDEX_FILE",
    "ShapedTensor",
    "shaped_tensors",
    "write_shaped_checkpoint",
    "write_shaped_from_config",
]

#: Largest shard, in bytes; a single tensor larger than this gets a shard of its own.
DEFAULT_SHARD_BYTES = 2 * 2**30
#: The sharded checkpoint's index, as transformers and vLLM look for it.
INDEX_FILE = "model.safetensors.index.json"

#: Standard deviation of the dense weights (the embeddings, attention, the router and the output layer).
WEIGHT_STD = 0.02
#: Standard deviation of every bias.
BIAS_STD = 0.01
#: E8M0 scale bytes of the MXFP4 experts, drawn uniformly: values of 2**(scale - 127) times an E2M1 code.
SCALE_BYTES = (119, 120, 121)

#: The released checkpoints' `generation_config.json` (the same for 20b and 120b).
RELEASED_GENERATION_CONFIG: dict[str, Any] = {
    "bos_token_id": 199998,
    "do_sample": True,
    "eos_token_id": [200002, 199999, 200012],
    "pad_token_id": 199999,
}

# Bytes produced per step when generating a tensor: a multiple of 8, so a tensor's random stream does
# not depend on how it is cut into chunks.
_CHUNK_BYTES = 64 * 2**20
_SAFETENSORS_DTYPES: dict[str, np.dtype[Any]] = {"BF16": np.dtype(np.uint16), "U8": np.dtype(np.uint8)}
_BF16_ONE = 0x3F80

_README = """# Random {title}

**Not a model.** Every weight in this folder is seeded random noise (seed {seed}); it produces
meaningless text. It exists to exercise loading, memory and throughput {purpose}.

- Layout: the released one: `config.json` {config} (with the MXFP4 `quantization_config`){layers},
  the released tensor names and dtypes, {shapes} (bfloat16 everywhere except the expert
  projections, stored as MXFP4 `*_blocks`/`*_scales` uint8 tensors beside bfloat16 `*_bias`),
  {shards} safetensors shards with `model.safetensors.index.json`, {total_size:,} bytes of tensors.
- Values: dense weights N(0, {weight_std}) in bfloat16, norms 1, biases N(0, {bias_std}), attention sinks 0,
  MXFP4 codes uniform random bytes with E8M0 scales {scales}, so that runtimes give finite logits.
- Tokenizer: o200k_harmony (`tokenizer.json`), generated offline by `gptoss_hub.testing.hf_tokenizer`.

Made by {command} (`gptoss_hub.testing.shaped`).
"""


def _progress(message: str) -> None:
    print(f"[gptoss_hub.testing] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ShapedTensor:
    """One tensor of a shaped checkpoint: its name, safetensors dtype, shape and how it is filled.

    `fill` is "normal" (N(0, `std`) in bfloat16), "ones", "zeros", "bytes" (uniform random bytes: MXFP4
    codes) or "scales" (E8M0 bytes drawn from `SCALE_BYTES`).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    fill: str
    std: float = 0.0

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * _SAFETENSORS_DTYPES[self.dtype].itemsize


def shaped_tensors(config: dict[str, Any]) -> list[ShapedTensor]:
    """Every tensor of a gpt-oss checkpoint with `config`'s shapes, named and typed as released, in file order.

    The experts are MXFP4 (`*_blocks` `[experts, out, in / 32, 16]`, `*_scales` `[experts, out, in / 32]`),
    so `hidden_size` and `intermediate_size` must be multiples of 32.
    """
    hidden, inter = int(config["hidden_size"]), int(config["intermediate_size"])
    vocab, experts = int(config["vocab_size"]), int(config["num_local_experts"])
    heads, kv_heads = int(config["num_attention_heads"]), int(config["num_key_value_heads"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    if hidden % 32 or inter % 32:
        raise ValueError(
            f"MXFP4 experts need hidden_size and intermediate_size divisible by 32, got {hidden} and {inter}."
        )

    def normal(name: str, *shape: int, std: float = WEIGHT_STD) -> ShapedTensor:
        return ShapedTensor(name, "BF16", shape, "normal", std)

    def bias(name: str, *shape: int) -> ShapedTensor:
        return normal(name, *shape, std=BIAS_STD)

    tensors = [normal("model.embed_tokens.weight", vocab, hidden)]
    for layer in range(int(config["num_hidden_layers"])):
        p = f"model.layers.{layer}."
        tensors += [
            ShapedTensor(p + "input_layernorm.weight", "BF16", (hidden,), "ones"),
            normal(p + "self_attn.q_proj.weight", heads * head_dim, hidden),
            bias(p + "self_attn.q_proj.bias", heads * head_dim),
            normal(p + "self_attn.k_proj.weight", kv_heads * head_dim, hidden),
            bias(p + "self_attn.k_proj.bias", kv_heads * head_dim),
            normal(p + "self_attn.v_proj.weight", kv_heads * head_dim, hidden),
            bias(p + "self_attn.v_proj.bias", kv_heads * head_dim),
            normal(p + "self_attn.o_proj.weight", hidden, heads * head_dim),
            bias(p + "self_attn.o_proj.bias", hidden),
            ShapedTensor(p + "self_attn.sinks", "BF16", (heads,), "zeros"),
            ShapedTensor(p + "post_attention_layernorm.weight", "BF16", (hidden,), "ones"),
            normal(p + "mlp.router.weight", experts, hidden),
            bias(p + "mlp.router.bias", experts),
        ]
        # Each projection is stored `[experts, out, in]`, its 32-value MXFP4 groups running along the input.
        for projection, rows, inputs in (("gate_up_proj", 2 * inter, hidden), ("down_proj", hidden, inter)):
            e = f"{p}mlp.experts.{projection}"
            tensors += [
                ShapedTensor(e + "_blocks", "U8", (experts, rows, inputs // 32, 16), "bytes"),
                ShapedTensor(e + "_scales", "U8", (experts, rows, inputs // 32), "scales"),
                bias(e + "_bias", experts, rows),
            ]
    tensors += [
        ShapedTensor("model.norm.weight", "BF16", (hidden,), "ones"),
        normal("lm_head.weight", vocab, hidden),
    ]
    return tensors


@functools.lru_cache(maxsize=4)
def _normal_bf16(std: float) -> np.ndarray:
    """bfloat16 bits of N(0, `std`)'s quantiles at (k + 1/2) / 65536: indexed by a uniform random uint16,
    a draw from N(0, `std`) rounded to bfloat16 (tails cut beyond 4.2 standard deviations).

    A table look-up is several times faster than drawing normals and, the quantiles coming from the
    standard library, its values do not depend on numpy's sampling algorithms.
    """
    quantiles = statistics.NormalDist(0.0, std)
    values = np.array([quantiles.inv_cdf((k + 0.5) / 65536) for k in range(65536)], dtype=np.float32)
    bits = values.view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))  # to nearest even
    return (rounded >> np.uint32(16)).astype(np.uint16)


def _scale_table() -> np.ndarray:
    # A byte maps to SCALE_BYTES[byte % 3] (256 = 3 * 85 + 1: the first scale is very slightly likelier).
    return np.array([SCALE_BYTES[b % len(SCALE_BYTES)] for b in range(256)], dtype=np.uint8)


def _tensor_chunks(tensor: ShapedTensor, seed: int) -> Iterator[Callable[[], np.ndarray]]:
    """Functions producing a tensor's bytes, in order, at most `_CHUNK_BYTES` each."""
    itemsize = _SAFETENSORS_DTYPES[tensor.dtype].itemsize
    count = tensor.nbytes // itemsize
    step = _CHUNK_BYTES // itemsize
    if tensor.fill in ("ones", "zeros"):
        value = _BF16_ONE if tensor.fill == "ones" else 0
        for start in range(0, count, step):
            yield functools.partial(np.full, min(step, count - start), value, dtype=np.uint16)
        return
    # One stream per tensor, keyed by its name: its values do not depend on the other tensors.
    key = int.from_bytes(hashlib.sha256(tensor.name.encode()).digest()[:8], "little")
    bits = np.random.PCG64(np.random.SeedSequence([seed, key]))
    table = _normal_bf16(tensor.std) if tensor.fill == "normal" else _scale_table() if tensor.fill == "scales" else None

    def produce(size: int) -> np.ndarray:
        # `size` values from the stream: 8 random bytes per uint64, whole words (the last chunk may waste a few).
        raw = bits.random_raw((size * itemsize + 7) // 8).view(np.uint8 if itemsize == 1 else np.uint16)[:size]
        return raw if table is None else table[raw]

    for start in range(0, count, step):
        yield functools.partial(produce, min(step, count - start))


def _shard_plan(tensors: list[ShapedTensor], shard_bytes: int) -> list[list[ShapedTensor]]:
    shards: list[list[ShapedTensor]] = [[]]
    size = 0
    for tensor in tensors:
        if shards[-1] and size + tensor.nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(tensor)
        size += tensor.nbytes
    return shards


def _shard_name(index: int, count: int) -> str:
    # Numbered from zero, "of" the last index, as in openai/gpt-oss-20b (model-00000-of-00002 ... -00002-of-00002).
    return f"model-{index:05d}-of-{count - 1:05d}.safetensors"


def _header(tensors: list[ShapedTensor]) -> bytes:
    """A safetensors header: 8-byte little-endian length, then JSON padded with spaces to 8 bytes."""
    entries: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for tensor in tensors:
        entries[tensor.name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + tensor.nbytes],
        }
        offset += tensor.nbytes
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def _write_shard(path: Path, tensors: list[ShapedTensor], seed: int, pool: ThreadPoolExecutor) -> None:
    jobs = (chunk for tensor in tensors for chunk in _tensor_chunks(tensor, seed))
    # The next chunk is generated on the pool's thread while this one is written (both release the GIL).
    pending: deque[Any] = deque()
    with open(path, "wb") as handle:
        handle.write(_header(tensors))
        for job in jobs:
            pending.append(pool.submit(job))
            if len(pending) > 2:
                handle.write(pending.popleft().result())
        while pending:
            handle.write(pending.popleft().result())
        expected = len(_header(tensors)) + sum(t.nbytes for t in tensors)
        if handle.tell() != expected:  # a bug in this module, never a user error
            raise RuntimeError(f"{path.name}: wrote {handle.tell()} bytes, expected {expected}.")


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def write_shaped_from_config(
    config: dict[str, Any],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    force: bool = False,
    progress: Callable[[str], None] | None = _progress,
) -> Path:
    """Write a random-weight checkpoint with `config`'s shapes (a gpt-oss `config.json` dict) to folder `out`.

    `config` is written as `config.json`, given the released MXFP4 `quantization_config` if it has none
    (the experts are always stored in MXFP4); the tensors follow `shaped_tensors(config)`, sharded
    so that no shard exceeds `shard_bytes` (unless one tensor does). `out` must not exist unless `force`
    (it is then replaced once the new folder is complete). `progress` receives one line per shard
    (default: stderr; None for silence). Returns `out`.
    """
    return _write(config, Path(out), None, seed=seed, shard_bytes=shard_bytes, force=force, progress=progress)


def write_shaped_checkpoint(
    size: str,
    out: str | os.PathLike[str],
    *,
    layers: int | None = None,
    seed: int = 0,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    force: bool = False,
    progress: Callable[[str], None] | None = _progress,
) -> Path:
    """Write a random-weight checkpoint with the released gpt-oss-`size` shapes ("20b" or "120b") to `out`.

    `layers` keeps only the first `layers` layers (in the config and the tensors). The other arguments
    are `write_shaped_from_config`'s. The tensors take 12.8 GiB for 20b and 60.8 GiB for 120b.
    """
    config = released_config(size, layers=layers)
    return _write(config, Path(out), size, seed=seed, shard_bytes=shard_bytes, force=force, progress=progress)


def _write(
    config: dict[str, Any],
    target: Path,
    size: str | None,
    *,
    seed: int,
    shard_bytes: int,
    force: bool,
    progress: Callable[[str], None] | None,
) -> Path:
    from gptoss_hub.testing.hf_tokenizer import write_tokenizer_files

    if (target.exists() or target.is_symlink()) and not force:
        raise GptOssHubError(f"{target} already exists; choose another folder or pass force=True (--force).")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    say = progress or (lambda _message: None)
    config = {**config, "quantization_config": config.get("quantization_config") or MXFP4_QUANTIZATION_CONFIG}
    if config["quantization_config"].get("quant_method") != "mxfp4":
        raise ValueError(f"the experts are written in MXFP4, but the config says {config['quantization_config']}.")
    tensors = shaped_tensors(config)
    shards = _shard_plan(tensors, shard_bytes)
    total = sum(t.nbytes for t in tensors)
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < total + 64 * 2**20:
        raise GptOssHubError(f"{target.parent} has {_gib(free)} free; this checkpoint needs {_gib(total)}.")
    started = time.monotonic()
    with staged_folder(target, replace=force) as folder, ThreadPoolExecutor(1, thread_name_prefix="shaped") as pool:
        # The side files first: a missing tokenizer dependency fails before gigabytes are written.
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (folder / "generation_config.json").write_text(json.dumps(RELEASED_GENERATION_CONFIG, indent=2) + "\n")
        write_tokenizer_files(folder)
        weight_map: dict[str, str] = {}
        written = 0
        for index, shard in enumerate(shards):
            name = _shard_name(index, len(shards))
            _write_shard(folder / name, shard, seed, pool)
            weight_map.update(dict.fromkeys((t.name for t in shard), name))
            written += sum(t.nbytes for t in shard)
            say(
                f"shard {index + 1}/{len(shards)} {name}: {_gib(written)} of {_gib(total)} "
                f"({time.monotonic() - started:.1f}s)"
            )
        index_data = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (folder / INDEX_FILE).write_text(json.dumps(index_data, indent=2) + "\n")
        (folder / "README.md").write_text(_readme(config, size, seed=seed, total=total, shards=len(shards)))
    say(f"wrote {target}: {_gib(total)} of tensors in {len(shards)} shards ({time.monotonic() - started:.1f}s)")
    return target


def _readme(config: dict[str, Any], size: str | None, *, seed: int, total: int, shards: int) -> str:
    layers = int(config["num_hidden_layers"])
    full = released_config(size)["num_hidden_layers"] if size else layers
    if size:
        flag = "" if layers == full else f" --layers {layers}"
        command = f"`python -m gptoss_hub.testing shaped {size} OUT{flag} --seed {seed}`"
    else:
        command = "`gptoss_hub.testing.shaped.write_shaped_from_config`"
    return _README.format(
        title=f"gpt-oss-{size} weights with the released shapes" if size else "gpt-oss weights in a custom shape",
        seed=seed,
        purpose=f"at the real size without downloading `{RELEASED_REPOS[size]}`" if size else "in gpt-oss's layout",
        config="as released" if size else "as given",
        layers="" if layers == full else f", cut to its first {layers} of {full} layers",
        shapes="the released shapes" if size else "shapes following `config.json`",
        command=command,
        shards=shards,
        total_size=total,
        weight_std=WEIGHT_STD,
        bias_std=BIAS_STD,
        scales=", ".join(map(str, SCALE_BYTES)),
    )
