"""The builtin python tool: code the model writes, run in a sandboxed, stateful python session.

`PythonSession` keeps one kernel per conversation (names defined by one call exist in the next, as in the
notebook gpt-oss was trained with), each call bounded by a timeout and the session by `PythonLimits`. The
kernel runs in a bubblewrap sandbox (`gptoss_hub.tools.python.sandbox` describes it); where one cannot be
created, opening a session raises `SandboxUnavailableError`, and only `sandbox="none"`, asked for by name,
runs code without isolation.
"""

from gptoss_hub.tools.python.sandbox import PythonLimits
from gptoss_hub.tools.python.session import DEFAULT_TIMEOUT, PythonResult, PythonSession

__all__ = ["DEFAULT_TIMEOUT", "PythonLimits", "PythonResult", "PythonSession"]
