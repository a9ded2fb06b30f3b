"""`tool_choice`: letting the model decide, keeping it from tools, or making it call one.

Harmony has no switch that forces a tool call: in each message header the model decides whether it
writes to the user (`<|channel|>final`) or to a tool (`to=functions.NAME`). To force a call the hub
steers the generation at that point, the way one would by hand:

1. generate as usual; reasoning (`analysis`) and commentary preambles are welcome;
2. as soon as a message header is complete that does not satisfy the choice (a final answer, or a call to
   another tool), stop that generation and drop the message;
3. continue from the last complete message with the header of the wanted call written for the model
   (`<|start|>assistant to=functions.NAME<|channel|>commentary <|constrain|>json<|message|>`, the form
   gpt-oss itself writes), so the model only writes the arguments.

A reply that already calls the right tool is never touched, and the reasoning before the steered call is
kept. The header written for the model is part of the reply's `token_ids` and counts as completion.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.harmony.parse import CONVERSATION_RECIPIENTS, FUNCTION_PREFIX

__all__ = ["ToolChoice", "stop_after_call_ids"]

_SHAPES = (
    "tool_choice must be 'auto', 'none', 'required', or a function: {'type': 'function', 'function': "
    "{'name': NAME}} (Chat Completions) or {'type': 'function', 'name': NAME} (Responses)"
)


@functools.lru_cache(maxsize=256)
def _encode(text: str) -> tuple[int, ...]:
    return tuple(harmony_encoding().encode(text, allowed_special="all"))


@dataclass(frozen=True)
class ToolChoice:
    """A validated `tool_choice`: `mode` is "auto", "none", "required" or "function" (then `name` is set)."""

    mode: Literal["auto", "none", "required", "function"] = "auto"
    name: str | None = None
    #: For "required": the names of the tools offered, one of which must be called.
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: Any, tool_names: Sequence[str]) -> ToolChoice:
        """Validate `value` against the names of the tools offered; raises `InvalidRequestError`."""
        if value is None or value == "auto":
            return cls()
        if value == "none":
            return cls("none")
        if value == "required":
            if not tool_names:
                raise InvalidRequestError("tool_choice='required' needs tools; pass tools=[...] or drop tool_choice.")
            # With one tool, "a tool" is that tool: steer to it by name, which leaves the model less to get wrong.
            return cls("function", tool_names[0]) if len(tool_names) == 1 else cls("required", names=tuple(tool_names))
        name = _function_name(value)
        if name is None:
            raise InvalidRequestError(f"{_SHAPES}; got {value!r}.")
        if name not in tool_names:
            offered = ", ".join(tool_names) or "none"
            raise InvalidRequestError(
                f"tool_choice names the function {name!r}, which is not among the tools offered ({offered})."
            )
        return cls("function", name)

    @property
    def forces_a_call(self) -> bool:
        """Whether the reply must end in a tool call."""
        return self.mode in ("required", "function")

    def accepts(self, channel: str | None, recipient: str | None) -> bool:
        """Whether a message with this header may stand in a reply under this choice.

        Reasoning and preambles (no recipient, not `final`) may come before the call; a final answer or a
        call to a tool the choice does not allow may not.
        """
        if not self.forces_a_call:
            return True
        if recipient and recipient not in CONVERSATION_RECIPIENTS:
            allowed = (self.name,) if self.mode == "function" else self.names
            return recipient in {FUNCTION_PREFIX + str(name) for name in allowed}
        return channel in ("analysis", "commentary")

    @property
    def wanted(self) -> str:
        """The call this choice asks for, in words."""
        if self.mode == "function":
            return f"a call to {self.name}"
        return f"a call to one of {', '.join(self.names)}" if self.forces_a_call else "no particular call"

    def header_ids(self, *, new_message: bool) -> list[int]:
        """The ids written for the model to start the call: after `<|start|>assistant` when `new_message`
        is false (the prompt already ends with it), else including it.

        For "required" with several tools the header stops after `to=functions`, so the model names the
        tool itself (`.get`, `_weather`, … as it was trained to spell it).
        """
        start = _encode("<|start|>assistant") if new_message else ()
        if self.mode == "function":
            rest = _encode(f" to={FUNCTION_PREFIX}{self.name}<|channel|>commentary <|constrain|>json<|message|>")
        else:
            rest = _encode(f" to={FUNCTION_PREFIX.rstrip('.')}")
        return [*start, *rest]


def _function_name(value: Any) -> str | None:
    if not isinstance(value, dict) or value.get("type") != "function":
        return None
    function = value.get("function")
    name = function.get("name") if isinstance(function, dict) else value.get("name")
    return name if isinstance(name, str) and name else None


def stop_after_call_ids() -> list[int]:
    """Ids that end a steered call besides the turn's own stop ids: `<|end|>`, which a model may write
    after arguments instead of `<|call|>` (the call is then complete; what follows it is not wanted)."""
    return list(_encode("<|end|>"))
