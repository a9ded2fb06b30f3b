"""Variants derived from a reference checkpoint, cached beside it as `<name>-<version>-<suffix>`.

A variant is rebuilt whenever its checkpoint is (a checkpoint's build deletes the folders named after it),
and is written into a hidden temporary folder renamed into place under a lock, as the checkpoints' own
builds are. `gptoss_hub.testing.mxfp4_exports` and `gptoss_hub.testing.kv_heads` make theirs through here.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["WEIGHTS", "copy_side_files", "derived_checkpoint", "read_tensors", "save_tensors"]

#: The weights file of a reference checkpoint and of each variant.
WEIGHTS = "model.safetensors"


def _progress(message: str) -> None:
    print(f"[gptoss_hub.testing] {message}", file=sys.stderr, flush=True)


def derived_checkpoint(name: str, suffix: str, write: Callable[[Path, Path], None], *, build: bool) -> Path:
    """The folder of checkpoint `name`'s variant `suffix`, made by `write(source, folder)` first if missing
    (and `build`); with `build=False` the path is returned whether or not it exists."""
    from gptoss_hub.testing.checkpoints import checkpoint_path
    from gptoss_hub.testing.staging import file_lock, staged_folder

    source = checkpoint_path(name, build=build)
    target = source.with_name(f"{source.name}-{suffix}")
    if (target / WEIGHTS).is_file() or not build:
        return target
    with file_lock(source.parent / f".{target.name}.lock"):
        if (target / WEIGHTS).is_file():
            return target
        started = time.monotonic()
        with staged_folder(target) as staging:
            write(source, staging)
        _progress(f"{target.name}: exported in {time.monotonic() - started:.1f}s")
    return target


def copy_side_files(source: Path, folder: Path) -> None:
    """Everything but the weights and the README: config, generation config, tokenizer files."""
    for path in source.iterdir():
        if path.is_file() and path.name not in (WEIGHTS, "README.md"):
            shutil.copy2(path, folder / path.name)


def read_tensors(source: Path) -> dict[str, Any]:
    """The checkpoint's tensors by name."""
    from safetensors.torch import load_file

    return load_file(source / WEIGHTS)


def save_tensors(tensors: dict[str, Any], folder: Path) -> None:
    """Write `tensors` as the folder's weights, as transformers saves them."""
    from safetensors.torch import save_file

    save_file(
        {name: tensor.contiguous() for name, tensor in tensors.items()}, folder / WEIGHTS, metadata={"format": "pt"}
    )
