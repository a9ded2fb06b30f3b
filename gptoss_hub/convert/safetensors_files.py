"""Reading a Hugging Face checkpoint's safetensors shards tensor by tensor, without torch.

safetensors' own numpy loader refuses bfloat16, the dtype of every real gpt-oss checkpoint, and
torch is not a dependency of the llama.cpp extra. The format is a length-prefixed JSON header followed
by raw little-endian data, so a memory map gives each tensor lazily: converting gpt-oss-120b holds one
tensor in memory at a time, never the whole model.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gptoss_hub.errors import CheckpointError, ModelNotFoundError

__all__ = ["CheckpointTensors"]

_DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,  # raw bits, widened by `float32`
    "U8": np.uint8,
    "I8": np.int8,
    "I32": np.int32,
    "I64": np.int64,
}


class CheckpointTensors:
    """The tensors of every `*.safetensors` file in a checkpoint folder, by name."""

    def __init__(self, folder: Path):
        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            raise ModelNotFoundError(f"{folder} holds no .safetensors files; pass a Hugging Face checkpoint folder.")
        self._where: dict[str, tuple[Path, str, list[int], int, int]] = {}
        for file in files:
            with open(file, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length))
            start = 8 + length
            for name, entry in header.items():
                if name == "__metadata__":
                    continue
                if entry["dtype"] not in _DTYPES:
                    raise CheckpointError(f"{file.name}: tensor {name} has unsupported dtype {entry['dtype']}.")
                begin, end = entry["data_offsets"]
                self._where[name] = (file, entry["dtype"], entry["shape"], start + begin, start + end)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def names(self) -> Iterator[str]:
        """Every tensor name, sorted."""
        return iter(sorted(self._where))

    def shape(self, name: str) -> tuple[int, ...]:
        """A tensor's shape, read from the header."""
        return tuple(self._where[name][2])

    def raw(self, name: str) -> np.ndarray:
        """The tensor as stored (bfloat16 as uint16 bits), memory-mapped."""
        file, dtype, shape, begin, end = self._where[name]
        count = int(np.prod(shape)) if shape else 1
        data = np.memmap(file, dtype=_DTYPES[dtype], mode="r", offset=begin, shape=(count,))
        if data.nbytes != end - begin:
            raise CheckpointError(f"{file.name}: tensor {name} has {end - begin} bytes, expected {data.nbytes}.")
        return data.reshape(shape)

    def dtype(self, name: str) -> str:
        """A tensor's safetensors dtype ("BF16", "F32", "U8", …), read from the header."""
        return self._where[name][1]

    def float32(self, name: str, index: Any = ...) -> np.ndarray:
        """The tensor, or the part `index` selects, as float32 (bfloat16 widened exactly). Selecting first
        reads and widens only that part."""
        dtype = self._where[name][1]
        data = self.raw(name)[index]
        if dtype == "BF16":
            return (data.astype(np.uint32) << 16).view(np.float32)
        return np.asarray(data, dtype=np.float32)
