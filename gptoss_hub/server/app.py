"""The FastAPI application: OpenAI-compatible routes over one loaded `Model`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from gptoss_hub.model import Model
from gptoss_hub.server import responses as responses_api
from gptoss_hub.server.chat_completions import (
    ChatCompletionRequest,
    chat_completion,
    chat_completion_chunks,
    model_options,
)
from gptoss_hub.server.errors import APIError, error_body, from_exception
from gptoss_hub.server.metrics import ServerMetrics

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

    With `api_key`, every `/v1/` route wants `Authorization: Bearer <api_key>`; `/health` and `/metrics`
    stay open. Bodies over `max_body_bytes` get 413, and requests beyond `max_pending` in progress 429.
    """
    served_name = model_name or model.info.model
    accepted_names = {served_name, model.info.model, model.spec.name}
    app = FastAPI(title="gptoss-hub", description="OpenAI-compatible API over gpt-oss")
    metrics = app.state.metrics = ServerMetrics()
    store = app.state.responses = responses_api.ResponseStore()

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        metrics.errors.labels(exc.code or exc.type).inc()
        return JSONResponse(exc.body(), status_code=exc.status)

    app.add_middleware(_Guard, api_key=api_key, max_body_bytes=max_body_bytes, max_pending=max_pending, metrics=metrics)

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

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

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
                reply = await model.achat(parsed.messages, **options)
                metrics.record_reply(reply)
                return chat_completion(reply, served_name)
            events = model.astream(parsed.messages, **options)
            # The first event is awaited here, so a request the model refuses (too long, invalid) is an
            # HTTP error rather than a stream that fails after its headers went out.
            first = await events.__anext__()
        except Exception as exc:
            raise from_exception(exc) from exc
        return StreamingResponse(
            _stream_with_errors(
                chat_completion_chunks(_prepend(first, events), parsed, served_name, on_reply=metrics.record_reply)
            ),
            media_type="text/event-stream",
        )

    @app.post("/v1/responses")
    async def responses(request: Request) -> Any:
        try:
            parsed = responses_api.ResponsesRequest.model_validate(await read_json(request))
        except ValidationError as exc:
            message, param = _validation_message(exc)
            raise APIError(400, message, "invalid_request_error", "invalid_request", param) from exc
        check_model(parsed.model)
        history = store.conversation(parsed.previous_response_id) if parsed.previous_response_id else []
        messages = history + responses_api.input_messages(parsed)
        options = responses_api.model_options(parsed)
        response_id, created = f"resp_{uuid.uuid4().hex}", int(time.time())

        def remember(reply: Any) -> None:
            metrics.record_reply(reply)
            if parsed.store:
                store.save(response_id, [*messages, reply.message])

        try:
            if not parsed.stream:
                reply = await model.achat(messages, **options)
                remember(reply)
                return responses_api.response_object(parsed, reply, served_name, response_id, created)
            events = model.astream(messages, **options)
            first = await events.__anext__()  # a refused request is an HTTP error, as for chat completions
        except Exception as exc:
            raise from_exception(exc) from exc
        stream = responses_api.response_events(
            _prepend(first, events), parsed, served_name, response_id, created, on_reply=remember
        )
        return StreamingResponse(_stream_with_errors(stream, named_events=True), media_type="text/event-stream")

    return app


async def _prepend(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for item in rest:
        yield item


async def _stream_with_errors(chunks: AsyncIterator[str], named_events: bool = False) -> AsyncIterator[str]:
    """Server-sent events; an error once streaming has begun becomes a last `error` event (the Responses
    API names its events, `event: error` with the error's fields; Chat Completions sends the error body)."""
    try:
        async for chunk in chunks:
            yield chunk
    except Exception as exc:
        error = from_exception(exc)
        if named_events:
            body = {"type": "error", "code": error.code, "message": error.message, "param": error.param}
            yield f"event: error\ndata: {json.dumps(body)}\n\n"
        else:
            yield f"data: {json.dumps(error.body())}\n\n"


#: Routes named in metrics; anything else is counted as "other" (so unknown paths cannot grow the labels).
_ROUTES = ("/v1/chat/completions", "/v1/responses", "/v1/models", "/health", "/metrics")


class _Guard:
    """ASGI middleware: authentication, body size and admission for `/v1/` routes, before any work is done,
    and request counts and latencies for every route. Pure ASGI rather than `@app.middleware`, so a
    streamed response counts as in progress until its last byte and a client's disconnect reaches it."""

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int, max_pending: int, metrics: ServerMetrics):
        self.app, self.api_key, self.max_body_bytes, self.max_pending = app, api_key, max_body_bytes, max_pending
        self.metrics = metrics
        self.pending = 0

    def _refusal(self, headers: dict[bytes, bytes]) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if (
            self.api_key is not None
            and headers.get(b"authorization", b"").decode("latin-1") != f"Bearer {self.api_key}"
        ):
            body = error_body(
                "Invalid or missing API key (Authorization: Bearer ...).", "authentication_error", "invalid_api_key"
            )
            return 401, body, {}
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > self.max_body_bytes:
            message = f"The request body has {length} bytes; at most {self.max_body_bytes} are accepted."
            return 413, error_body(message, "invalid_request_error", "request_too_large"), {}
        if self.pending >= self.max_pending:
            message = f"The server is busy ({self.pending} requests in progress); retry shortly."
            return 429, error_body(message, "rate_limit_error", "overloaded"), {"retry-after": "1"}
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in _ROUTES else "other"
        started = time.perf_counter()
        refusal = self._refusal(dict(scope["headers"])) if path.startswith("/v1/") else None
        if refusal is not None:
            status, body, headers = refusal
            self.metrics.errors.labels(body["error"]["code"]).inc()
            self.metrics.requests.labels(route, str(status)).inc()
            await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
            return
        status = 500

        async def send_and_note_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.pending += 1
        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.pending -= 1
            self.metrics.in_progress.dec()
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
