"""The FastAPI application: OpenAI-compatible routes over one loaded `Model`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gptoss_hub.model import Model
from gptoss_hub.reply import Reply
from gptoss_hub.server import chat_completions as chat_api
from gptoss_hub.server import responses as responses_api
from gptoss_hub.server.builtin_turns import ServerTools, start_turns_with_builtins
from gptoss_hub.server.chat_completions import (
    ChatCompletionRequest,
    chat_completion,
    chat_completion_chunks,
    collected_chat_completion,
    model_options,
)
from gptoss_hub.server.errors import APIError, error_body, from_exception
from gptoss_hub.server.metrics import ServerMetrics
from gptoss_hub.server.openapi import openapi_schema
from gptoss_hub.server.page import page_file, page_index
from gptoss_hub.server.python_calls import PythonContainers, PythonRan
from gptoss_hub.server.sealed_reasoning import ReasoningSeal
from gptoss_hub.server.status import server_status
from gptoss_hub.server.web_search import Browsers, WebSearch
from gptoss_hub.tools.browser import Browser, PageFetcher, SearchBackend

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_PENDING", "create_app"]

#: Largest request body accepted (413 above): a long conversation fits many times over.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
#: Requests being served or waiting at once; more are turned away with 429 rather than queued forever.
DEFAULT_MAX_PENDING = 256

#: Deepest nesting of lists and objects a request body may have (a JSON schema in `tools` needs a few dozen).
MAX_NESTING = 64

RequestT = TypeVar("RequestT", bound=BaseModel)
ResultT = TypeVar("ResultT")

#: The status a request whose client left before its answer is counted under (nginx's "client closed request").
CLIENT_CLOSED_REQUEST = 499


class ClientDisconnected(Exception):
    """The client hung up before its answer was ready; the work for it was stopped."""


def _validation_message(exc: ValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or None
    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
    return f"Invalid request: {problems}.", where


class _Served:
    """What the route handlers share: the model, the name it is served as, its metrics, stored responses and
    the sessions of the builtin tools."""

    def __init__(
        self,
        model: Model,
        served_name: str,
        max_body_bytes: int,
        search: tuple[SearchBackend, PageFetcher] | None,
        seal: ReasoningSeal | None,
    ):
        self.model = model
        self.served_name = served_name
        # The name it is served as, the model's own, and the name it was loaded by (`--model tiny`).
        self.accepted_names = {served_name, model.info.model, model.spec.name, model.spec.source}
        self.max_body_bytes = max_body_bytes
        self.metrics = ServerMetrics()
        self.store = responses_api.ResponseStore()
        #: Python sessions of the conversations whose requests offer the python tool (`code_interpreter`).
        self.containers = PythonContainers()
        #: The search source the browser reads (`serve --search`); none, and web search is refused.
        self.search = search
        #: Page stacks of the conversations whose requests offer the browser.
        self.browsers = Browsers(*search) if search is not None else None
        #: Seals reasoning for clients that keep it themselves (`include: ["reasoning.encrypted_content"]`).
        self.seal = seal or ReasoningSeal.from_environment()

    def checked_search(self, param: str) -> tuple[SearchBackend, PageFetcher]:
        """The search source, or a 400 (on `param`) saying the server was started without one."""
        if self.search is None:
            raise APIError(
                400,
                "This server has no search source, so it cannot run web search: start it with "
                "`gptoss-hub serve --search SOURCE` (local:DIR, searxng:URL, exa or youcom).",
                "invalid_request_error",
                "web_search_unavailable",
                param,
            )
        return self.search

    def check_model(self, name: str) -> None:
        """A 404 unless `name` is the served model (under any of its names)."""
        if name not in self.accepted_names:
            raise APIError(
                404,
                f"The model {name!r} does not exist here; this server serves {self.served_name!r} "
                "(see GET /v1/models).",
                "invalid_request_error",
                "model_not_found",
                "model",
            )


def create_app(
    model: Model,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_pending: int = DEFAULT_MAX_PENDING,
    search: tuple[SearchBackend, PageFetcher] | None = None,
    reasoning_seal: ReasoningSeal | None = None,
) -> Any:
    """A FastAPI app serving `model` as `model_name` (default: the model's own name).

    With `api_key`, every `/v1/` route wants `Authorization: Bearer <api_key>`; `/health` and `/metrics`
    stay open. Bodies over `max_body_bytes` get 413, and requests beyond `max_pending` in progress 429.
    With `search` (a search backend and a page fetcher, see `gptoss_hub.tools.browser.sources`), requests
    may ask for web search, which the server runs with its browser. `reasoning_seal` seals the reasoning
    clients ask to keep (default: from `$GPTOSS_HUB_REASONING_KEY`, else a random key for this process).
    """
    served = _Served(model, model_name or model.info.model, max_body_bytes, search, reasoning_seal)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        served.containers.close_all()  # no sandbox outlives the server
        if served.browsers is not None:
            served.browsers.close_all()

    app = FastAPI(title="gptoss-hub", description="OpenAI-compatible API over gpt-oss", lifespan=lifespan)
    app.state.served = served
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(ClientDisconnected, _client_disconnected)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(
        _Guard, api_key=api_key, max_body_bytes=max_body_bytes, max_pending=max_pending, metrics=served.metrics
    )
    app.add_api_route("/", page_index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/page/{name}", page_file, methods=["GET"], include_in_schema=False)
    app.add_api_route("/health", _health, methods=["GET"])
    app.add_api_route("/status", _status, methods=["GET"])
    app.add_api_route("/metrics", _prometheus_metrics, methods=["GET"])
    app.add_api_route("/v1/models", _models, methods=["GET"])
    app.add_api_route("/v1/chat/completions", _chat_completions, methods=["POST"])
    app.add_api_route("/v1/responses", _responses, methods=["POST"])
    app.openapi = lambda: openapi_schema(app, sorted(served.accepted_names))  # type: ignore[method-assign]  # the real bodies and statuses
    return app


def _served(request: Request) -> _Served:
    served: _Served = request.app.state.served
    return served


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)  # registered for APIError only
    _served(request).metrics.errors.labels(exc.code or exc.type).inc()
    return JSONResponse(exc.body(), status_code=exc.status)


async def _client_disconnected(request: Request, exc: Exception) -> Response:
    """Nobody is left to read an answer: an empty one, counted as 499."""
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _while_connected(request: Request, work: Awaitable[ResultT]) -> ResultT:
    """The result of `work`, which is cancelled (its generation stopped) if the client disconnects first:
    a client that gave up must not keep the engine busy for the ones still waiting."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this request is being cancelled itself (the server is stopping)
        gone.cancel()
        task.cancel()
        raise
    gone.cancel()
    if not task.done():  # the client left first
        task.cancel()
        await asyncio.wait({task})  # the work's clean-up (its generation told to stop) runs before the answer
        raise ClientDisconnected()
    return task.result()


async def _disconnect(request: Request) -> None:
    """Return when the client disconnects. The body has been read, so the next message the server receives
    is the disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (an unknown route, a wrong method) in OpenAI's error shape."""
    assert isinstance(exc, StarletteHTTPException)  # registered for it only
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = f"{request.method} {request.url.path}: {exc.detail}."
    if exc.status_code == 404:
        message += " The routes are /v1/chat/completions, /v1/responses, /v1/models, /health, /status and /metrics."
    _served(request).metrics.errors.labels(code).inc()
    return JSONResponse(error_body(message, "invalid_request_error", code), status_code=exc.status_code)


async def _read_json(request: Request, max_body_bytes: int) -> Any:
    body = await request.body()
    if len(body) > max_body_bytes:  # a body sent without Content-Length
        raise APIError(
            413,
            f"The request body is larger than {max_body_bytes} bytes.",
            "invalid_request_error",
            "request_too_large",
        )
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(
            400, f"The request body is not valid JSON: {exc}.", "invalid_request_error", "invalid_json"
        ) from exc
    except RecursionError:  # nested past the interpreter's recursion limit
        parsed, too_deep = None, True
    else:
        too_deep = _nesting(parsed) > MAX_NESTING
    if too_deep:
        raise APIError(
            400,
            f"The request body is nested more than {MAX_NESTING} levels deep; no OpenAI request needs that.",
            "invalid_request_error",
            "invalid_json",
        )
    return parsed


def _nesting(value: Any) -> int:
    """How deeply `value` nests lists and objects, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_NESTING:
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


async def _parsed(request: Request, schema: type[RequestT]) -> RequestT:
    """The request's JSON body validated by `schema`; a 400 that names the field otherwise."""
    body = await _read_json(request, _served(request).max_body_bytes)
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        message, param = _validation_message(exc)
        raise APIError(400, message, "invalid_request_error", "invalid_request", param) from exc


async def _health(request: Request) -> JSONResponse:
    status = _served(request).model.info.status
    return JSONResponse(
        {"status": "ok" if status == "ready" else status}, status_code=200 if status == "ready" else 503
    )


async def _status(request: Request) -> dict[str, Any]:
    served = _served(request)
    in_progress = int(served.metrics.registry.get_sample_value("gptoss_hub_requests_in_progress") or 0)
    return server_status(served.model.info, served.served_name, in_progress)


async def _prometheus_metrics(request: Request) -> Response:
    served = _served(request)
    served.metrics.stored_responses.set(len(served.store))
    served.metrics.stored_bytes.set(served.store.bytes)
    exposition = served.metrics.exposition()
    return Response(exposition, media_type="text/plain; version=0.0.4; charset=utf-8")


async def _models(request: Request) -> dict[str, Any]:
    model = {
        "id": _served(request).served_name,
        "object": "model",
        "created": int(time.time()),
        "owned_by": "gptoss-hub",
    }
    return {"object": "list", "data": [model]}


async def _chat_completions(request: Request) -> Any:
    served = _served(request)
    parsed = await _parsed(request, ChatCompletionRequest)
    served.check_model(parsed.model)
    options = model_options(parsed)
    if "builtin_tools" in options:
        return await _chat_completions_with_builtins(request, served, parsed, options)
    count = parsed.n or 1  # each choice its own generation: a batching backend runs them together
    try:
        if not parsed.stream:
            answers = asyncio.gather(
                *(served.model.achat(parsed.messages, **chat_api.choice_options(options, i)) for i in range(count))
            )
            replies = await _while_connected(request, answers)
            for reply in replies:
                served.metrics.record_reply(reply)
            return chat_completion(replies, served.served_name)
        streams = [
            await served.model.astart(parsed.messages, **chat_api.choice_options(options, i)) for i in range(count)
        ]
    except ClientDisconnected:
        raise
    except Exception as exc:
        raise from_exception(exc) from exc
    chunks = chat_completion_chunks(streams, parsed, served.served_name, on_reply=served.metrics.record_reply)
    return StreamingResponse(_stream_with_errors(chunks), media_type="text/event-stream")


async def _responses(request: Request) -> Any:
    served = _served(request)
    parsed = await _parsed(request, responses_api.ResponsesRequest)
    served.check_model(parsed.model)
    history = served.store.conversation(parsed.previous_response_id) if parsed.previous_response_id else []
    messages = history + responses_api.input_messages(parsed, served.seal)
    options = responses_api.model_options(parsed)
    seal = served.seal if responses_api.sealing(parsed) else None
    response = responses_api.ResponseStream(parsed, served.served_name, seal)
    builtins = options.get("builtin_tools", [])
    sessions = served.store.sessions(parsed.previous_response_id)
    tools = ServerTools()
    if "python" in builtins:
        tools.containers, tools.container_id = served.containers, sessions.get("python")
    web_search = responses_api.web_search_of(parsed)
    if web_search is not None:
        served.checked_search("tools")
        assert served.browsers is not None  # there is a search source
        sessions["browser"], tools.browser = served.browsers.get(sessions.get("browser"))
        _limit_results(tools.browser, web_search)

    def remember(reply: Reply) -> None:
        served.metrics.record_reply(reply)
        if response.container_id is not None:
            sessions["python"] = response.container_id
        if parsed.store:
            added = reply.transcript or [reply.message]  # with builtin tools, every turn and tool result it took
            served.store.save(response.id, [*messages, *added], sessions)
        else:  # nothing can continue this conversation
            served.containers.release(sessions.get("python"))
            if served.browsers is not None:
                served.browsers.release(sessions.get("browser"))

    try:
        if builtins:
            events: AsyncIterator[Any] = await start_turns_with_builtins(served.model, messages, options, tools)
        elif not parsed.stream:
            reply = await _while_connected(request, served.model.achat(messages, **options))
            remember(reply)
            return response.complete(reply)
        else:
            events = await served.model.astart(messages, **options)
    except ClientDisconnected:
        raise
    except Exception as exc:
        raise from_exception(exc) from exc
    stream = response.events(events, on_reply=remember)
    if not parsed.stream:  # builtin tools' turns, answered whole: the response the stream would end with

        async def drained() -> None:
            async for _ in stream:
                pass

        try:
            await _while_connected(request, drained())
        except ClientDisconnected:
            raise
        except Exception as exc:
            raise from_exception(exc) from exc
        return response.final
    return StreamingResponse(_stream_with_errors(stream, named_events=True), media_type="text/event-stream")


def _limit_results(browser: Browser, web_search: WebSearch) -> None:
    """Show at most the search results the request's `search_context_size` allows."""
    browser.topn_limit = web_search.results


async def _chat_completions_with_builtins(
    request: Request, served: _Served, parsed: ChatCompletionRequest, options: dict[str, Any]
) -> Any:
    """Chat Completions with builtin tools run by the server. The API has no shape for a builtin call, so the
    calls, with their output, come back in the message's `code_interpreter_calls` and `web_search_calls` (an
    extension); the browser's citations are OpenAI's `annotations`. The sessions live for the request."""
    tools = ServerTools()
    if "python" in options["builtin_tools"]:
        tools.containers = served.containers
    web_search = chat_api.web_search_of(parsed)
    if web_search is not None:
        tools.browser = Browser(*served.checked_search("web_search_options"))
        _limit_results(tools.browser, web_search)
    try:
        events = await start_turns_with_builtins(served.model, parsed.messages, options, tools)
    except Exception as exc:
        raise from_exception(exc) from exc
    containers: list[str] = []

    async def released(source: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            async for event in source:
                if isinstance(event, PythonRan):
                    containers.append(event.container_id)
                yield event
        finally:
            for container_id in set(containers):
                served.containers.release(container_id)

    if parsed.stream:
        chunks = chat_completion_chunks([released(events)], parsed, served.served_name, served.metrics.record_reply)
        return StreamingResponse(_stream_with_errors(chunks), media_type="text/event-stream")
    collected = collected_chat_completion(released(events), served.served_name, served.metrics.record_reply)
    try:
        return await _while_connected(request, collected)
    except ClientDisconnected:
        raise
    except Exception as exc:
        raise from_exception(exc) from exc


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
_ROUTES = ("/", "/v1/chat/completions", "/v1/responses", "/v1/models", "/health", "/status", "/metrics")


class _Guard:
    """ASGI middleware: authentication, body size and admission for `/v1/` routes, before any work is done,
    and request counts and latencies for every route. Pure ASGI rather than `@app.middleware`, so a
    streamed response counts as in progress until its last byte and a client's disconnect reaches it."""

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int, max_pending: int, metrics: ServerMetrics):
        self.app, self.api_key, self.max_body_bytes, self.max_pending = app, api_key, max_body_bytes, max_pending
        self.metrics = metrics
        self.pending = 0

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        if self.api_key is None:
            return True
        given = [value for name, value in headers if name == b"authorization"]
        # Exactly one Authorization header, compared in constant time (no timing tells how much matched).
        expected = f"Bearer {self.api_key}".encode()
        return len(given) == 1 and hmac.compare_digest(given[0], expected)

    def _refusal(self, raw_headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        headers = dict(raw_headers)
        if not self._authorized(raw_headers):
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
        refusal = self._refusal(list(scope["headers"])) if path.startswith("/v1/") else None
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

        # Only model requests count as in progress (and toward the limit): a health check or a metrics scrape
        # must get through a busy server, and must not count itself.
        counted = path.startswith("/v1/")
        if counted:
            self.pending += 1
            self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            if counted:
                self.pending -= 1
                self.metrics.in_progress.dec()
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
