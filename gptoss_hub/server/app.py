"""The FastAPI application: OpenAI-compatible routes over one loaded `Model`."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from gptoss_hub.model import Model
from gptoss_hub.server.chat_completions import (
    ChatCompletionRequest,
    chat_completion,
    chat_completion_chunks,
    model_options,
)
from gptoss_hub.server.errors import APIError, error_body, from_exception

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_PENDING", "create_app"]

#: Largest request body accepted (413 above): a long conversation fits many times over.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
#: Requests being served or waiting at once; more are turned away with 429 rather than queued forever.
DEFAULT_MAX_PENDING = 256


def _validation_message(exc: ValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or None
    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
    return f"Invalid request: {problems}.", where


def create_app(
    model: Model,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_pending: int = DEFAULT_MAX_PENDING,
) -> Any:
    """A FastAPI app serving `model` as `model_name` (default: the model's own name).

    With `api_key`, every `/v1/` route wants `Authorization: Bearer <api_key>`; `/health` stays open.
    """
    served_name = model_name or model.info.model
    accepted_names = {served_name, model.info.model, model.spec.name}
    app = FastAPI(title="gptoss-hub", description="OpenAI-compatible API over gpt-oss")
    pending = 0

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        # Authentication, body size and admission, before any work is done for the request.
        nonlocal pending
        if request.url.path.startswith("/v1/"):
            if api_key is not None and request.headers.get("authorization") != f"Bearer {api_key}":
                return JSONResponse(
                    error_body(
                        "Invalid or missing API key (Authorization: Bearer ...).",
                        "authentication_error",
                        "invalid_api_key",
                    ),
                    status_code=401,
                )
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > max_body_bytes:
                return JSONResponse(
                    error_body(
                        f"The request body has {length} bytes; at most {max_body_bytes} are accepted.",
                        "invalid_request_error",
                        "request_too_large",
                    ),
                    status_code=413,
                )
            if pending >= max_pending:
                return JSONResponse(
                    error_body(
                        f"The server is busy ({pending} requests in progress); retry shortly.",
                        "rate_limit_error",
                        "overloaded",
                    ),
                    status_code=429,
                    headers={"retry-after": "1"},
                )
        pending += 1
        try:
            return await call_next(request)
        finally:
            pending -= 1

    async def read_json(request: Request) -> Any:
        body = await request.body()
        if len(body) > max_body_bytes:  # a body sent without Content-Length
            raise APIError(
                413,
                f"The request body is larger than {max_body_bytes} bytes.",
                "invalid_request_error",
                "request_too_large",
            )
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise APIError(
                400, f"The request body is not valid JSON: {exc}.", "invalid_request_error", "invalid_json"
            ) from exc

    def check_model(name: str) -> None:
        if name not in accepted_names:
            raise APIError(
                404,
                f"The model {name!r} does not exist here; this server serves {served_name!r} (see GET /v1/models).",
                "invalid_request_error",
                "model_not_found",
                "model",
            )

    @app.get("/health")
    async def health() -> JSONResponse:
        status = model.info.status
        return JSONResponse(
            {"status": "ok" if status == "ready" else status}, status_code=200 if status == "ready" else 503
        )

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": served_name, "object": "model", "created": int(time.time()), "owned_by": "gptoss-hub"}],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        try:
            parsed = ChatCompletionRequest.model_validate(await read_json(request))
        except ValidationError as exc:
            message, param = _validation_message(exc)
            raise APIError(400, message, "invalid_request_error", "invalid_request", param) from exc
        check_model(parsed.model)
        options = model_options(parsed)
        try:
            if not parsed.stream:
                return chat_completion(await model.achat(parsed.messages, **options), served_name)
            events = model.astream(parsed.messages, **options)
            # The first event is awaited here, so a request the model refuses (too long, invalid) is an
            # HTTP error rather than a stream that fails after its headers went out.
            first = await events.__anext__()
        except Exception as exc:
            raise from_exception(exc) from exc
        return StreamingResponse(
            _stream_with_errors(chat_completion_chunks(_prepend(first, events), parsed, served_name)),
            media_type="text/event-stream",
        )

    return app


async def _prepend(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for item in rest:
        yield item


async def _stream_with_errors(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    """Server-sent events; an error once streaming has begun becomes a last `error` event."""
    try:
        async for chunk in chunks:
            yield chunk
    except Exception as exc:
        yield f"data: {json.dumps(from_exception(exc).body())}\n\n"
