"""`POST /v1/chat/completions`: OpenAI's Chat Completions over a `Model`, harmony parsed by the hub.

Reasoning comes back as `reasoning_content` (the field vLLM and most gpt-oss servers use), tool calls as
`tool_calls`, usage with real token counts. With `web_search_options` the server runs the model's browser
calls and the answer's citations come back as OpenAI's `url_citation` message `annotations`. A reply the model garbled is still a normal 200 reply: what
was parsed, plus an `error` object on the choice (code, message, raw text) instead of a server error.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
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
from gptoss_hub.server.errors import APIError
from gptoss_hub.server.options import checked_choices, checked_stop, checked_tool_choice
from gptoss_hub.server.python_calls import PythonRan
from gptoss_hub.server.web_search import BrowserRan, Cited, WebSearch, web_search_request

__all__ = [
    "ChatCompletionRequest",
    "chat_completion",
    "chat_completion_chunks",
    "choice_options",
    "collected_chat_completion",
    "model_options",
    "web_search_of",
]


#: Choices one request may ask for (`n`); each is a generation of its own.
MAX_CHOICES = 16


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
    choices = checked_choices(request.n, MAX_CHOICES)
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
        if choices > 1:
            raise APIError(
                400,
                "n > 1 is not supported with tools the server runs (code_interpreter, web_search_options): "
                "send n requests instead.",
                "invalid_request_error",
                None,
                "n",
            )
    stop = checked_stop(request.stop)
    if stop:
        options["stop"] = stop
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


def choice_options(options: dict[str, Any], index: int) -> dict[str, Any]:
    """The options of choice `index`: with a `seed`, each choice gets its own (seed + index), so the choices
    differ and the same request gives the same choices again."""
    if index == 0 or options.get("seed") is None:
        return options
    return {**options, "seed": (options["seed"] + index) % 2**63}


def _finish_reason(reply: Reply) -> str:
    # "error" is the hub's own reason (the output broke harmony); clients know OpenAI's four.
    return "stop" if reply.finish_reason == "error" else reply.finish_reason


def _usage(replies: Sequence[Reply]) -> dict[str, int]:
    """Usage of one prompt answered `len(replies)` times: its tokens once, every choice's completion."""
    prompt = replies[0].usage.prompt_tokens
    completion = sum(reply.usage.completion_tokens for reply in replies)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _error(reply: Reply) -> dict[str, Any] | None:
    if reply.error is None:
        return None
    return {"code": reply.error.code, "message": reply.error.message, "raw_text": reply.error.raw_text}


