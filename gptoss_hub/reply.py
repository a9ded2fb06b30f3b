"""What a chat returns: the parsed reply, its tool calls, token counts and timings."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Citation", "FinishReason", "Reply", "ReplyError", "Timings", "ToolCall", "Usage"]

FinishReason = Literal["stop", "tool_calls", "length", "error"]


class ToolCall(BaseModel):
    """A tool call the model asked for: a function call, or a call to a builtin tool (`kind`)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    #: The parsed arguments; `None` when `raw_arguments` is not a JSON object (see `Reply.error`), and for a
    #: python call, whose body is code.
    arguments: dict[str, Any] | None
    #: The arguments exactly as the model wrote them; for a python call, the code.
    raw_arguments: str
    #: Why `arguments` is `None`: the raw arguments are not a JSON object.
    error: str | None = None
    #: "function" (one of the tools passed as `tools`), "python" (the builtin python tool: run `code`) or
    #: "browser" (the builtin browser: `name` is "browser.search", "browser.open" or "browser.find").
    kind: Literal["function", "python", "browser"] = "function"

    @property
    def code(self) -> str | None:
        """The code of a python call, verbatim; `None` for a function call."""
        return self.raw_arguments if self.kind == "python" else None

    def result_message(self, content: str) -> dict[str, Any]:
        """The tool message that answers this call with `content`, ready to append to the conversation."""
        return {"role": "tool", "tool_call_id": self.id, "name": self.name, "content": content}

    def to_openai(self) -> dict[str, Any]:
        """The call as an OpenAI Chat Completions `tool_calls` entry."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.raw_arguments},
        }


class ReplyError(BaseModel):
    """What was wrong with the model's output, classified, with the raw completion text.

    Codes: `unexpected_token` (a token the harmony grammar does not allow there), `malformed_header`
    (a header with no `<|message|>`), `truncated` (the output stopped inside a message without hitting
    `max_tokens`), `invalid_tool_arguments` (a call's arguments are not a JSON object).
    """

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    #: Index in `Reply.token_ids` of the token where the problem was found.
    token_index: int | None = None
    #: The whole completion decoded, special tokens spelled out.
    raw_text: str = ""


class Citation(BaseModel):
    """A source the reply cites: the span of `Reply.content` that links to it (OpenAI's `url_citation`)."""

    model_config = ConfigDict(frozen=True)

    type: Literal["url_citation"] = "url_citation"
    #: The link's first character in `content`, and the one after its last.
    start_index: int
    end_index: int
    url: str
    #: The cited page's title.
    title: str


class Usage(BaseModel):
    """Token counts, as OpenAI reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Timings(BaseModel):
    """Wall-clock seconds of one generation."""

    time_to_first_token_s: float | None = None
    total_s: float = 0.0
    tokens_per_s: float | None = None

    @classmethod
    def since(cls, started: float, first_token_at: float | None, completion_tokens: int) -> Timings:
        """The timings of a generation that began at `started` (`time.perf_counter()`) and ends now."""
        total = time.perf_counter() - started
        return cls(
            time_to_first_token_s=None if first_token_at is None else first_token_at - started,
            total_s=total,
            tokens_per_s=completion_tokens / total if total > 0 and completion_tokens else None,
        )


class Reply(BaseModel):
    """One assistant turn, parsed from harmony.

    `content` is the final channel plus any commentary preamble (text the model says to the user before
    a tool call), `reasoning` the analysis channel (chain of thought, not for end users), `tool_calls` the
    commentary messages addressed to `functions.*`. `message` is an OpenAI-style
    assistant dict to append to the conversation; `harmony` holds every parsed harmony message and
    `token_ids` the raw completion ids, so nothing the model produced is lost even when parsing failed.
    """

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)
    harmony: list[dict[str, Any]] = Field(default_factory=list)
    token_ids: list[int] = Field(default_factory=list)
    #: Set when the output broke the harmony grammar (`finish_reason == "error"`), stopped mid-message,
    #: or a tool call's arguments are not a JSON object; everything parseable is still in the fields above.
    error: ReplyError | None = None
    #: From `Model.run()`: every message the loop added after the caller's messages (assistant turns and
    #: tool results, ending with this reply's `message`), ready to extend the conversation with.
    transcript: list[dict[str, Any]] = Field(default_factory=list)
    #: From `Model.run(browser=...)`: the pages the answer cites. Each `【cursor†Lx-Ly】` the model wrote is a
    #: link in `content`, and a citation here gives its span, address and title.
    citations: list[Citation] = Field(default_factory=list)
    #: The content as the model wrote it, when citations turned its markers into links (`message` replays
    #: this, so the conversation holds the model's own words).
    uncited_content: str | None = None

    def raise_for_error(self) -> Reply:
        """This reply, or `HarmonyParseError` when the model's output broke harmony (`error` is set): for
        callers who would rather stop than check `reply.error`. The error keeps this reply in `partial`
        and the raw ids in `token_ids`."""
        if self.error is None:
            return self
        from gptoss_hub.errors import HarmonyParseError

        raise HarmonyParseError(
            f"{self.error.code}: {self.error.message}", partial=self, token_ids=list(self.token_ids)
        )

    @property
    def message(self) -> dict[str, Any]:
        """The reply as an OpenAI assistant message, ready to append to `messages`."""
        content = self.content if self.uncited_content is None else self.uncited_content
        message: dict[str, Any] = {"role": "assistant", "content": content or None}
        if self.reasoning:
            message["thinking"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        return message
