"""One tree of errors for the whole hub.

Every error says what went wrong and what to do next, so a user never has to read a traceback to
learn which extra to install or which argument to change. Catch `GptOssHubError` to catch them all.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "CheckpointError",
    "ContextLengthError",
    "DiskSpaceError",
    "GptOssHubError",
    "HarmonyParseError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NoBackendError",
    "PluginError",
    "SandboxUnavailableError",
    "TokenizerError",
    "ToolError",
    "ToolSchemaError",
]


class GptOssHubError(Exception):
    """Base class of every error raised by gptoss_hub."""


class InvalidRequestError(GptOssHubError, ValueError):
    """A request the caller can fix: malformed messages, bad sampling values, unknown options."""


class ContextLengthError(InvalidRequestError):
    """The prompt plus the requested tokens do not fit the model's context window."""


class ModelNotFoundError(GptOssHubError):
    """The model argument names nothing that can be loaded (no alias, folder, file or reachable repo)."""


class BackendUnavailableError(GptOssHubError):
    """No backend can run this model here, or the one asked for cannot; the message lists why."""


class NoBackendError(BackendUnavailableError):
    """No candidate backend can run the model here; the message lists every candidate's reasons."""


class BackendError(GptOssHubError):
    """A backend failed while loading or generating."""


class PluginError(GptOssHubError):
    """A plugin failed to import or registered something invalid; the message names the plugin."""


class TokenizerError(GptOssHubError):
    """The o200k_harmony vocabulary could not be found or did not verify."""


class ToolError(GptOssHubError):
    """A tool definition is invalid, or a tool named by the model does not exist."""


class ToolSchemaError(ToolError):
    """A tool's parameters cannot be shown to the model. `tool` names the tool, `field` the parameter.

    `field` is a dotted path for nested fields (`"order.items"`), or `None` when the whole schema is at fault.
    """

    def __init__(self, tool: str, field: str | None, message: str):
        where = f"Tool {tool!r}" + (f", parameter {field!r}" if field else "")
        super().__init__(f"{where}: {message}")
        self.tool = tool
        self.field = field


class CheckpointError(GptOssHubError):
    """A checkpoint's files are not what gpt-oss or their format needs: unexpected or missing tensors,
    unsupported dtypes, sizes that do not add up, a config of another model, an unusable tokenizer."""


class DiskSpaceError(GptOssHubError):
    """A download would not fit on the disk it goes to; the message gives both figures."""


class HarmonyParseError(GptOssHubError):
    """The model's output is not valid harmony (raised by `Reply.raise_for_error()`; a reply otherwise
    carries the problem in `Reply.error` and is returned, never raised).

    The reply parsed so far is kept in `partial` (a `Reply`, with `finish_reason="error"`) and the raw
    completion ids in `token_ids`, so nothing the model produced is lost.
    """

    def __init__(self, message: str, *, partial: object = None, token_ids: list[int] | None = None):
        super().__init__(message)
        self.partial = partial
        self.token_ids = list(token_ids or [])


class SandboxUnavailableError(GptOssHubError):
    """The python tool's sandbox cannot be created here; the message says why and what to do. The tool never
    falls back to running code unsandboxed: only `sandbox="none"`, asked for by name, does that."""
