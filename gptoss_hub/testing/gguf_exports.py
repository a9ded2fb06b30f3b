"""GGUF exports of the tiny reference checkpoints, for the llama.cpp backend.

Each export is made by `gptoss_hub.convert` from the cached Hugging Face checkpoint and cached beside
it as `<name>-<version>-<outtype>.gguf`, so it is rebuilt whenever the checkpoint's recipe changes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gptoss_hub.errors import InvalidRequestError

__all__ = ["GGUF_OUTTYPES", "gguf_path"]

#: The exports made: f32 (agrees token for token with transformers in fp32) and mxfp4 (the real GGUFs' layout).
GGUF_OUTTYPES = ("f32", "mxfp4")


def gguf_path(name: str = "tiny-harmony", outtype: str = "f32", *, build: bool = True) -> Path:
    """The GGUF file of reference checkpoint `name` in `outtype` ("f32" or "mxfp4"), made first if missing."""
    from gptoss_hub.testing.checkpoints import checkpoint_path
    from gptoss_hub.testing.staging import file_lock

    if outtype not in GGUF_OUTTYPES:
        raise InvalidRequestError(f"Reference GGUF exports come in {', '.join(GGUF_OUTTYPES)}, not {outtype!r}.")
    folder = checkpoint_path(name, build=build)
    target = folder.with_name(f"{folder.name}-{outtype}.gguf")
    if target.is_file() or not build:
        return target
    with file_lock(folder.parent / f".{target.name}.lock"):
        if target.is_file():
            return target
        from gptoss_hub.convert import convert_checkpoint

        started = time.monotonic()
        convert_checkpoint(folder, target, outtype)  # type: ignore[arg-type]  # writes aside, then renames
        print(
            f"[gptoss_hub.testing] {target.name}: converted in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
            flush=True,
        )
    return target
