"""What `GET /status` says about a running server, for `gptoss-hub ps`: the model it serves and how, how
many requests it is serving, and how much memory the server process holds."""

from __future__ import annotations

import os
import resource
import sys
import time
from typing import Any

__all__ = ["process_resident_bytes", "server_status"]

#: When this server process started serving (the module is imported when the app is made).
_STARTED = time.time()


def process_resident_bytes() -> int | None:
    """This process's resident memory now (`/proc/self/statm` on Linux); elsewhere its peak, which is what
    `getrusage` offers; `None` where neither can be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (OSError, ValueError):
        return None
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def server_status(info: Any, served_name: str, in_progress: int) -> dict[str, Any]:
    """The `/status` body for a model whose `ModelInfo` is `info`, served as `served_name`."""
    return {
        "status": info.status,
        "model": info.model,
        "served_as": served_name,
        "backend": info.backend,
        "device": info.device,
        "dtype": info.dtype,
        "quantization": info.quantization,
        "max_context": info.capabilities.get("max_context"),
        "requests_in_progress": in_progress,
        "resident_bytes": process_resident_bytes(),
        "pid": os.getpid(),
        "uptime_seconds": round(time.time() - _STARTED, 1),
    }
