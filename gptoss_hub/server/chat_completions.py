"""`POST /v1/chat/completions`: OpenAI's Chat Completions over a `Model`, harmony parsed by the hub.

Reasoning comes back as `reasoning_content` (the field vLLM and most gpt-oss servers use), tool calls as
`tool_calls`, usage with real token counts. With `web_search_options` the server runs the model's browser
calls and the answer's citations come back as OpenAI's `url_citation` message `annotations`. A reply the model garbled is still a normal 200 reply: what
was parsed, plus an `error` object on the choice (code, message, raw text) instead of a server error.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from gptoss_hub.builtin_tools import BROWSER_FUNCTIONS, PYTHON
from gptoss_hub.events import (
    ContentDelta,
    Done,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStarted,
)
from gptoss_hub.reply import Citation, Reply
from gptoss_hub.server.builtin_turns import ServerEvent, TurnEnded
from gptoss_hub.server.options import checked_tool_choice, refuse_several_outputs_and_stops
from gptoss_hub.server.python_calls import PythonRan
from gptoss_hub.server.web_search import BrowserRan, Cited, WebSearch, web_search_request

__all__ = [
    "ChatCompletionRequest",
    "chat_completion",
    "chat_completion_chunks",
    "collected_chat_completion",
    "model_options",
    "web_search_of",
]


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The Chat Completions fields this server reads; others a client may send are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    #: Not in OpenAI's API; accepted as vLLM and llama.cpp servers do.
    top_k: int | None = None
    min_p: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int = 1
    stop: str | list[str] | None = None
    #: Strictly a boolean, as OpenAI's API has it: "yes" or 1 is a 400, not true.
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    #: OpenAI's field: present (even `{}`), the server searches and reads with its browser.
    web_search_options: dict[str, Any] | None = None


def model_options(request: ChatCompletionRequest) -> dict[str, Any]:
    """The `Model.chat` keyword arguments a request stands for; unsupported fields are a 400 saying why."""
    refuse_several_outputs_and_stops(request.n, request.stop)
    # `{"type": "code_interpreter"}` offers the python tool, which this server runs (an extension).
    functions = [tool for tool in request.tools or () if tool.get("type") != "code_interpreter"]
    builtin = len(functions) != len(request.tools or ())
    options: dict[str, Any] = {
        "tools": functions or None,
        "tool_choice": checked_tool_choice(request.tool_choice, functions),
        "response_format": request.response_format,
    }
    builtins = ["python"] if builtin else []
    if request.web_search_options is not None:
        builtins.append("browser")
    if builtins:
        options["builtin_tools"] = builtins
    if request.reasoning_effort:
        options["reasoning_effort"] = request.reasoning_effort
    max_tokens = request.max_completion_tokens or request.max_tokens
    for name, value in (
        ("temperature", request.temperature),
        ("top_p", request.top_p),
        ("top_k", request.top_k),
        ("min_p", request.min_p),
        ("seed", request.seed),
        ("max_tokens", max_tokens),
    ):
        if value is not None:
            options[name] = value
    return options


def web_search_of(request: ChatCompletionRequest) -> WebSearch | None:
    """The request's web search settings, when it asks for the browser (`web_search_options`)."""
    if request.web_search_options is None:
        return None
    return web_search_request(request.web_search_options, "web_search_options")


def _url_citation(citation: Citation, shift: int = 0) -> dict[str, Any]:
    """A citation as a Chat Completions annotation, its span moved by `shift` characters."""
    span = {"start_index": citation.start_index + shift, "end_index": citation.end_index + shift}
    return {"type": "url_citation", "url_citation": span | {"url": citation.url, "title": citation.title}}


def _finish_reason(reply: Reply) -> str:
    # "error" is the hub's own reason (the output broke harmony); clients know OpenAI's four.
    return "stop" if reply.finish_reason == "error" else reply.finish_reason


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.usage.prompt_tokens,
        "completion_tokens": reply.usage.completion_tokens,
        "total_tokens": reply.usage.total_tokens,
    }


def _error(reply: Reply) -> dict[str, Any] | None:
    if reply.error is None:
        return None
    return {"code": reply.error.code, "message": reply.error.message, "raw_text": reply.error.raw_text}


