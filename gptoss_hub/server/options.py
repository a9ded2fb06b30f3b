"""Request fields both APIs share, checked once into `Model.chat` options."""

from __future__ import annotations

from typing import Any

from gptoss_hub.errors import InvalidRequestError, ToolError
from gptoss_hub.server.errors import APIError
from gptoss_hub.tool_choice import ToolChoice
from gptoss_hub.tools import normalize_tools

__all__ = ["checked_tool_choice", "refuse_several_outputs_and_stops"]


def checked_tool_choice(value: Any, tools: list[Any] | None) -> Any:
    """`value` unchanged when it is a valid `tool_choice` for `tools`, else a 400 naming the field."""
    try:
        specs = normalize_tools(tools or ())
    except ToolError as exc:  # checked here first, so a bad tool is a 400 on "tools", not an error later
        raise APIError(400, str(exc), "invalid_request_error", None, "tools") from exc
    try:
        ToolChoice.parse(value, [spec.name for spec in specs])
    except InvalidRequestError as exc:
        raise APIError(400, str(exc), "invalid_request_error", None, "tool_choice") from exc
    return value


def refuse_several_outputs_and_stops(n: int | None, stop: str | list[str] | None) -> None:
    """A 400 naming the field for `n` other than 1 and for `stop` sequences, which neither API serves."""
    if n not in (None, 1):
        raise APIError(400, "Only n=1 is supported; send several requests instead.", "invalid_request_error", None, "n")
    if stop:
        raise APIError(
            400,
            "`stop` sequences are not supported: gpt-oss replies end at harmony's own stop tokens.",
            "invalid_request_error",
            None,
            "stop",
        )