def _choice(
    reply: Reply,
    index: int,
    *,
    reasoning: str | None = None,
    code_interpreter_calls: list[dict[str, Any]] | None = None,
    web_search_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
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
    choice: dict[str, Any] = {
        "index": index,
        "message": message,
        "finish_reason": _finish_reason(reply),
        "logprobs": None,
    }
    if reply.error is not None:
        choice["error"] = _error(reply)
    return choice


def chat_completion(
    replies: Sequence[Reply],
    model_name: str,
    *,
    reasoning: str | None = None,
    code_interpreter_calls: list[dict[str, Any]] | None = None,
    web_search_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A `chat.completion` object with a choice per reply (`n` of them); with builtin tools run by the server
    (one choice), `reasoning` is that of every turn, `code_interpreter_calls` and `web_search_calls` the calls
    that ran (with their output)."""
    first, *others = replies
    choices = [
        _choice(
            first,
            0,
            reasoning=reasoning,
            code_interpreter_calls=code_interpreter_calls,
            web_search_calls=web_search_calls,
        ),
        *(_choice(reply, index) for index, reply in enumerate(others, start=1)),
    ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": choices,
        "usage": _usage(replies),
    }


class _ChoiceStream:
    """What streaming one choice keeps track of: its tool calls' indices, the calls the server runs, and
    where its current turn's content began (citation spans count from there)."""

    def __init__(self) -> None:
        self.call_index: dict[str, int] = {}
        self.server_calls: set[str] = set()
        self.content_length = 0
        self.turn_start = 0
        self.reply: Reply | None = None


_ENDED = object()


async def merged(streams: Sequence[AsyncIterator[ServerEvent]]) -> AsyncIterator[tuple[int, ServerEvent]]:
    """The events of several streams as they come, each with its stream's index; one stream is read as is,
    several concurrently (a batching backend generates them together). Leaving early stops every stream."""
    if len(streams) == 1:
        async for event in streams[0]:
            yield 0, event
        return
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

    async def pump(index: int, stream: AsyncIterator[ServerEvent]) -> None:
        try:
            async for event in stream:
                queue.put_nowait((index, event))
        except Exception as exc:  # re-raised by the reader
            queue.put_nowait((index, exc))
        finally:
            queue.put_nowait((index, _ENDED))

    tasks = [asyncio.ensure_future(pump(index, stream)) for index, stream in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, item = await queue.get()
            if item is _ENDED:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def chat_completion_chunks(
    streams: Sequence[AsyncIterator[ServerEvent]],
    request: ChatCompletionRequest,
    model_name: str,
    on_reply: Callable[[Reply], None] | None = None,
) -> AsyncIterator[str]:
    """The server-sent events for the events of each choice's stream (`n` of them), `data: [DONE]` last;
    `on_reply` gets each choice's reply."""
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        choice = {"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None, **extra}
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": [choice],
        }
        return f"data: {json.dumps(body)}\n\n"

    runs_browser = request.web_search_options is not None
    choices = [_ChoiceStream() for _ in streams]
    for index in range(len(streams)):
        yield chunk(index, {"role": "assistant", "content": ""})
    async for index, event in merged(streams):
        state = choices[index]
        if isinstance(event, ReasoningDelta):
            yield chunk(index, {"reasoning_content": event.text})
        elif isinstance(event, ContentDelta):
            state.content_length += len(event.text)
            yield chunk(index, {"content": event.text})
        elif isinstance(event, Cited):
            annotations = [_url_citation(citation, state.turn_start) for citation in event.citations]
            yield chunk(index, {"annotations": annotations})
        elif isinstance(event, TurnEnded):
            state.turn_start = state.content_length
        elif isinstance(event, ToolCallStarted) and (
            event.name == PYTHON or (runs_browser and event.name in BROWSER_FUNCTIONS)
        ):
            state.server_calls.add(event.id)  # run by the server: shown once it ran, never as a function call
        elif isinstance(event, ToolCallArgumentsDelta) and event.id in state.server_calls:
            continue
        elif isinstance(event, PythonRan):
            yield chunk(index, {"code_interpreter_call": _code_interpreter_call(event)})
        elif isinstance(event, BrowserRan):
            yield chunk(index, {"web_search_call": _web_search_call(event)})
        elif isinstance(event, ToolCallStarted):
            state.call_index[event.id] = len(state.call_index)
            call = {"index": state.call_index[event.id], "id": event.id, "type": "function"}
            yield chunk(index, {"tool_calls": [call | {"function": {"name": event.name, "arguments": ""}}]})
        elif isinstance(event, ToolCallArgumentsDelta):
            delta = {"index": state.call_index[event.id], "function": {"arguments": event.text}}
            yield chunk(index, {"tool_calls": [delta]})
        elif isinstance(event, Done):
            reply = state.reply = event.reply
            if on_reply is not None:
                on_reply(reply)
            extra = {"error": _error(reply)} if reply.error is not None else {}
            yield chunk(index, {}, _finish_reason(reply), **extra)
    replies = [state.reply for state in choices]
    assert all(reply is not None for reply in replies), "every stream ends with Done"
    if request.stream_options is not None and request.stream_options.include_usage:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": [],
            "usage": _usage([reply for reply in replies if reply is not None]),
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
        [reply],
        model_name,
        reasoning="".join(reasoning),
        code_interpreter_calls=python_calls,
        web_search_calls=browser_calls,
    )
