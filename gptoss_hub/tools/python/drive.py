"""A session's `/mnt/data` as the host sees it: a folder on the host's disk, bounded while cells run.

The folder is bound into the sandbox read-write, so nothing in the sandbox limits how much a cell writes
there (the file size limit bounds each file, not their number). The session measures it while a cell runs
and after; past its limit the kernel is stopped and the folder emptied, so a prompt cannot fill the
server's disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["empty", "over_limit"]


def over_limit(folder: Path, most_bytes: int, most_entries: int) -> bool:
    """Whether `folder` holds more than `most_bytes` on disk or `most_entries` files and folders.

    A folder inside it that cannot be read counts as over: what it hides cannot be measured.
    """
    used = entries = 0
    unreadable: list[OSError] = []
    for root, folders, files in os.walk(folder, onerror=unreadable.append):
        entries += len(folders) + len(files)
        if entries > most_entries:
            return True
        for name in files:
            try:
                used += os.lstat(os.path.join(root, name)).st_blocks * 512  # what the disk holds, sparse or not
            except FileNotFoundError:  # deleted while being measured
                continue
        if used > most_bytes:
            return True
    return bool(unreadable)


def empty(folder: Path) -> None:
    """Remove everything inside `folder`, also folders a cell made unreadable. Only once the kernel is
    stopped: nothing may change the folder while it is emptied."""
    for root, folders, _ in os.walk(folder):
        for name in folders:  # opened before os.walk descends into them
            path = os.path.join(root, name)
            if not os.path.islink(path):  # a link's target is the host's, whatever it is named in the sandbox
                os.chmod(path, 0o700)
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
