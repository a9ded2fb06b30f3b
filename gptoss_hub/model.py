"""`Model`: the harmony-aware chat, stream and tool loop shared by every backend.

The backend's engine only moves token ids; everything a user sees (rendering, parsing, tool calls,
usage, timings) happens here, once, so every backend behaves the same.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gptoss_hub.engine import Capabilities, Engine, GenerationChunk, GenerationRequest, MessageEngine
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.events import Done, StreamEvent
from gptoss_hub.harmony import ReplyParser, render, stop_token_ids
from gptoss_hub.reply import Reply, Timings, Usage
from gptoss_hub.sources import ModelSpec
from gptoss_hub.tool_choice import ToolChoice, stop_after_call_ids
from gptoss_hub.tools import Toolbox, normalize_tools

__all__ = ["Model", "ModelInfo"]


class ModelInfo(BaseModel):
    """How a loaded model runs, and why it runs that way."""

    model_config = ConfigDict(frozen=True)

    model: str
    source: str
    backend: str
    #: The plugin that provides the backend (entry-point name).
    plugin: str
    device: str
    dtype: str
    quantization: str | None = None
    attention: str | None = None
    capabilities: dict[str, Any] = Field(default_factory=dict)
    #: Why this backend was chosen, and why each higher-ranked one was not.
    reasons: list[str] = Field(default_factory=list)
    #: Every fallback taken while loading, as "wanted -> running" (empty when the first choice loaded as
    #: planned); a backend that falls back says why in `details["fallback"]` (`wanted`, `running`, `why`).
    fallbacks: list[str] = Field(default_factory=list)
    #: The dispatch plan: every candidate with its rank, rejections and rank adjustments.
    plan: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    #: "ready", "closed", or why the engine can no longer serve (e.g. its process died).
    status: str = "ready"


def _json_schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema inside an OpenAI `response_format`, or `None` for plain text."""
    if response_format is None or response_format.get("type") == "text":
        return None
    if response_format.get("type") == "json_object":
        return {"type": "object"}
    if response_format.get("type") == "json_schema":
        body = response_format.get("json_schema") or {}
        schema = body.get("schema")
        if isinstance(schema, dict):
            return schema
    raise InvalidRequestError(
        "response_format must be {'type': 'text'}, {'type': 'json_object'} or "
        f"{{'type': 'json_schema', 'json_schema': {{'name': ..., 'schema': {{...}}}}}}; got {response_format!r}."
    )


def _message_list(messages: Sequence[Any]) -> list[Any]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidRequestError(
            "messages must be a list of dicts like [{'role': 'user', 'content': 'Hi'}], "
            f"got {type(messages).__name__}."
        )
    return list(messages)


