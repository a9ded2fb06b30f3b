"""Checkpoints that are all header: real headers over holes, for testing what is read from headers alone.

`write_sparse_checkpoint(config, folder)` writes `config.json` and one safetensors file whose header lists
every tensor of a gpt-oss checkpoint with `config`'s shapes (the released layout: MXFP4 experts) and whose
data is a hole; `write_sparse_gguf(config, path)` writes the GGUF file `gptoss-hub convert --outtype mxfp4`
would make from it, metadata and tensor table included, its tensor data again a hole. Both files have
their full size (12.8 GiB for gpt-oss-20b) but take a few kilobytes of disk, so sizing, planning and
memory estimates are tested at the released sizes in a second. Reading their weights gives zeros.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["write_sparse_checkpoint", "write_sparse_gguf"]

#: The safetensors file a sparse checkpoint holds.
SPARSE_WEIGHTS = "model.safetensors"


def _with_hole(path: Path, size: int) -> None:
    """Extend the file at `path` to `size` bytes without writing them (a sparse file on every common filesystem)."""
    with open(path, "r+b") as handle:
        handle.truncate(size)


def write_sparse_checkpoint(config: dict[str, Any], folder: str | os.PathLike[str]) -> Path:
    """Write `config.json` and a sparse `model.safetensors` with `config`'s tensors into `folder`; returns it."""
    from gptoss_hub.testing.shaped import _header, shaped_tensors

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tensors = shaped_tensors(config)
    header = _header(tensors)
    path = folder / SPARSE_WEIGHTS
    path.write_bytes(header)
    _with_hole(path, len(header) + sum(t.nbytes for t in tensors))
    return folder


def write_sparse_gguf(config: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the MXFP4 GGUF `gptoss-hub convert` makes from a checkpoint with `config`, its data a hole.

    The metadata is the converter's (without the tokenizer: the vocabulary size comes from the embedding's
    shape), the tensor table lists every tensor with its GGUF type, and the file has its full size.
    """
    import tempfile

    import gguf

    from gptoss_hub.convert.safetensors_files import CheckpointTensors
    from gptoss_hub.convert.writer import _ARCH, _add_hyperparameters, _Plan, _storage

    path = Path(path)
    with tempfile.TemporaryDirectory() as scratch:
        source = write_sparse_checkpoint(config, scratch)
        plan = _Plan(CheckpointTensors(source), config, "mxfp4")
        plan.build()  # plans only: no tensor data is read
    writer = gguf.GGUFWriter(path, _ARCH)
    _add_hyperparameters(writer, config, path.stem, "mxfp4")
    data = 0
    for item in plan.items:
        storage, shape = _storage(item)
        writer.add_tensor_info(item.name, shape, storage, item.nbytes, raw_dtype=item.qtype)
        data += gguf.GGUFWriter.ggml_pad(item.nbytes, writer.data_alignment)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    start = gguf.GGUFWriter.ggml_pad(path.stat().st_size, writer.data_alignment)
    _with_hole(path, start + data)
    return path