def chat_completion(
    reply: Reply,
    model_name: str,
    *,
    reasoning: str | None = None,
    code_interpreter_calls: list[dict[str, Any]] | None = None,
    web_search_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A `chat.completion` object for `reply`; with builtin tools run by the server, `reasoning` is that of
    every turn, `code_interpreter_calls` and `web_search_calls` the calls that ran (with their output)."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    reasoning = reply.reasoning if reasoning is None else reasoning
    if reasoning:
        message["reasoning_content"] = reasoning
    if reply.citations:
        message["annotations"] = [_url_citation(citation) for citation in reply.citations]
    if code_interpreter_calls:
        message["code_interpreter_calls"] = code_interpreter_calls
    if web_search_calls:
        message["web_search_calls"] = web_search_calls
    if reply.tool_calls:
        message["tool_calls"] = [call.to_openai() for call in reply.tool_calls]
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": _finish_reason(reply), "logprobs": None}
    if reply.error is not None:
        choice["error"] = _error(reply)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [choice],
        "usage": _usage(reply),
    }


async def chat_completion_chunks(
    events: AsyncIterator[ServerEvent],
    request: ChatCompletionRequest,
    model_name: str,
    on_reply: Callable[[Reply], None] | None = None,
) -> AsyncIterator[str]:
    """The server-sent events for `Model.astream` events, `data: [DONE]` last; `on_reply` gets the reply."""
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None, **extra}],
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    call_index: dict[str, int] = {}
    server_calls: set[str] = set()
    runs_browser = request.web_search_options is not None
    # Citation spans count from the start of their turn's content; the stream carries every turn's.
    content_length = turn_start = 0
    reply: Reply | None = None
    async for event in events:
        if isinstance(event, ReasoningDelta):
            yield chunk({"reasoning_content": event.text})
        elif isinstance(event, ContentDelta):
            content_length += len(event.text)
            yield chunk({"content": event.text})
        elif isinstance(event, Cited):
            yield chunk({"annotations": [_url_citation(citation, turn_start) for citation in event.citations]})
        elif isinstance(event, TurnEnded):
            turn_start = content_length
        elif isinstance(event, ToolCallStarted) and (
            event.name == PYTHON or (runs_browser and event.name in BROWSER_FUNCTIONS)
        ):
            server_calls.add(event.id)  # run by the server: shown once it ran, never as a function call
        elif isinstance(event, ToolCallArgumentsDelta) and event.id in server_calls:
            continue
        elif isinstance(event, PythonRan):
            yield chunk({"code_interpreter_call": _code_interpreter_call(event)})
        elif isinstance(event, BrowserRan):
            yield chunk({"web_search_call": _web_search_call(event)})
        elif isinstance(event, ToolCallStarted):
            call_index[event.id] = len(call_index)
            call = {"index": call_index[event.id], "id": event.id, "type": "function"}
            yield chunk({"tool_calls": [call | {"function": {"name": event.name, "arguments": ""}}]})
        elif isinstance(event, ToolCallArgumentsDelta):
            yield chunk({"tool_calls": [{"index": call_index[event.id], "function": {"arguments": event.text}}]})
        elif isinstance(event, Done):
            reply = event.reply
    assert reply is not None
    if on_reply is not None:
        on_reply(reply)
    extra = {"error": _error(reply)} if reply.error is not None else {}
    yield chunk({}, _finish_reason(reply), **extra)
    if request.stream_options is not None and request.stream_options.include_usage:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": [],
            "usage": _usage(reply),
        }
        yield f"data: {json.dumps(body)}\n\n"
    yield "data: [DONE]\n\n"


def _code_interpreter_call(ran: PythonRan) -> dict[str, Any]:
    """A python call the server ran, as the `code_interpreter_calls` extension shows it."""
    return {"id": ran.call.id, "code": ran.call.code, "container_id": ran.container_id, "output": ran.result.text}


def _web_search_call(ran: BrowserRan) -> dict[str, Any]:
    """A browser call the server ran, as the `web_search_calls` extension shows it: the Responses API's
    action, and the text the model read."""
    return {"id": ran.call.id, "action": ran.action, "output": ran.result}


async def collected_chat_completion(
    events: AsyncIterator[ServerEvent], model_name: str, on_reply: Callable[[Reply], None] | None = None
) -> dict[str, Any]:
    """The `chat.completion` object for a response whose builtin calls the server ran: every turn's reasoning,
    the last turn's answer, the calls with their output."""
    reasoning: list[str] = []
    python_calls: list[dict[str, Any]] = []
    browser_calls: list[dict[str, Any]] = []
    reply: Reply | None = None
    async for event in events:
        if isinstance(event, ReasoningDelta):
            reasoning.append(event.text)
        elif isinstance(event, PythonRan):
            python_calls.append(_code_interpreter_call(event))
        elif isinstance(event, BrowserRan):
            browser_calls.append(_web_search_call(event))
        elif isinstance(event, Done):
            reply = event.reply
    assert reply is not None, "a model's events end with Done"
    if on_reply is not None:
        on_reply(reply)
    return chat_completion(
        reply,
        model_name,
        reasoning="".join(reasoning),
        code_interpreter_calls=python_calls,
        web_search_calls=browser_calls,
    )
