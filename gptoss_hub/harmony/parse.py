"""Completion token ids in, typed events and a `Reply` out, without ever losing a reply.

Token-level parsing is `openai-harmony`'s `StreamableParser`; this module routes what it reports by
channel and recipient, and makes it tolerant of what real models emit:

- a stray `<|end|>`, `<|return|>` or `<|call|>` where a new message should start is skipped;
- a message that starts with `<|channel|>` without `<|start|>assistant` gets the missing header;
- the recipient before or after the channel, `<|constrain|>` with or without a space (harmony's own);
- commentary preambles (commentary with no recipient) are shown as content, not dropped;
- anything else that breaks the grammar is recorded as a classified `ReplyError` and parsing resumes at
  the next `<|start|>`, so every complete message before and after the damage is kept.

The raw completion ids always travel with the reply.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable
from typing import Any, Literal

from gptoss_hub.builtin_tools import PYTHON, builtin_tool_of
from gptoss_hub.encoding import FIRST_SPECIAL_ID, harmony_encoding
from gptoss_hub.events import (
    ContentDelta,
    Done,
    ReasoningDelta,
    StreamEvent,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
)
from gptoss_hub.reply import FinishReason, Reply, ReplyError, ToolCall

__all__ = ["CONVERSATION_RECIPIENTS", "FUNCTION_PREFIX", "ReplyParser", "parse", "tool_arguments"]

#: The namespace of the caller's function tools in a recipient (`to=functions.get_weather`).
FUNCTION_PREFIX = "functions."
#: Recipients that address the conversation, not a tool.
CONVERSATION_RECIPIENTS = ("assistant", "user", "all")
#: Longest message header accepted, in tokens. Real headers ("assistant to=functions.NAME<|channel|>commentary
#: <|constrain|>json") take a few dozen; a model emitting text with no `<|message|>` would otherwise keep
#: the harmony parser re-reading an ever longer header, at a cost that grows with its square.
MAX_HEADER_TOKENS = 128


@functools.lru_cache(maxsize=1)
def _special_ids() -> dict[str, int]:
    encoding = harmony_encoding()
    names = ("start", "end", "return", "call", "channel", "message")
    ids = {name: encoding.encode(f"<|{name}|>", allowed_special="all")[0] for name in names}
    return ids


@functools.lru_cache(maxsize=1)
def _assistant_ids() -> tuple[int, ...]:
    return tuple(harmony_encoding().encode("assistant"))


def _new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _tool_name(recipient: str) -> str:
    if builtin_tool_of(recipient) == "python":
        return PYTHON
    # A browser call keeps its full name ("browser.search"): it is also the author of the result.
    return recipient[len(FUNCTION_PREFIX) :] if recipient.startswith(FUNCTION_PREFIX) else recipient


def _is_tool_call(recipient: str | None) -> bool:
    # Replies to the user are addressed to nobody or to "assistant"/"user"; anything else is a tool,
    # unless special tokens leaked into the header, which no tool name contains.
    if not recipient:
        return False
    return recipient not in CONVERSATION_RECIPIENTS and "<|" not in recipient


class ReplyParser:
    """Incremental parser for one assistant turn.

    Feed completion ids with `feed()` (it returns the events each id produced), then call `finish()`.
    """

    def __init__(self) -> None:
        from openai_harmony import Role

        self._encoding = harmony_encoding()
        self._parser = self._new_parser(Role.ASSISTANT)
        self._ids = _special_ids()
        self.token_ids: list[int] = []
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: list[ToolCall] = []
        self._open_call: tuple[str, str] | None = None  # (id, name) of the call being streamed
        self._open_call_args: list[str] = []
        self._messages: list[Any] = []  # complete harmony messages from parsers retired after errors
        self._resyncing = False
        # `StreamableParser.state` serializes the whole parser (current message included) on every read,
        # so reading it per token makes parsing quadratic. Only special tokens change the state or the
        # channel, so both are cached and refreshed after those.
        self._state = self._parser.state.name
        self._channel: str | None = None
        self._header_tokens = 0  # header tokens since the last special token
        #: Index in `token_ids` where the message being read began: its `<|start|>`, or 0 for the first
        #: message, whose `<|start|>assistant` ends the prompt.
        self.message_start = 0
        self.error: ReplyError | None = None

    # -- errors -------------------------------------------------------------------------------------

    def _new_parser(self, role: Any) -> Any:
        """An openai-harmony streaming parser for this encoding; `role` `None` expects a `<|start|>` first."""
        from openai_harmony import StreamableParser

        return StreamableParser(self._encoding, role)

    def _record(self, code: str, message: str) -> None:
        if self.error is None:  # the first problem is the one worth reporting; later ones follow from it
            self.error = ReplyError(code=code, message=message, token_index=len(self.token_ids) - 1)

    def _fail(self, code: str, message: str, events: list[StreamEvent]) -> None:
        """Record a grammar error, keep what was parsed, and skip ahead to the next `<|start|>`."""
        self._record(code, message)
        self._retire_parser(events)
        self._resyncing = True

    def _retire_parser(self, events: list[StreamEvent]) -> None:
        if self._open_call is not None:
            events.append(ToolCallDone(self._finish_call()))
        self._messages.extend(self._parser.messages)

    # -- feeding ------------------------------------------------------------------------------------

    def feed(self, token_id: int) -> list[StreamEvent]:
        """Parse one completion id and return the events it produced (often none)."""
        self.token_ids.append(token_id)
        events: list[StreamEvent] = []
        ids = self._ids
        if token_id == ids["start"]:
            self.message_start = len(self.token_ids) - 1
        if self._resyncing:
            if token_id != ids["start"]:
                return events
            self._restart()
        elif token_id == ids["start"] and len(self.token_ids) == 1:
            # The completion repeats the "<|start|>assistant" the prompt already ends with: parse it as a header.
            self._restart()
        state = self._state
        if state == "EXPECT_START" and token_id != ids["start"]:
            if token_id in (ids["end"], ids["return"], ids["call"]):
                return events  # a stray terminator between messages changes nothing: skip it
            if token_id != ids["channel"]:
                self._fail("unexpected_token", self._describe(token_id, "a new message (<|start|>)"), events)
                return events
            # "<|channel|>" with no "<|start|>assistant" before it: supply the missing role header.
            self.message_start = len(self.token_ids) - 1
            for synthetic in (ids["start"], *_assistant_ids()):
                self._parser.process(synthetic)
            self._state = self._parser.state.name
        elif state == "HEADER":
            if token_id in (ids["end"], ids["return"], ids["call"]):
                self._fail("malformed_header", "a message header ended without <|message|>", events)
                return events
            self._header_tokens += 1
            if self._header_tokens > MAX_HEADER_TOKENS:
                self._fail(
                    "malformed_header",
                    f"a message header ran past {MAX_HEADER_TOKENS} tokens without <|message|>",
                    events,
                )
                return events
        try:
            self._parser.process(token_id)
        except Exception as exc:  # openai-harmony raises HarmonyError (a plain Exception subclass)
            self._fail("unexpected_token", f"{self._describe(token_id, 'valid harmony')}: {exc}", events)
            return events
        if token_id >= FIRST_SPECIAL_ID:  # only harmony's special tokens change the parser's state
            self._state, self._channel = self._parser.state.name, self._parser.current_channel
            self._header_tokens = 0
            if state == "CONTENT" and self._state != "CONTENT" and self._open_call is not None:
                # The message holding the call's arguments is complete. Told by the state change rather
                # than by reading `StreamableParser.messages`, which deserializes every message each time.
                events.append(ToolCallDone(self._finish_call()))
            self._open_tool_call(events)
        self._route_delta(events)
        return events

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls completed so far."""
        return list(self._calls)

    def record_error(self, code: str, message: str) -> None:
        """Record a problem found outside the grammar (the first one recorded is the reply's `error`)."""
        self._record(code, message)

    def message_header(self) -> tuple[str | None, str | None] | None:
        """`(channel, recipient)` of the message being read once its header is complete, else `None`."""
        if self._resyncing or self._state != "CONTENT":
            return None
        return self._channel, self._parser.current_recipient

    def _restart(self) -> None:
        """A fresh harmony parser that expects `<|start|>` (after damage, or a repeated role header).

        The old parser holds no unrecorded message: it was retired by `_fail`, or it has seen one token.
        """
        self._parser = self._new_parser(None)
        self._resyncing = False
        self._state, self._channel = self._parser.state.name, None
        self._header_tokens = 0

    def _describe(self, token_id: int, expected: str) -> str:
        return f"completion token {len(self.token_ids) - 1} ({self._encoding.decode([token_id])!r}) where {expected} was expected"

    def _open_tool_call(self, events: list[StreamEvent]) -> None:
        recipient = self._parser.current_recipient
        if self._state == "CONTENT" and _is_tool_call(recipient) and self._open_call is None:
            self._open_call = (_new_call_id(), _tool_name(recipient))
            self._open_call_args = []
            events.append(ToolCallStarted(*self._open_call))

    def _route_delta(self, events: list[StreamEvent]) -> None:
        delta = self._parser.last_content_delta
        if not delta:
            return
        if self._open_call is not None:
            self._open_call_args.append(delta)
            events.append(ToolCallArgumentsDelta(self._open_call[0], delta))
        elif self._channel == "analysis":
            self._reasoning.append(delta)
            events.append(ReasoningDelta(delta))
        else:  # final, commentary preambles, or a model that left the channel out
            self._content.append(delta)
            events.append(ContentDelta(delta))

    def _finish_call(self) -> ToolCall:
        assert self._open_call is not None
        call_id, name = self._open_call
        raw = "".join(self._open_call_args)
        if name == PYTHON:
            # The body of a python call is code, kept verbatim: there are no JSON arguments to get wrong.
            call = ToolCall(id=call_id, name=name, arguments=None, raw_arguments=raw, kind="python")
            self._calls.append(call)
            self._open_call, self._open_call_args = None, []
            return call
        arguments, error = tool_arguments(raw)
        if error:
            self._record("invalid_tool_arguments", f"tool call {name!r}: {error}: {raw!r}")
        kind: Literal["function", "browser"] = "browser" if builtin_tool_of(name) == "browser" else "function"
        call = ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw, error=error, kind=kind)
        self._calls.append(call)
        self._open_call, self._open_call_args = None, []
        return call

    # -- finishing ----------------------------------------------------------------------------------

    def finish(self, finish_reason: FinishReason | None = None) -> list[StreamEvent]:
        """End the turn and return the last events, ending with `Done(reply)`.

        `finish_reason` is what the engine reported ("stop" or "length"); when omitted it is "stop" if the
        last id is `<|return|>` or `<|call|>`, else "length". It becomes "tool_calls" when the turn ended
        in a call, and "error" when the output broke the harmony grammar.
        """
        events: list[StreamEvent] = []
        if finish_reason is None:
            last = self.token_ids[-1] if self.token_ids else None
            finish_reason = "stop" if last in (self._ids["return"], self._ids["call"]) else "length"
        if not self._resyncing:
            state = self._state
            if state == "HEADER" and finish_reason != "length" and len(self._parser.tokens) > 0:
                self._record("truncated", "the output ended inside a message header")
            elif state == "CONTENT":
                if finish_reason != "length":
                    self._record("truncated", "the output ended inside a message, without <|end|> or a stop token")
                try:
                    self._parser.process_eos()  # closes the partial message so it is kept
                except Exception as exc:
                    self._record("truncated", f"the output ended mid-message: {exc}")
            self._retire_parser(events)
        if self.error is not None and self.error.code not in ("invalid_tool_arguments", "truncated"):
            finish_reason = "error"
        elif finish_reason == "stop" and self._calls:
            finish_reason = "tool_calls"
        error = self.error
        if error is not None:
            error = error.model_copy(update={"raw_text": self._encoding.decode(self.token_ids)})
        reply = Reply(
            content="".join(self._content),
            reasoning="".join(self._reasoning),
            tool_calls=list(self._calls),
            finish_reason=finish_reason,
            harmony=[json.loads(m.to_json()) for m in self._messages],
            token_ids=list(self.token_ids),
            error=error,
        )
        events.append(Done(reply))
        return events


def tool_arguments(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """A tool call's arguments text as a dict, or `None` and why not (empty text is `{}`)."""
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(parsed, dict):
        return None, f"arguments must be a JSON object, got {type(parsed).__name__}"
    return parsed, None


def parse(token_ids: Iterable[int], finish_reason: FinishReason | None = None) -> Reply:
    """Parse a whole completion (the ids generated after the prompt) into a `Reply`."""
    parser = ReplyParser()
    for token_id in token_ids:
        parser.feed(token_id)
    done = parser.finish(finish_reason)[-1]
    assert isinstance(done, Done)
    return done.reply
