"""Steering a turn into the tool call a `tool_choice` forces (the method is described in `gptoss_hub.tool_choice`).

`CallSteering` watches each message header the model writes. When one is complete that the choice does not
allow, the turn stops that generation and asks `continuation()` for what comes next: the refused message is
dropped, the wanted call's header is written for the model, and a follow-up request continues from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gptoss_hub.engine import GenerationRequest
from gptoss_hub.events import StreamEvent
from gptoss_hub.harmony import ReplyParser
from gptoss_hub.tool_choice import ToolChoice, stop_after_call_ids

__all__ = ["CallSteering", "Continuation"]


@dataclass
class Continuation:
    """What a steered turn goes on with: a parser rebuilt without the refused message, the events of the
    header written for the model, and the request that continues after it (`None`: the turn ends here, with
    `finish_reason`)."""

    parser: ReplyParser
    events: list[StreamEvent] = field(default_factory=list)
    request: GenerationRequest | None = None
    finish_reason: str = "stop"


class CallSteering:
    """The steering of one turn under `choice`; steers at most once (a model that refuses the call again,
    with its header written for it, ends the turn with a `tool_choice_unmet` error)."""

    def __init__(self, choice: ToolChoice, call_schema: dict[str, Any] | None, max_context: int | None):
        self.choice = choice
        #: The forced tool's parameters schema, on engines that constrain output to a JSON schema.
        self.call_schema = call_schema
        self.max_context = max_context
        self.steered = False

    @property
    def active(self) -> bool:
        """Whether headers need watching at all (only under a choice that forces a call)."""
        return self.choice.forces_a_call

    def refuses(self, parser: ReplyParser) -> bool:
        """Whether the message `parser` has just read the header of is one the choice does not allow."""
        header = parser.message_header()
        return header is not None and not self.choice.accepts(*header)

    def continuation(self, parser: ReplyParser, request: GenerationRequest) -> Continuation:
        """Drop the refused message from `parser`'s reply and write the wanted call's header after what is kept.

        `request` is the generation that was stopped. The turn ends instead (no follow-up request) when the
        wanted call is already complete, when the model was steered once already, or when there is no room
        left for the header and one token of arguments.
        """
        kept = parser.token_ids[: parser.message_start]
        rebuilt = ReplyParser()
        for token_id in kept:
            rebuilt.feed(token_id)  # already streamed: replayed to rebuild the parser only
        if rebuilt.tool_calls:
            # The wanted call is complete (the model ended it with <|end|>); what it began after is dropped.
            return Continuation(rebuilt)
        if self.steered:
            rebuilt.record_error(
                "tool_choice_unmet",
                f"the model did not make {self.choice.wanted}, as tool_choice asked, even with the call's header "
                "written for it",
            )
            return Continuation(rebuilt)
        self.steered = True
        header = self.choice.header_ids(new_message=bool(kept))
        budget = request.max_tokens
        prompt_length = len(request.prompt_ids) + len(kept) + len(header)
        if (budget is not None and budget - len(kept) - len(header) < 1) or (
            self.max_context is not None and prompt_length >= self.max_context
        ):
            # No room for the call's header and one token of arguments: the turn ends where it was cut.
            return Continuation(rebuilt, finish_reason="length")
        events = [event for token_id in header for event in rebuilt.feed(token_id)]
        follow_up = request.model_copy(
            update={
                "prompt_ids": [*request.prompt_ids, *kept, *header],
                "max_tokens": None if budget is None else budget - len(kept) - len(header),
                # The arguments follow the tool's schema where the engine can enforce one (a response_format
                # shapes the final answer, never a tool's arguments).
                "json_schema": self.call_schema,
                # The steered message is the call: whichever terminator the model writes, the turn ends there.
                "stop_token_ids": [*request.stop_token_ids, *stop_after_call_ids()],
            }
        )
        return Continuation(rebuilt, events, follow_up)
