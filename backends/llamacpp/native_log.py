"""llama.cpp's own log, routed to Python logging instead of the terminal.

llama-cpp-python prints llama.cpp's warnings to stderr even with `verbose=False` (it reads ggml's log levels
in an older order, so every warning counts as an error there): context and cache notes would land in the
middle of a chat. Here every message goes to the `gptoss_hub.llamacpp.native` logger at DEBUG (shown by
`gptoss-hub chat --verbose`, or any logging set up for it), is printed only when an engine asks for
`verbose=True`, and the last warnings are kept to explain a failed load.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from collections import deque
from typing import Any

__all__ = ["install", "recent_warnings"]

_logger = logging.getLogger("gptoss_hub.llamacpp.native")
#: ggml's log levels as llama.cpp numbers them today, by name.
_LEVEL_NAMES = {1: "debug", 2: "info", 3: "warning", 4: "error"}
_CONTINUED = 5
#: The last warnings and errors (level 3 and 4, with their continuation lines), newest last.
_recent: deque[str] = deque(maxlen=40)
_state: dict[str, Any] = {"installed": None, "echo": False, "last_level": 2}
_lock = threading.Lock()


def _receive(level: int, text: bytes, user_data: Any) -> None:
    message = text.decode("utf-8", "replace")
    if level == _CONTINUED:
        level = _state["last_level"]
    else:
        _state["last_level"] = level
    if level >= 3:
        _recent.append(message)
    _logger.debug("%s: %s", _LEVEL_NAMES.get(level, str(level)), message.rstrip("\n"))
    if _state["echo"]:
        sys.stderr.write(message)


def install(*, echo: bool) -> None:
    """Route llama.cpp's log through this module (once per process); `echo` also prints it, as llama.cpp's
    own `verbose=True` would."""
    import llama_cpp
    import llama_cpp._logger

    with _lock:
        _state["echo"] = echo
        if _state["installed"] is None:
            callback = llama_cpp.llama_log_callback(_receive)
            llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
            _state["installed"] = callback  # kept referenced: llama.cpp calls it for the life of the process


def recent_warnings() -> str:
    """The warnings and errors llama.cpp logged lately, as it wrote them."""
    return "".join(_recent).strip()
