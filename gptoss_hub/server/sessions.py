"""Sessions the server keeps for conversations: a pool by id, each freed after an idle time, the least recently
used going first when the pool is full.

The python tool's sandboxed sessions ("containers") and the browser's page stacks live along a
`previous_response_id` chain in such pools, so a continued conversation finds its state again while no
number of abandoned conversations can grow the server without bound.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["SessionPool"]

SessionT = TypeVar("SessionT")


class SessionPool(Generic[SessionT]):
    """Sessions by id: each freed (`close`d) after `idle_seconds` unused, and the least recently used when
    `most` are open. Ids are `prefix` and a random hex string."""

    def __init__(
        self,
        open_session: Callable[[], SessionT],
        *,
        prefix: str,
        idle_seconds: float,
        most: int,
        close: Callable[[SessionT], None] = lambda session: None,
    ):
        self.open_session, self.prefix, self.idle_seconds, self.most = open_session, prefix, idle_seconds, most
        self._close = close
        self._sessions: OrderedDict[str, tuple[SessionT, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str | None) -> tuple[str, SessionT]:
        """The session of `session_id` when it is still open, else a new one (with its new id)."""
        with self._lock:
            freed = self._take_idle()
            if session_id is not None and session_id in self._sessions:
                session, _ = self._sessions.pop(session_id)
            else:
                session_id, session = f"{self.prefix}{uuid.uuid4().hex}", self.open_session()
                while len(self._sessions) >= self.most:
                    _, (oldest, _) = self._sessions.popitem(last=False)
                    freed.append(oldest)
            self._sessions[session_id] = (session, time.monotonic())
        self._close_all(freed)
        return session_id, session

    def release(self, session_id: str | None) -> None:
        """Free the session of `session_id` now (a request that keeps no conversation is done with it)."""
        with self._lock:
            entry = self._sessions.pop(session_id, None) if session_id is not None else None
        if entry is not None:
            self._close(entry[0])

    def __len__(self) -> int:
        with self._lock:
            freed = self._take_idle()
            count = len(self._sessions)
        self._close_all(freed)
        return count

    def close_all(self) -> None:
        """Free every session (the server is shutting down)."""
        with self._lock:
            freed = [session for session, _ in self._sessions.values()]
            self._sessions.clear()
        self._close_all(freed)

    def _take_idle(self) -> list[SessionT]:
        """Remove the sessions unused for too long; the caller closes them outside the lock."""
        now, idle = time.monotonic(), []
        for session_id, (session, used) in list(self._sessions.items()):
            if now - used > self.idle_seconds:
                del self._sessions[session_id]
                idle.append(session)
        return idle

    def _close_all(self, sessions: list[SessionT]) -> None:
        for session in sessions:
            self._close(session)
