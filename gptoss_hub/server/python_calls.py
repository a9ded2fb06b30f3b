"""The python tool on the server: the model's python calls run server-side in sandboxed sessions.

A request that offers the tool (`{"type": "code_interpreter"}`, in either API) has its python calls run in
the conversation's session (`builtin_turns` drives the turns). Sessions ("containers", as OpenAI's API calls
them) live along a `previous_response_id` chain and are freed after an idle time, or when there are too many.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gptoss_hub.reply import ToolCall
from gptoss_hub.server.sessions import SessionPool
from gptoss_hub.tools.python import PythonResult, PythonSession

__all__ = ["IDLE_SECONDS", "MOST_SESSIONS", "PythonContainers", "PythonRan", "PythonRunning"]

#: Seconds a session may sit unused before it is freed.
IDLE_SECONDS = 20 * 60
#: Sessions kept at once; opening one more frees the least recently used.
MOST_SESSIONS = 32


@dataclass(frozen=True)
class PythonRunning:
    """Python call `call` is about to run."""

    call: ToolCall
    container_id: str


@dataclass(frozen=True)
class PythonRan:
    """Python call `call` ran in container `container_id`, with `result`."""

    call: ToolCall
    result: PythonResult
    container_id: str


class PythonContainers(SessionPool[PythonSession]):
    """The server's python sessions by container id: each freed after `idle_seconds` unused, and the least
    recently used when `most` are open."""

    def __init__(
        self,
        *,
        idle_seconds: float = IDLE_SECONDS,
        most: int = MOST_SESSIONS,
        open_session: Callable[[], PythonSession] = PythonSession,
    ):
        super().__init__(open_session, prefix="cntr_", idle_seconds=idle_seconds, most=most, close=PythonSession.close)
