"""Request fields both APIs share, checked once into `Model.chat` options."""

from __future__ import annotations

from typing import Any

from gptoss_hub.errors import InvalidRequestError, ToolError
from gptoss_hub.server.errors import APIError
from gptoss_hub.stop_strings import stop_list
from gptoss_hub.tool_choice import ToolChoice
from gptoss_hub.tools import normalize_tools

__all__ = ["checked_choices", "checked_stop", "checked_tool_choice"]


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


def checked_stop(stop: str | list[str] | None) -> list[str] | None:
    """The `stop` strings, or a 400 naming the field (at most 4, none empty)."""
    try:
        return stop_list(stop) or None
    except InvalidRequestError as exc:
        raise APIError(400, str(exc), "invalid_request_error", None, "stop") from exc


def checked_choices(n: int | None, most: int) -> int:
    """How many choices a request asks for (`n`, default 1), or a 400 naming the field beyond `most`."""
    count = 1 if n is None else n
    if not 1 <= count <= most:
        message = f"n must be between 1 and {most}, got {count}." if most > 1 else "Only n=1 is supported here."
        raise APIError(400, message, "invalid_request_error", None, "n")
    return count
