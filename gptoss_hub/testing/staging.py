"""Folders that appear whole or not at all, and builders that agree on one result.

`staged_folder(target)` gives a hidden empty folder beside `target` to write into and renames it into place
when the block succeeds (removing it otherwise), so an interrupted build never leaves a half folder.
`file_lock(path)` is an exclusive advisory lock, so two processes building the same thing at once wait for
each other instead of both writing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gptoss_hub.errors import GptOssHubError

__all__ = ["file_lock", "staged_folder"]


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` where the platform has one (the atomic rename covers the rest)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent builders may both build, and the first rename wins
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def staged_folder(target: Path, *, replace: bool = True) -> Iterator[Path]:
    """A hidden empty folder beside `target`, renamed to `target` when the block succeeds and removed when it
    fails. An existing `target` is replaced, or, with `replace=False`, kept and `GptOssHubError` raised."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        if target.exists() or target.is_symlink():
            if not replace:
                raise GptOssHubError(f"{target} appeared while it was being written; nothing was replaced.")
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
