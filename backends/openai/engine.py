"""`OpenAIEngine`: Chat Completions on a remote server, streamed, mapped to the hub's events and `Reply`."""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gptoss_hub.engine import Capabilities, EngineInfo, MessageEngine, validate_options
from gptoss_hub.errors import BackendError, ContextLengthError, InvalidRequestError, ModelNotFoundError
from gptoss_hub.events import ContentDelta, Done, ReasoningDelta, ToolCallArgumentsDelta, ToolCallDone, ToolCallStarted
from gptoss_hub.harmony import message_reasoning
from gptoss_hub.harmony.parse import tool_arguments
from gptoss_hub.reply import Reply, ReplyError, Timings, ToolCall, Usage
from gptoss_hub.tool_choice import ToolChoice
from gptoss_hub.tools import normalize_tools

__all__ = ["OpenAIEngine", "OpenAIOptions"]

#: `Model.chat` options sent as Chat Completions fields of the same name.
_SAMPLING = ("temperature", "top_p", "seed", "max_tokens", "reasoning_effort", "response_format", "stop")
#: Accepted by vLLM, llama.cpp and gptoss-hub servers, not by OpenAI's: sent only when set.
_EXTRA_SAMPLING = ("top_k", "min_p")


class OpenAIOptions(BaseModel):
    """Options `gh.load(url, **options)` accepts for a remote endpoint."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None
    #: The model name the server knows; default: the first one `GET /v1/models` lists.
    model_name: str | None = None
    timeout: float = Field(default=600.0, gt=0)
    max_retries: int = Field(default=2, ge=0)


def _translate(exc: Exception) -> Exception:
    """The SDK's errors as the hub's."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("code") or (body.get("error") or {}).get("code")
        message = f"The server answered {exc.status_code}: {exc.message}"
        if exc.status_code == 400 and (code == "context_length_exceeded" or "context" in exc.message.lower()):
            return ContextLengthError(message)
        if exc.status_code in (400, 422):
            return InvalidRequestError(message)
        if exc.status_code == 404:
            return ModelNotFoundError(message)
        return BackendError(message)
    if isinstance(exc, openai.APIConnectionError):
        return BackendError(f"Could not reach the server: {exc}. Is it running, and is the URL right?")
    return exc


class _ReplyBuilder:
    """Chat Completions stream chunks in, the hub's events out; `finish()` ends with `Done(reply)`."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.reasoning: list[str] = []
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: Any = None
        self.finish_reason: str | None = None

    def feed(self, chunk: Any) -> list[Any]:
        events: list[Any] = []
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            extra = delta.model_extra or {}
            # vLLM and gptoss-hub send `reasoning_content`, some servers `reasoning`.
            thinking = message_reasoning(extra)
            if thinking or delta.content or delta.tool_calls:
                self.first_token_at = self.first_token_at or time.perf_counter()
            if thinking:
                self.reasoning.append(thinking)
                events.append(ReasoningDelta(thinking))
            if delta.content:
                self.content.append(delta.content)
                events.append(ContentDelta(delta.content))
            for call in delta.tool_calls or ():
                events.extend(_call_events(self.calls, call))
            self.finish_reason = choice.finish_reason or self.finish_reason
        return events

    def finish(self) -> list[Any]:
        tool_calls = [_finish_call(entry) for entry in self.calls.values()]
        usage = self.usage
        completion_tokens = usage.completion_tokens if usage else 0
        errors = [c.error for c in tool_calls if c.error]
        reply = Reply(
            content="".join(self.content),
            reasoning="".join(self.reasoning),
            tool_calls=tool_calls,
            finish_reason=_finish_reason(self.finish_reason, tool_calls),
            usage=Usage(
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=completion_tokens,
                total_tokens=usage.total_tokens if usage else 0,
            ),
            timings=Timings.since(self.started, self.first_token_at, completion_tokens),
            error=ReplyError(code="invalid_tool_arguments", message=errors[0]) if errors else None,
        )
        return [*(ToolCallDone(call) for call in tool_calls), Done(reply)]


class OpenAIEngine(MessageEngine):
    """One remote model; every call is a streamed Chat Completions request."""

    def __init__(self, parsed: OpenAIOptions, model: str, base_url: str):
        self._parsed, self._base_url = parsed, base_url
        self._client = _client(base_url, parsed, asynchronous=False)
        #: Async clients keep connections bound to the event loop they ran on: one client per loop.
        self._async_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self.model = model
        # The server batches; its context and structured-output support are its own (errors say so).
        self.capabilities = Capabilities(streaming=True, batching=True, json_schema=True, max_context=None)
        self.info = EngineInfo(device="remote", dtype="remote", details={"base_url": base_url, "model": model})

    @classmethod
    def connect(cls, base_url: str, **options: Any) -> OpenAIEngine:
        """A client for `base_url`; asks the server for its model unless `model_name` is given."""
        parsed = validate_options(OpenAIOptions, options, "openai")
        return cls(parsed, parsed.model_name or _first_model(base_url, parsed), base_url)

    def stream_messages(self, messages: list[Any], options: dict[str, Any]) -> Iterator[Any]:
        """Stream one Chat Completions request; yield the hub's events, `Done(reply)` last."""
        body = _request_body(self.model, messages, options)
        builder = _ReplyBuilder()
        try:
            for chunk in self._client.chat.completions.create(**body):
                yield from builder.feed(chunk)
        except Exception as exc:
            raise _translate(exc) from exc
        yield from builder.finish()

    async def astream_messages(self, messages: list[Any], options: dict[str, Any]) -> AsyncIterator[Any]:
        """Asynchronous twin of `stream_messages`."""
        body = _request_body(self.model, messages, options)
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = _client(self._base_url, self._parsed, asynchronous=True)
        builder = _ReplyBuilder()
        try:
            async for chunk in await client.chat.completions.create(**body):
                for event in builder.feed(chunk):
                    yield event
        except Exception as exc:
            raise _translate(exc) from exc
        for event in builder.finish():
            yield event

    def close(self) -> None:
        """Close the connection pool (nothing else runs here)."""
        self._client.close()


