"""The builtin tools gpt-oss was trained with, as harmony addresses them.

A call to the python tool is an assistant message to `python` on the analysis channel whose body is the
code itself (content type `code`), not JSON; its result comes back from the author `python`, addressed to
`assistant`, on the call's channel. Models also write `to=functions.python`, which the reference
implementation takes for the same tool, and so does the hub: a function tool may not be named `python`.
"""

from __future__ import annotations

__all__ = ["PYTHON", "PYTHON_CHANNEL", "PYTHON_RECIPIENTS", "RESERVED_FUNCTION_NAMES", "builtin_tool_of"]

#: The python tool's name: the recipient of its calls and the author of its results.
PYTHON = "python"
#: The channel python calls are made on, and their results come back on.
PYTHON_CHANNEL = "analysis"
#: Recipients that address the python tool.
PYTHON_RECIPIENTS = frozenset({PYTHON, "functions." + PYTHON})
#: Names a function tool may not take, because a call to it would read as a builtin tool's.
RESERVED_FUNCTION_NAMES = frozenset({PYTHON})


def builtin_tool_of(recipient: str | None) -> str | None:
    """The builtin tool a message to `recipient` calls ("python"), or `None` for a function or no tool."""
    if recipient in PYTHON_RECIPIENTS:
        return PYTHON
    return None
