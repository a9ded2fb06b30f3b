"""Where the hub keeps what it builds or verifies once: vocabularies and reference checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The hub's cache folder: `$GPTOSS_HUB_CACHE`, else `$XDG_CACHE_HOME/gptoss_hub`, else `~/.cache/gptoss_hub`.

    Nothing is created here; callers create the sub-folder they need.
    """
    explicit = os.environ.get("GPTOSS_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gptoss_hub"