class _Turn:
    """One assistant turn in flight: feeds engine chunks to the parser and adds usage and timings.

    Under a `tool_choice` that forces a call, `feed` reports when the model starts a message the choice
    does not allow (`steer_needed`); `steer()` then drops that message and builds the request that
    continues with the wanted call's header (see `gptoss_hub.tool_choice`).
    """

    def __init__(
        self,
        request: GenerationRequest,
        choice: ToolChoice,
        call_schema: dict[str, Any] | None = None,
        max_context: int | None = None,
    ):
        self.parser = ReplyParser()
        self.request = request
        self.choice = choice
        self.max_context = max_context
        #: Steering happens once per turn: a model that refuses the call again ends the turn with an error.
        self.steered = False
        #: The forced tool's parameters schema, on engines that constrain output to a JSON schema.
        self.call_schema = call_schema
        self.prompt_tokens = len(request.prompt_ids)
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.finish_reason: str | None = None
        self.steer_needed = False
        #: Set when the turn is over whatever the engine does next: a stop id or `max_tokens` was reached.
        #: The hub enforces both itself, so an engine that overruns them cannot lengthen a reply.
        self.ended = False
        self.stop_ids = frozenset(request.stop_token_ids)

    def feed(self, chunk: GenerationChunk) -> list[StreamEvent]:
        if chunk.token_ids and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        events: list[StreamEvent] = []
        forcing = self.choice.forces_a_call
        budget = self.request.max_tokens
        for token_id in chunk.token_ids:
            if budget is not None and len(self.parser.token_ids) >= budget:
                self.finish_reason, self.ended = "length", True
                return events
            produced = self.parser.feed(token_id)
            if forcing and (header := self.parser.message_header()) and not self.choice.accepts(*header):
                # The events of the refused header (a wrong call's start) never reach the caller.
                self.steer_needed = True
                return events
            events.extend(produced)
            if token_id in self.stop_ids:
                self.finish_reason, self.ended = "stop", True
                return events
        return events

    def steer(self) -> tuple[list[StreamEvent], GenerationRequest | None]:
        """Drop the refused message and write the wanted call's header; returns its events and the
        request that continues from there, or `None` when the turn ends here instead: the call was made
        already, the model refused it even with its header written, or there is no room left."""
        kept = self.parser.token_ids[: self.parser.message_start]
        self.parser = ReplyParser()
        for token_id in kept:
            self.parser.feed(token_id)  # already streamed: replayed to rebuild the parser only
        self.steer_needed, self.finish_reason = False, "stop"
        if self.parser.tool_calls:
            # The wanted call is complete (the model ended it with <|end|>); what it began after is dropped.
            return [], None
        if self.steered:
            self.parser.record_error(
                "tool_choice_unmet",
                f"the model did not make {self.choice.wanted}, as tool_choice asked, even with the call's header "
                "written for it",
            )
            return [], None
        self.steered = True
        header = self.choice.header_ids(new_message=bool(kept))
        budget = self.request.max_tokens
        prompt_length = len(self.request.prompt_ids) + len(kept) + len(header)
        if (budget is not None and budget - len(kept) - len(header) < 1) or (
            self.max_context is not None and prompt_length >= self.max_context
        ):
            # No room for the call's header and one token of arguments: the turn ends where it was cut.
            self.finish_reason = "length"
            return [], None
        events = [event for token_id in header for event in self.parser.feed(token_id)]
        follow_up = self.request.model_copy(
            update={
                "prompt_ids": [*self.request.prompt_ids, *kept, *header],
                "max_tokens": None if budget is None else budget - len(kept) - len(header),
                # The arguments follow the tool's schema where the engine can enforce one (a response_format
                # shapes the final answer, never a tool's arguments).
                "json_schema": self.call_schema,
                # The steered message is the call: whichever terminator the model writes, the turn ends there.
                "stop_token_ids": [*self.request.stop_token_ids, *stop_after_call_ids()],
            }
        )
        self.stop_ids = frozenset(follow_up.stop_token_ids)
        return events, follow_up

    def finish(self) -> list[StreamEvent]:
        events = self.parser.finish(self.finish_reason)  # type: ignore[arg-type]
        done = events[-1]
        assert isinstance(done, Done)
        completion = len(done.reply.token_ids)
        reply = done.reply.model_copy(
            update={
                "usage": Usage(
                    prompt_tokens=self.prompt_tokens,
                    completion_tokens=completion,
                    total_tokens=self.prompt_tokens + completion,
                ),
                "timings": Timings.since(self.started, self.first_token_at, completion),
            }
        )
        return [*events[:-1], Done(reply)]


