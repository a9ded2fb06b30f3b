"""Completion token ids in, typed events and a `Reply` out.

Token-level parsing is `openai-harmony`'s `StreamableParser`; this module routes what it reports by
channel and recipient. A parse failure never raises out of a chat: the reply keeps everything parsed
before the failure, the raw ids, `finish_reason="error"` and the parser's message in `Reply.error`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.events import (
    CommentaryDelta,
    ContentDelta,
    Done,
    ReasoningDelta,
    StreamEvent,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
)
from gptoss_hub.reply import FinishReason, Reply, ToolCall

__all__ = ["ReplyParser", "parse"]

_FUNCTION_PREFIX = "functions."


def _new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _tool_name(recipient: str) -> str:
    return recipient[len(_FUNCTION_PREFIX) :] if recipient.startswith(_FUNCTION_PREFIX) else recipient


def _is_tool_call(channel: str | None, recipient: str | None) -> bool:
    # Replies to the user are addressed to nobody or to "assistant"/"user"; anything else is a tool.
    return bool(recipient) and recipient not in ("assistant", "user", "all")


class ReplyParser:
    """Incremental parser for one assistant turn.

    Feed completion ids with `feed()` (it returns the events each id produced), then call `finish()`.
    """

    def __init__(self) -> None:
        from openai_harmony import Role, StreamableParser

        self._encoding = harmony_encoding()
        self._parser = StreamableParser(self._encoding, Role.ASSISTANT)
        self._stop_ids = set(self._encoding.stop_tokens_for_assistant_actions())
        self.token_ids: list[int] = []
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._commentary: list[str] = []
        self._calls: list[ToolCall] = []
        self._open_call: tuple[str, str] | None = None  # (id, name) of the call being streamed
        self._open_call_args: list[str] = []
        self._messages_seen = 0
        self.error: str | None = None
        self._harmony_failed = False

    def feed(self, token_id: int) -> list[StreamEvent]:
        """Parse one completion id and return the events it produced (often none)."""
        self.token_ids.append(token_id)
        if self.error is not None:
            return []  # after a failure ids are only kept, never interpreted
        try:
            self._parser.process(token_id)
        except Exception as exc:  # openai-harmony raises HarmonyError (a plain Exception subclass)
            self._harmony_failed = True
            self.error = f"invalid harmony at completion token {len(self.token_ids) - 1} (id {token_id}): {exc}"
            return []
        events: list[StreamEvent] = []
        self._close_finished_messages(events)
        channel, recipient = self._parser.current_channel, self._parser.current_recipient
        in_content = self._parser.state.name == "CONTENT"
        if in_content and _is_tool_call(channel, recipient) and self._open_call is None:
            self._open_call = (_new_call_id(), _tool_name(recipient))
            self._open_call_args = []
            events.append(ToolCallStarted(*self._open_call))
        delta = self._parser.last_content_delta
        if delta:
            if self._open_call is not None:
                self._open_call_args.append(delta)
                events.append(ToolCallArgumentsDelta(self._open_call[0], delta))
            elif channel == "analysis":
                self._reasoning.append(delta)
                events.append(ReasoningDelta(delta))
            elif channel == "commentary":
                self._commentary.append(delta)
                events.append(CommentaryDelta(delta))
            else:  # final, or a model that left the channel out
                self._content.append(delta)
                events.append(ContentDelta(delta))
        return events

    def _close_finished_messages(self, events: list[StreamEvent]) -> None:
        messages = self._parser.messages
        while self._messages_seen < len(messages):
            self._messages_seen += 1
            if self._open_call is not None:
                events.append(ToolCallDone(self._finish_call()))

    def _finish_call(self) -> ToolCall:
        assert self._open_call is not None
        call_id, name = self._open_call
        raw = "".join(self._open_call_args)
        arguments: dict[str, Any] | None
        try:
            parsed = json.loads(raw) if raw.strip() else {}
            arguments = parsed if isinstance(parsed, dict) else None
        except json.JSONDecodeError:
            arguments = None
        if arguments is None and self.error is None:
            self.error = f"tool call {name!r} has arguments that are not a JSON object: {raw!r}"
        call = ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw)
        self._calls.append(call)
        self._open_call, self._open_call_args = None, []
        return call

    def finish(self, finish_reason: FinishReason | None = None) -> list[StreamEvent]:
        """End the turn and return the last events, ending with `Done(reply)`.

        `finish_reason` is what the engine reported ("stop" or "length"); it becomes "tool_calls" when the
        turn ended in a call and "error" when parsing failed.
        """
        events: list[StreamEvent] = []
        if self._open_call is not None:
            # Cut off mid-call (max_tokens): keep what was written, unparsed if need be.
            events.append(ToolCallDone(self._finish_call()))
        if finish_reason is None:
            ended_on_stop = bool(self.token_ids) and self.token_ids[-1] in self._stop_ids
            finish_reason = "stop" if ended_on_stop else "length"
        if self._harmony_failed:
            finish_reason = "error"
        elif finish_reason == "stop" and self._calls:
            finish_reason = "tool_calls"
        reply = Reply(
            content="".join(self._content),
            reasoning="".join(self._reasoning),
            commentary="".join(self._commentary),
            tool_calls=list(self._calls),
            finish_reason=finish_reason,
            harmony=[json.loads(m.to_json()) for m in self._parser.messages],
            token_ids=list(self.token_ids),
            error=self.error,
        )
        events.append(Done(reply))
        return events

    @property
    def reply(self) -> Reply:
        """Shortcut for `finish()`'s reply (call once)."""
        done = self.finish()[-1]
        assert isinstance(done, Done)
        return done.reply


def parse(token_ids: Iterable[int], finish_reason: FinishReason | None = None) -> Reply:
    """Parse a whole completion (the ids generated after the prompt) into a `Reply`."""
    parser = ReplyParser()
    for token_id in token_ids:
        parser.feed(token_id)
    done = parser.finish(finish_reason)[-1]
    assert isinstance(done, Done)
    return done.reply
