"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the matching status."""

from __future__ import annotations

from typing import Any

from gptoss_hub.errors import BackendError, ContextLengthError, GptOssHubError, InvalidRequestError, ToolError

__all__ = ["APIError", "error_body", "from_exception"]


class APIError(Exception):
    """An error the server answers with: HTTP `status` and OpenAI's error fields."""

    def __init__(self, status: int, message: str, type: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """The JSON body OpenAI's API (and its SDKs) use for errors."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def from_exception(exc: Exception) -> APIError:
    """The hub's typed errors as HTTP errors: the request's fault is 400, the backend's 500/503."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ContextLengthError):
        return APIError(400, str(exc), "invalid_request_error", "context_length_exceeded", "messages")
    if isinstance(exc, (InvalidRequestError, ToolError)):
        return APIError(400, str(exc), "invalid_request_error", "invalid_request")
    if isinstance(exc, BackendError):
        return APIError(503, str(exc), "server_error", "backend_unavailable")
    if isinstance(exc, GptOssHubError):
        return APIError(500, str(exc), "server_error", type(exc).__name__)
    return APIError(500, f"Internal error: {type(exc).__name__}: {exc}", "server_error", "internal_error")
