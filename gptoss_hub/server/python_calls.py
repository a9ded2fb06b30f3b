"""The python tool on the server: the model's python calls run server-side, turn after turn, in one response.

A request that offers the tool (`{"type": "code_interpreter"}`, in either API) gets `turns_with_python`: the
model's events, and whenever a turn ends in python calls, those calls run in the conversation's sandboxed
session and the model goes on with their results, until a turn ends without one (or `MAX_ROUNDS` is reached).
Sessions ("containers", as OpenAI's API calls them) live along a `previous_response_id` chain and are freed
after an idle time, or when there are too many.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from gptoss_hub.events import Done, StreamEvent
from gptoss_hub.reply import Reply, ToolCall, Usage
from gptoss_hub.tools.python import PythonResult, PythonSession

__all__ = ["MAX_ROUNDS", "PythonContainers", "PythonRan", "PythonRunning", "TurnEnded", "turns_with_python"]

#: Model turns one response may take while the model keeps calling python.
MAX_ROUNDS = 8
#: Seconds a session may sit unused before it is freed.
IDLE_SECONDS = 20 * 60
#: Sessions kept at once; opening one more frees the least recently used.
MOST_SESSIONS = 32


@dataclass(frozen=True)
class TurnEnded:
    """A turn ended in python calls, which run next; the response goes on after them."""

    reply: Reply


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


ServerEvent = StreamEvent | TurnEnded | PythonRunning | PythonRan


class PythonContainers:
    """The server's python sessions by container id: each freed after `idle_seconds` unused, and the least
    recently used when `most` are open."""

    def __init__(
        self,
        *,
        idle_seconds: float = IDLE_SECONDS,
        most: int = MOST_SESSIONS,
        open_session: Callable[[], PythonSession] = PythonSession,
    ):
        self.idle_seconds, self.most, self.open_session = idle_seconds, most, open_session
        self._sessions: OrderedDict[str, tuple[PythonSession, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, container_id: str | None) -> tuple[str, PythonSession]:
        """The session of `container_id` when it is still open, else a new one (with its new id)."""
        with self._lock:
            self._free_idle()
            if container_id is not None and container_id in self._sessions:
                session, _ = self._sessions.pop(container_id)
            else:
                container_id, session = f"cntr_{uuid.uuid4().hex}", self.open_session()
                while len(self._sessions) >= self.most:
                    _, (oldest, _) = self._sessions.popitem(last=False)
                    oldest.close()
            self._sessions[container_id] = (session, time.monotonic())
            return container_id, session

    def release(self, container_id: str | None) -> None:
        """Free the session of `container_id` now (a request that keeps no conversation is done with it)."""
        with self._lock:
            entry = self._sessions.pop(container_id, None) if container_id is not None else None
        if entry is not None:
            entry[0].close()

    def _free_idle(self) -> None:
        now = time.monotonic()
        for container_id, (session, used) in list(self._sessions.items()):
            if now - used > self.idle_seconds:
                del self._sessions[container_id]
                session.close()

    def __len__(self) -> int:
        with self._lock:
            self._free_idle()
            return len(self._sessions)

    def close_all(self) -> None:
        """Free every session (the server is shutting down)."""
        with self._lock:
            for session, _ in self._sessions.values():
                session.close()
            self._sessions.clear()


async def turns_with_python(
    model: Any,
    messages: list[dict[str, Any]],
    options: dict[str, Any],
    containers: PythonContainers,
    container_id: str | None,
) -> AsyncIterator[ServerEvent]:
    """The model's events over as many turns as its python calls take; `Done` last, whose reply is the last
    turn's with the usage of every turn added up (tool outputs count as the prompt tokens they become) and
    `transcript` holding every message the response added."""
    conversation = list(messages)
    added: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = 0
    for _ in range(MAX_ROUNDS):
        reply: Reply | None = None
        async for event in model.astream(conversation, **options):
            if isinstance(event, Done):
                reply = event.reply
            else:
                yield event
        assert reply is not None, "a model's events end with Done"
        prompt_tokens += reply.usage.prompt_tokens
        completion_tokens += reply.usage.completion_tokens
        added.append(reply.message)
        calls = [call for call in reply.tool_calls if call.kind == "python"]
        if not calls or len(calls) != len(reply.tool_calls):  # function calls go back to the client as they are
            break
        yield TurnEnded(reply)
        conversation.append(reply.message)
        for call in calls:
            container_id, session = containers.get(container_id)
            yield PythonRunning(call, container_id)
            result = await asyncio.to_thread(session.run, call.code or "")
            yield PythonRan(call, result, container_id)
            tool_message = call.result_message(result.text)
            conversation.append(tool_message)
            added.append(tool_message)
    assert reply is not None  # MAX_ROUNDS is at least 1
    usage = Usage(
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens
    )
    yield Done(reply.model_copy(update={"usage": usage, "transcript": added}))
