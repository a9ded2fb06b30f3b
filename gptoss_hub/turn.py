"""How one assistant turn is driven, chosen once per model when it loads (`turn_driver`).

- `TokenTurns`, for every `Engine` (engines move token ids): render the messages to harmony, generate,
  parse the ids back into events. The hub enforces `max_tokens` and the stop ids itself, whatever the engine
  does, and steers a forced `tool_choice` into its call (`gptoss_hub.steering`).
- `RemoteTurns`, for a `MessageEngine` (a server that renders and parses harmony itself): send the
  messages, relay the events it yields.

Every decision of a token turn lives in `TokenTurn`; `TokenTurns.stream` and `astream` only move chunks into
it, one with a synchronous engine iterator and one with an asynchronous one. The synchronous API is not built
on the asynchronous one: driving an event loop per call (and a thread hop per chunk for a synchronous
runtime such as llama.cpp) costs more than the hub's whole turn on a small model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from gptoss_hub.engine import Engine, GenerationChunk, GenerationRequest, MessageEngine
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.events import ContentDelta, Done, StreamEvent
from gptoss_hub.harmony import ReplyParser, render, stop_token_ids
from gptoss_hub.prompt_limits import check_prompt_cost
from gptoss_hub.reply import Timings, Usage
from gptoss_hub.steering import CallSteering
from gptoss_hub.stop_strings import StopStrings, stop_list
from gptoss_hub.tool_choice import ToolChoice
from gptoss_hub.tools import normalize_tools

__all__ = ["RemoteTurns", "TokenTurn", "TokenTurns", "TurnDriver", "turn_driver"]

#: `Model.chat` options that shape the prompt rather than the sampling.
RENDER_OPTIONS = (
    "tools",
    "builtin_tools",
    "reasoning_effort",
    "instructions",
    "model_identity",
    "knowledge_cutoff",
    "current_date",
    "keep_reasoning",
    "stateless_python",
)


class TurnDriver(Protocol):
    """Drives one assistant turn: the events of the reply to `messages`, the last one `Done(reply)`.

    With `deltas=False` the caller wants the reply only (`chat()`): a driver may then yield `Done` alone.
    """

    def stream(self, messages: list[Any], options: dict[str, Any], *, deltas: bool = True) -> Iterator[StreamEvent]: ...

    def astream(
        self, messages: list[Any], options: dict[str, Any], *, deltas: bool = True
    ) -> AsyncIterator[StreamEvent]: ...

    async def astart(self, messages: list[Any], options: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        """`astream`'s events, returned once the request is known to be valid: an invalid option, a prompt
        past the context and the like raise here, before anything is generated."""
        ...


def turn_driver(engine: Engine | MessageEngine, backend: str) -> TurnDriver:
    """The driver for `engine`: remote turns for a message engine, token turns for every other."""
    if isinstance(engine, MessageEngine):
        return RemoteTurns(engine)
    return TokenTurns(engine, backend)


class RemoteTurns:
    """Turns on a server that speaks harmony itself: the messages go out, its events come back as they are."""

    def __init__(self, engine: MessageEngine):
        self.engine = engine

    def stream(self, messages: list[Any], options: dict[str, Any], *, deltas: bool = True) -> Iterator[StreamEvent]:
        """The server's events for one turn (all of them: the server streams them anyway)."""
        return self.engine.stream_messages(messages, options)

    def astream(
        self, messages: list[Any], options: dict[str, Any], *, deltas: bool = True
    ) -> AsyncIterator[StreamEvent]:
        """Asynchronous twin of `stream`."""
        return self.engine.astream_messages(messages, options)

    async def astart(self, messages: list[Any], options: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        """The server's events, once its first has come: only the server can say whether a request is valid,
        and it says so before it streams."""
        events = self.engine.astream_messages(messages, options)
        first = await events.__anext__()
        return _prepend(first, events)


class TokenTurns:
    """Turns on an engine of token ids: render → generate → parse."""

    def __init__(self, engine: Engine, backend: str):
        self.engine = engine
        self.backend = backend

    def begin(self, messages: list[Any], options: dict[str, Any], *, deltas: bool = True) -> TokenTurn:
        """Validate `options` and render `messages`: the turn, ready for its first generation (see `TokenTurn`
        for `deltas`)."""
        unknown = set(options) - {*RENDER_OPTIONS, *_SAMPLING_OPTIONS}
        if unknown:
            raise InvalidRequestError(
                f"Unknown option(s) {', '.join(sorted(unknown))}. Accepted: {', '.join([*RENDER_OPTIONS, *_SAMPLING_OPTIONS])}."
            )
        render_options = {name: options[name] for name in RENDER_OPTIONS if name in options}
        tools = normalize_tools(render_options.get("tools") or ())
        choice = ToolChoice.parse(options.get("tool_choice"), [spec.name for spec in tools])
        capabilities = self.engine.capabilities
        call_schema = None
        if choice.mode == "function" and capabilities.json_schema:
            call_schema = next(spec.parameters for spec in tools if spec.name == choice.name) or None
        if choice.mode == "none":
            # Harmony has no "tools offered but not callable": a model that sees no tools calls none.
            render_options["tools"] = None
        schema = json_schema_of(options.get("response_format"))
        if schema is not None and not capabilities.json_schema:
            raise InvalidRequestError(
                f"Backend {self.backend} does not support structured output (response_format). "
                "Use a backend that declares json_schema (vllm, llamacpp), or drop response_format."
            )
        sampling = {name: options[name] for name in _SAMPLING_FIELDS if options.get(name) is not None}
        stops = stop_list(options.get("stop"))
        check_prompt_cost(messages, render_options, capabilities.max_context)
        prompt = render(messages, **render_options)
        try:
            request = GenerationRequest(
                prompt_ids=prompt, stop_token_ids=stop_token_ids(), json_schema=schema, **sampling
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidRequestError(f"Invalid generation settings: {problems}.") from exc
        steering = CallSteering(choice, call_schema, capabilities.max_context)
        return TokenTurn(request, steering, deltas=deltas, stops=StopStrings(stops) if stops else None)

    def stream(self, messages: list[Any], options: dict[str, Any], *, deltas: bool = True) -> Iterator[StreamEvent]:
        """The events of one turn, generated with the engine's synchronous `generate`."""
        turn = self.begin(messages, options, deltas=deltas)
        request: GenerationRequest | None = turn.request
        while request is not None:
            chunks = self.engine.generate(request)
            try:
                for chunk in chunks:
                    yield from turn.feed(chunk)
                    if turn.interrupted:
                        break
            finally:
                # Stops the engine's work on a refused message (and frees the engine for the next request).
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            events, request = turn.resume()
            yield from events
        yield from turn.finish()

    async def astream(
        self, messages: list[Any], options: dict[str, Any], *, deltas: bool = True
    ) -> AsyncIterator[StreamEvent]:
        """Asynchronous twin of `stream`, generated with the engine's `agenerate`. The prompt is rendered in a
        worker thread: tokenizing a long prompt must not hold up the event loop (a server's other requests)."""
        turn = await asyncio.to_thread(self.begin, messages, options, deltas=deltas)
        async for event in self._generated(turn):
            yield event

    async def astart(self, messages: list[Any], options: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        """The turn rendered (in a worker thread) and its prompt checked against the context; then its events,
        generated as they are read."""
        turn = await asyncio.to_thread(self.begin, messages, options)
        self.engine.check_context(turn.request)
        return self._generated(turn)

    async def _generated(self, turn: TokenTurn) -> AsyncIterator[StreamEvent]:
        """The events of `turn`, generated with the engine's `agenerate`."""
        request: GenerationRequest | None = turn.request
        while request is not None:
            chunks = self.engine.agenerate(request)
            try:
                async for chunk in chunks:
                    for event in turn.feed(chunk):
                        yield event
                    if turn.interrupted:
                        break
            finally:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
            events, request = turn.resume()
            for event in events:
                yield event
        for event in turn.finish():
            yield event


#: Sampling options, as `GenerationRequest` names them (None leaves its default).
_SAMPLING_FIELDS = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "seed")
_SAMPLING_OPTIONS = (*_SAMPLING_FIELDS, "response_format", "tool_choice", "stop")


class TokenTurn:
    """One assistant turn in flight on a token engine: chunks in, events out, usage and timings at the end.

    `feed` takes each chunk the engine yields; once `interrupted` is set the caller stops that generation and
    calls `resume()`, which gives the events and request to go on with (a steered tool call), or `None` when
    the turn is over. `finish()` gives the last events, ending with `Done(reply)`.

    With `deltas=False` (`chat()`, which wants the reply only) and no call to steer into, the ids are parsed
    once, at `finish()`, instead of one by one between the engine's steps: the same parser on the same ids,
    but run while the processor's caches are warm rather than between two passes over the weights, which
    cost a small model several percent of its speed.
    """

    def __init__(
        self,
        request: GenerationRequest,
        steering: CallSteering,
        *,
        deltas: bool = True,
        stops: StopStrings | None = None,
    ):
        self.request = request
        self.steering = steering
        self.parser = ReplyParser()
        #: The `stop` strings watched on the final channel, if any; with them each id is parsed as it comes.
        self.stops = stops
        #: The content shown so far, when stop strings are watched (the reply's content, if one matched).
        self.shown: list[str] = []
        #: The ids not parsed yet, when parsing waits for `finish()`; `None` when each id is parsed as it comes.
        self.unparsed: list[int] | None = None if deltas or steering.active or stops else []
        self.prompt_tokens = len(request.prompt_ids)
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.finish_reason: str | None = None
        #: The model began a message the tool choice does not allow: steer before going on.
        self.steer_needed = False
        #: The turn is over whatever the engine does next: a stop id or `max_tokens` was reached. The hub
        #: enforces both itself, so an engine that overruns them cannot lengthen a reply.
        self.ended = False
        self.stop_ids = frozenset(request.stop_token_ids)

    @property
    def interrupted(self) -> bool:
        """Whether the current generation must stop here (the turn ended, or it needs steering)."""
        return self.steer_needed or self.ended

    def feed(self, chunk: GenerationChunk) -> list[StreamEvent]:
        """The events of the ids in `chunk`, up to the turn's end."""
        if chunk.token_ids and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if self.unparsed is not None:
            self._collect(chunk.token_ids, self.unparsed)
            return []
        events: list[StreamEvent] = []
        parser, steering, stop_ids = self.parser, self.steering, self.stop_ids
        budget = self.request.max_tokens
        for token_id in chunk.token_ids:
            if budget is not None and len(parser.token_ids) >= budget:
                self.finish_reason, self.ended = "length", True
                return events
            produced = parser.feed(token_id)
            if steering.active and steering.refuses(parser):
                # The events of the refused header (a wrong call's start) never reach the caller.
                self.steer_needed = True
                return events
            if self.stops is not None:
                produced = self._watched(produced)
                if self.stops.matched:
                    events.extend(produced)
                    self.finish_reason, self.ended = "stop", True
                    return events
            events.extend(produced)
            if token_id in stop_ids:
                self.finish_reason, self.ended = "stop", True
                return events
        return events

    def _watched(self, produced: list[StreamEvent]) -> list[StreamEvent]:
        """`produced` with the final channel's text passed through the stop strings: held back while it may
        begin one, cut where one appears (and nothing after it)."""
        stops = self.stops
        assert stops is not None
        events: list[StreamEvent] = []
        for event in produced:
            if stops.matched:
                break
            if isinstance(event, ContentDelta):
                header = self.parser.message_header()
                watched = header is None or header[0] != "commentary"  # a preamble is not the answer
                text = stops.feed(event.text) if watched else event.text
            else:
                text = stops.flush()  # another message began: what was held back cannot complete a stop
            if text:
                self.shown.append(text)
                events.append(ContentDelta(text))
            if not isinstance(event, ContentDelta):
                events.append(event)
        return events

    def _collect(self, token_ids: list[int], unparsed: list[int]) -> None:
        """Keep `token_ids` for parsing at `finish()`, up to the turn's end (`max_tokens` or a stop id)."""
        budget, stop_ids = self.request.max_tokens, self.stop_ids
        for token_id in token_ids:
            if budget is not None and len(unparsed) >= budget:
                self.finish_reason, self.ended = "length", True
                return
            unparsed.append(token_id)
            if token_id in stop_ids:
                self.finish_reason, self.ended = "stop", True
                return

    def resume(self) -> tuple[list[StreamEvent], GenerationRequest | None]:
        """After a generation stops: the events and request of the steered call, or `([], None)` when the
        turn is over."""
        if not self.steer_needed:
            return [], None
        self.steer_needed = False
        continuation = self.steering.continuation(self.parser, self.request)
        self.parser, self.finish_reason = continuation.parser, continuation.finish_reason
        if continuation.request is not None:
            self.stop_ids = frozenset(continuation.request.stop_token_ids)
        return continuation.events, continuation.request

    def finish(self) -> list[StreamEvent]:
        """The last events of the turn, ending with `Done(reply)` with usage and timings."""
        if self.unparsed:
            for token_id in self.unparsed:
                self.parser.feed(token_id)  # the events of each id are not wanted: only the reply is
            self.unparsed = []
        stopped = self.stops is not None and self.stops.matched
        # A stop string ends the answer mid-message: that is the request, not a truncated output.
        *events, done = self.parser.finish("length" if stopped else self.finish_reason)  # type: ignore[arg-type]
        assert isinstance(done, Done)
        update: dict[str, Any] = {}
        if self.stops is not None and stopped:
            events = [event for event in events if not isinstance(event, ContentDelta)]
            update["content"] = "".join(self.shown)
            if done.reply.finish_reason == "length":
                update["finish_reason"] = "stop"
        elif self.stops is not None:
            events = self._watched(events)
            held = self.stops.flush()  # the answer ended without completing a stop string
            if held:
                self.shown.append(held)
                events.append(ContentDelta(held))
        completion = len(done.reply.token_ids)
        update["usage"] = Usage(
            prompt_tokens=self.prompt_tokens, completion_tokens=completion, total_tokens=self.prompt_tokens + completion
        )
        update["timings"] = Timings.since(self.started, self.first_token_at, completion)
        return [*events, Done(done.reply.model_copy(update=update))]


async def _prepend(first: StreamEvent, rest: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    yield first
    async for event in rest:
        yield event


def json_schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema inside an OpenAI `response_format`, or `None` for plain text."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        body = response_format.get("json_schema") or {}
        schema = body.get("schema") if isinstance(body, dict) else None
        if isinstance(schema, dict):
            return schema
    raise InvalidRequestError(
        "response_format must be {'type': 'text'}, {'type': 'json_object'} or "
        f"{{'type': 'json_schema', 'json_schema': {{'name': ..., 'schema': {{...}}}}}}; got {response_format!r}."
    )


def message_list(messages: Sequence[Any]) -> list[Any]:
    """`messages` as a list; anything but a sequence of messages is an `InvalidRequestError`."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            "messages must be a list of dicts like [{'role': 'user', 'content': 'Hi'}], "
            f"got {type(messages).__name__}."
        )
    return list(messages)