def _client(base_url: str, parsed: OpenAIOptions, *, asynchronous: bool, timeout: float | None = None) -> Any:
    import openai

    factory = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return factory(
        base_url=base_url,
        api_key=parsed.api_key or os.environ.get("OPENAI_API_KEY") or "none",
        timeout=timeout or parsed.timeout,
        max_retries=parsed.max_retries,
    )


def _first_model(base_url: str, parsed: OpenAIOptions) -> str:
    client = _client(base_url, parsed, asynchronous=False, timeout=min(parsed.timeout, 30.0))
    try:
        models = [m.id for m in client.models.list().data]
    except Exception as exc:
        raise _translate(exc) from exc
    finally:
        client.close()
    if not models:
        raise ModelNotFoundError(f"{base_url} lists no models; pass model_name='NAME'.")
    return models[0]


def _request_body(model: str, messages: list[Any], options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - {*_SAMPLING, *_EXTRA_SAMPLING, "tools", "tool_choice", "instructions"}
    if unknown:
        raise InvalidRequestError(
            f"A remote endpoint does not take {', '.join(sorted(unknown))}; it renders the prompt itself."
        )
    body: dict[str, Any] = {
        "model": model,
        "messages": [_outgoing(message) for message in messages],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if options.get("instructions"):
        body["messages"] = [{"role": "developer", "content": options["instructions"]}, *body["messages"]]
    specs = normalize_tools(options.get("tools") or ())
    if specs:
        body["tools"] = [
            {"type": "function", "function": {"name": s.name, "description": s.description, "parameters": s.parameters}}
            for s in specs
        ]
    if options.get("tool_choice") is not None:
        # Checked here so a bad choice fails before the request; sent in the Chat Completions shape, and only
        # with tools (servers refuse a tool_choice without them).
        choice = ToolChoice.parse(options["tool_choice"], [s.name for s in specs])
        named = {"type": "function", "function": {"name": choice.name}}
        if specs:
            body["tool_choice"] = named if choice.mode == "function" else choice.mode
    for name in _SAMPLING:
        if options.get(name) is not None:
            body[name] = options[name]
    extra = {name: options[name] for name in _EXTRA_SAMPLING if options.get(name)}
    if extra:
        body["extra_body"] = extra
    return body


def _outgoing(message: Any) -> Any:
    """A message as servers read it: the chain of thought a hub reply keeps under `thinking` is sent as
    `reasoning` (what vLLM reads) and `reasoning_content` (llama.cpp's and the hub's server's name)."""
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return message
    thinking = message_reasoning(message)
    outgoing = {k: v for k, v in message.items() if k != "thinking"}
    if thinking:
        outgoing["reasoning"] = outgoing["reasoning_content"] = thinking
    return outgoing


def _call_events(calls: dict[int, dict[str, Any]], call: Any) -> list[Any]:
    events: list[Any] = []
    entry = calls.get(call.index)
    function = call.function
    if entry is None:
        entry = calls[call.index] = {"id": call.id or f"call_{call.index}", "name": "", "arguments": []}
    if function is not None and function.name and not entry["name"]:
        entry["name"] = function.name
        events.append(ToolCallStarted(entry["id"], entry["name"]))
    if function is not None and function.arguments:
        entry["arguments"].append(function.arguments)
        events.append(ToolCallArgumentsDelta(entry["id"], function.arguments))
    return events


def _finish_call(entry: dict[str, Any]) -> ToolCall:
    raw = "".join(entry["arguments"])
    arguments, error = tool_arguments(raw)
    return ToolCall(id=entry["id"], name=entry["name"], arguments=arguments, raw_arguments=raw, error=error)


def _finish_reason(reason: str | None, calls: list[ToolCall]) -> str:
    if calls and reason in (None, "stop", "tool_calls"):
        return "tool_calls"
    return reason if reason in ("stop", "length", "tool_calls") else "stop"
