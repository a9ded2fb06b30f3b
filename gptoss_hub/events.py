"""Typed events of `Model.stream()`.

Concatenating the `text` of every `ReasoningDelta` gives `Reply.reasoning`, of every `ContentDelta`
gives `Reply.content`; each tool call arrives as `ToolCallStarted`, argument deltas, `ToolCallDone`;
the last event is always `Done`, carrying the same `Reply` that `Model.chat()` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gptoss_hub.reply import Reply, ToolCall

__all__ = [
    "ContentDelta",
    "Done",
    "ReasoningDelta",
    "StreamEvent",
    "ToolCallArgumentsDelta",
    "ToolCallDone",
    "ToolCallStarted",
]


@dataclass(frozen=True)
class ReasoningDelta:
    """More text on the analysis channel."""

    text: str
    type: Literal["reasoning.delta"] = "reasoning.delta"


@dataclass(frozen=True)
class ContentDelta:
    """More text for the user: the final channel, or a commentary preamble."""

    text: str
    type: Literal["content.delta"] = "content.delta"


@dataclass(frozen=True)
class ToolCallStarted:
    """The model began a call to function `name`."""

    id: str
    name: str
    type: Literal["tool_call.started"] = "tool_call.started"


@dataclass(frozen=True)
class ToolCallArgumentsDelta:
    """More of the arguments JSON of call `id`."""

    id: str
    text: str
    type: Literal["tool_call.arguments.delta"] = "tool_call.arguments.delta"


@dataclass(frozen=True)
class ToolCallDone:
    """Call `tool_call.id` is complete."""

    tool_call: ToolCall
    type: Literal["tool_call.done"] = "tool_call.done"


@dataclass(frozen=True)
class Done:
    """The turn ended; `reply` is the full parsed reply."""

    reply: Reply
    type: Literal["done"] = "done"


StreamEvent = ReasoningDelta | ContentDelta | ToolCallStarted | ToolCallArgumentsDelta | ToolCallDone | Done
