"""The builtin tools gpt-oss was trained with, as harmony addresses them.

A call to the python tool is an assistant message to `python` on the analysis channel whose body is the
code itself (content type `code`), not JSON; its result comes back from the author `python`, addressed to
`assistant`, on the call's channel. Models also write `to=functions.python`, which the reference
implementation takes for the same tool, and so does the hub: a function tool may not be named `python`.

The browser is a namespace of three functions, `browser.search`, `browser.open` and `browser.find`. A call
is addressed to one of them on the analysis channel with JSON arguments (content type `code`, as the model
writes it); its result comes back from the author of the same name, addressed to `assistant`.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "BROWSER",
    "BROWSER_FUNCTIONS",
    "BUILTIN_CHANNEL",
    "BUILTIN_CONTENT_TYPE",
    "PYTHON",
    "PYTHON_CHANNEL",
    "PYTHON_RECIPIENTS",
    "RESERVED_FUNCTION_NAMES",
    "BuiltinKind",
    "builtin_tool_of",
]

#: The python tool's name: the recipient of its calls and the author of its results.
PYTHON = "python"
#: The browser tool's namespace.
BROWSER = "browser"
#: The browser's functions: each is the recipient of its calls and the author of their results.
BROWSER_FUNCTIONS = ("browser.search", "browser.open", "browser.find")
#: The channel builtin tool calls are made on, and their results come back on.
BUILTIN_CHANNEL = "analysis"
#: The python tool's channel (the builtin tools share one).
PYTHON_CHANNEL = BUILTIN_CHANNEL
#: The content type of a builtin call's header, as gpt-oss writes it (` code`, for python's code and the
#: browser's JSON alike).
BUILTIN_CONTENT_TYPE = "code"
#: Recipients that address the python tool.
PYTHON_RECIPIENTS = frozenset({PYTHON, "functions." + PYTHON})
#: Names a function tool may not take, because a call to it would read as a builtin tool's.
RESERVED_FUNCTION_NAMES = frozenset({PYTHON, *BROWSER_FUNCTIONS})

#: What a tool call calls: a function tool, or one of the builtin tools.
BuiltinKind = Literal["python", "browser"]


def builtin_tool_of(recipient: str | None) -> BuiltinKind | None:
    """The builtin tool a message to `recipient` calls ("python" or "browser"), or `None` for a function
    or no tool."""
    if recipient in PYTHON_RECIPIENTS:
        return "python"
    if recipient in BROWSER_FUNCTIONS:
        return "browser"
    return None