class Model:
    """A loaded gpt-oss model: `chat`, `stream`, `achat`, `astream`, `run`. Made by `gptoss_hub.load()`."""

    def __init__(self, engine: Engine, spec: ModelSpec, info: ModelInfo):
        self._engine = engine
        self._closed = False
        self.spec = spec
        self._info = info
        #: Temperature used when a call passes none: 1.0 as OpenAI recommends for gpt-oss, 0 (greedy)
        #: for the tiny reference checkpoints, which are trained to be decoded greedily. None for an
        #: endpoint: its server knows the model it serves, so its own default applies.
        self.default_temperature: float | None = {"reference": 0.0, "endpoint": None}.get(spec.kind, 1.0)

    @property
    def info(self) -> ModelInfo:
        """How the model runs and why; `status` says whether it can still serve."""
        problem = "closed" if self._closed else self._engine.problem()
        return self._info if problem is None else self._info.model_copy(update={"status": problem})

    @property
    def capabilities(self) -> Capabilities:
        """What the engine behind this model declares it can do."""
        return self._engine.capabilities

    def __repr__(self) -> str:
        return f"<gptoss_hub.Model {self.info.model!r} on {self.info.backend} ({self.info.device}, {self.info.dtype})>"

    # -- building a request -------------------------------------------------------------------------

    def prompt_ids(self, messages: Sequence[Any], **render_options: Any) -> list[int]:
        """The prompt ids `chat()` would send: `gptoss_hub.harmony.render` with the same render options
        (`tools`, `builtin_tools`, `reasoning_effort`, `instructions`, `model_identity`, `knowledge_cutoff`,
        `current_date`, `keep_reasoning`)."""
        return render(messages, **render_options)

    def _request(
        self,
        messages: Sequence[Any],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float = 1.0,
        top_k: int = 0,
        min_p: float = 0.0,
        seed: int | None = None,
        response_format: dict[str, Any] | None = None,
        tool_choice: Any = None,
        **render_options: Any,
    ) -> tuple[GenerationRequest, ToolChoice, dict[str, Any] | None]:
        messages = _message_list(messages)
        tools = normalize_tools(render_options.get("tools") or ())
        choice = ToolChoice.parse(tool_choice, [spec.name for spec in tools])
        call_schema = None
        if choice.mode == "function" and self.capabilities.json_schema:
            call_schema = next(spec.parameters for spec in tools if spec.name == choice.name) or None
        if choice.mode == "none":
            # Harmony has no "tools offered but not callable": a model that sees no tools calls none.
            render_options = {**render_options, "tools": None}
        schema = _json_schema_of(response_format)
        if schema is not None and not self.capabilities.json_schema:
            raise InvalidRequestError(
                f"Backend {self.info.backend} does not support structured output (response_format). "
                "Use a backend that declares json_schema (vllm, llamacpp), or drop response_format."
            )
        prompt = self.prompt_ids(messages, **render_options)
        try:
            request = GenerationRequest(
                prompt_ids=prompt,
                max_tokens=max_tokens,
                temperature=temperature if temperature is not None else (self.default_temperature or 0.0),
                top_p=top_p,
                top_k=top_k,
                min_p=min_p,
                seed=seed,
                stop_token_ids=stop_token_ids(),
                json_schema=schema,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidRequestError(f"Invalid generation settings: {problems}.") from exc
        return request, choice, call_schema

    def _remote_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """`options` for a message engine, with this model's default temperature filled in (if it has one)."""
        if options.get("temperature") is None and self.default_temperature is not None:
            options = {**options, "temperature": self.default_temperature}
        return options

    # -- the four ways to chat ----------------------------------------------------------------------

    def stream(self, messages: Sequence[Any], **options: Any) -> Iterator[StreamEvent]:
        """Chat, yielding typed events as tokens arrive; the last event is `Done(reply)`.

        Takes the same arguments as `chat()`.
        """
        if isinstance(self._engine, MessageEngine):  # a remote server renders and parses harmony itself
            yield from self._engine.stream_messages(_message_list(messages), self._remote_options(options))
            return
        request, choice, call_schema = self._request(messages, **options)
        turn = _Turn(request, choice, call_schema, self.capabilities.max_context)
        while request is not None:
            generation = self._engine.generate(request)
            try:
                for chunk in generation:
                    yield from turn.feed(chunk)
                    if turn.steer_needed or turn.ended:
                        break
            finally:
                # Stops the engine's work on a refused message (and frees the engine for the next request).
                close = getattr(generation, "close", None)
                if close is not None:
                    close()
            request = None
            if turn.steer_needed:
                events, request = turn.steer()
                yield from events
        yield from turn.finish()

    def chat(self, messages: Sequence[Any], **options: Any) -> Reply:
        """Generate one assistant turn and return it parsed.

        Options: `tools`, `builtin_tools`, `reasoning_effort` ("low" | "medium" | "high"), `instructions`,
        `model_identity`, `knowledge_cutoff`, `current_date` (default today; `None` omits it),
        `max_tokens`, `temperature` (0 is greedy; default `default_temperature`), `top_p`, `top_k`, `min_p`, `seed`, `response_format`,
        `tool_choice` ("auto"; "none" hides the tools; "required" or `{"type": "function", "function": {"name": N}}`
        make the reply end in a call, see `gptoss_hub.tool_choice`).
        """
        done = None
        for event in self.stream(messages, **options):
            done = event
        assert isinstance(done, Done)
        return done.reply

    async def astream(self, messages: Sequence[Any], **options: Any) -> AsyncIterator[StreamEvent]:
        """Asynchronous twin of `stream()`."""
        if isinstance(self._engine, MessageEngine):
            async for event in self._engine.astream_messages(_message_list(messages), self._remote_options(options)):
                yield event
            return
        request, choice, call_schema = self._request(messages, **options)
        turn = _Turn(request, choice, call_schema, self.capabilities.max_context)
        while request is not None:
            generation = self._engine.agenerate(request)
            try:
                async for chunk in generation:
                    for event in turn.feed(chunk):
                        yield event
                    if turn.steer_needed or turn.ended:
                        break
            finally:
                aclose = getattr(generation, "aclose", None)
                if aclose is not None:
                    await aclose()
            request = None
            if turn.steer_needed:
                events, request = turn.steer()
                for event in events:
                    yield event
        for event in turn.finish():
            yield event

    async def achat(self, messages: Sequence[Any], **options: Any) -> Reply:
        """Asynchronous twin of `chat()`."""
        done = None
        async for event in self.astream(messages, **options):
            done = event
        assert isinstance(done, Done)
        return done.reply

    def run(
        self,
        messages: Sequence[Any],
        tools: Sequence[Callable[..., Any]],
        *,
        max_turns: int = 8,
        on_tool_result: Callable[[str, dict[str, Any] | None, str], None] | None = None,
        **options: Any,
    ) -> Reply:
        """The tool loop: chat, call the Python functions the model asks for, feed results back, repeat.

        Stops at the first reply without tool calls, or after `max_turns` model turns (that reply is
        returned, with `finish_reason="tool_calls"`). A tool that raises, or an unknown tool name, is
        answered with an error result so the model can recover. `on_tool_result(name, arguments, result)`
        is called after each tool runs. `reply.transcript` holds every message the loop added. A
        `tool_choice` applies to the first turn only (then "auto"), so a forced call cannot loop forever.
        """
        if max_turns < 1:
            raise InvalidRequestError(f"max_turns must be at least 1, got {max_turns}.")
        toolbox = Toolbox(tools)
        transcript: list[dict[str, Any]] = []
        for _ in range(max_turns):
            reply = self.chat([*messages, *transcript], tools=toolbox.specs, **options)
            options.pop("tool_choice", None)
            transcript.append(reply.message)
            if not reply.tool_calls:
                break
            for call in reply.tool_calls:
                tool_message = toolbox.answer(call)
                if on_tool_result is not None:
                    on_tool_result(call.name, call.arguments, tool_message["content"])
                transcript.append(tool_message)
        return reply.model_copy(update={"transcript": transcript})

    # -- lifecycle ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the backend's resources (processes, GPU memory). Safe to call twice."""
        self._closed = True
        self._engine.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
