"""`Model`: the harmony-aware chat, stream and tool loop shared by every backend.

The backend's engine only moves token ids; everything a user sees (rendering, parsing, tool calls,
usage, timings) happens here, once, so every backend behaves the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from gptoss_hub.engine import Capabilities, Engine, MessageEngine
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.events import Done, StreamEvent
from gptoss_hub.harmony import render
from gptoss_hub.reply import Reply, ToolCall
from gptoss_hub.sources import ModelSpec
from gptoss_hub.tools import Toolbox
from gptoss_hub.turn import message_list, turn_driver

if TYPE_CHECKING:
    from gptoss_hub.tools.browser import Browser
    from gptoss_hub.tools.python import PythonSession

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


class Model:
    """A loaded gpt-oss model: `chat`, `stream`, `achat`, `astream`, `run`. Made by `gptoss_hub.load()`."""

    def __init__(self, engine: Engine | MessageEngine, spec: ModelSpec, info: ModelInfo):
        self._engine = engine
        self._closed = False
        self.spec = spec
        self._info = info
        #: Temperature used when a call passes none: 1.0 as OpenAI recommends for gpt-oss, 0 (greedy)
        #: for the tiny reference checkpoints, which are trained to be decoded greedily. None for an
        #: endpoint: its server knows the model it serves, so its own default applies.
        self.default_temperature: float | None = {"reference": 0.0, "endpoint": None}.get(spec.kind, 1.0)
        #: How each turn is driven: render, generate and parse on a token engine; relayed from a remote one.
        self._driver = turn_driver(engine, info.backend)

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

    def _with_default_temperature(self, options: dict[str, Any]) -> dict[str, Any]:
        """`options` with this model's default temperature filled in (when it has one and none was given)."""
        if options.get("temperature") is None and self.default_temperature is not None:
            return {**options, "temperature": self.default_temperature}
        return options

    # -- the four ways to chat ----------------------------------------------------------------------

    def stream(self, messages: Sequence[Any], **options: Any) -> Iterator[StreamEvent]:
        """Chat, yielding typed events as tokens arrive; the last event is `Done(reply)`.

        Takes the same arguments as `chat()`.
        """
        return self._driver.stream(message_list(messages), self._with_default_temperature(options))

    def chat(self, messages: Sequence[Any], **options: Any) -> Reply:
        """Generate one assistant turn and return it parsed.

        Options: `tools`, `builtin_tools`, `reasoning_effort` ("low" | "medium" | "high"), `instructions`,
        `model_identity`, `knowledge_cutoff`, `current_date` (default today; `None` omits it),
        `max_tokens`, `temperature` (0 is greedy; default `default_temperature`), `top_p`, `top_k`, `min_p`, `seed`, `response_format`,
        `stop` (a string or up to 4: the answer ends before the first that appears on the final channel),
        `tool_choice` ("auto"; "none" hides the tools; "required" or `{"type": "function", "function": {"name": N}}`
        make the reply end in a call, see `gptoss_hub.tool_choice`).
        """
        done = None
        for event in self._driver.stream(message_list(messages), self._with_default_temperature(options), deltas=False):
            done = event
        assert isinstance(done, Done)
        return done.reply

    def astream(self, messages: Sequence[Any], **options: Any) -> AsyncIterator[StreamEvent]:
        """Asynchronous twin of `stream()`."""
        return self._driver.astream(message_list(messages), self._with_default_temperature(options))

    async def astart(self, messages: Sequence[Any], **options: Any) -> AsyncIterator[StreamEvent]:
        """`astream()`'s events, returned once the request is known to be valid: a bad option or a prompt past
        the context raises here, before anything is generated (a server answers it with an error status
        and sends its stream's headers as soon as this returns)."""
        return await self._driver.astart(message_list(messages), self._with_default_temperature(options))

    async def achat(self, messages: Sequence[Any], **options: Any) -> Reply:
        """Asynchronous twin of `chat()`."""
        done = None
        events = self._driver.astream(message_list(messages), self._with_default_temperature(options), deltas=False)
        async for event in events:
            done = event
        assert isinstance(done, Done)
        return done.reply

    def run(
        self,
        messages: Sequence[Any],
        tools: Sequence[Callable[..., Any]] = (),
        *,
        max_turns: int = 8,
        on_tool_result: Callable[[str, dict[str, Any] | None, str], None] | None = None,
        builtin_tools: Sequence[str] = (),
        python_session: PythonSession | None = None,
        browser: Browser | None = None,
        **options: Any,
    ) -> Reply:
        """The tool loop: chat, run the tools the model calls, feed results back, repeat.

        Function tools are the Python functions in `tools`. With `builtin_tools=["python"]` the model's python
        calls run in a sandboxed, stateful `PythonSession` opened for this conversation and closed with it;
        pass `python_session=` to share one across calls (it stays open; a stateless one,
        `PythonSession(stateful=False)`, makes the prompt say so). With `browser=` (a `Browser` over a search
        backend and a page fetcher; it keeps its page stack across calls) the browser tool is declared and
        the model's `browser.search`, `browser.open` and `browser.find` calls run in it; the answer's
        citations `【cursor†Lx-Ly】` become links in `content`, listed in `reply.citations`.

        Stops at the first reply without tool calls, or after `max_turns` model turns (that reply is
        returned, with `finish_reason="tool_calls"`). A tool that raises, or an unknown tool name, is
        answered with an error result so the model can recover. `on_tool_result(name, arguments, result)`
        is called after each tool runs (a python call's arguments are `{"code": ...}`). `reply.transcript`
        holds every message the loop added. A `tool_choice` applies to the first turn only (then "auto"), so
        a forced call cannot loop forever.
        """
        if max_turns < 1:
            raise InvalidRequestError(f"max_turns must be at least 1, got {max_turns}.")
        toolbox = Toolbox(tools)
        builtins = list(builtin_tools)
        if python_session is not None and "python" not in builtins:
            builtins.append("python")
        if browser is not None and "browser" not in builtins:
            builtins.append("browser")
        if "browser" in builtins and browser is None:
            raise InvalidRequestError(
                "builtin_tools=['browser'] needs a browser to run the calls in: pass browser=Browser(search, fetcher) "
                "(gptoss_hub.tools.browser)."
            )
        python = _PythonCalls(python_session, enabled="python" in builtins)
        if python_session is not None and not python_session.stateful:
            options["stateless_python"] = True
        if builtins:
            options["builtin_tools"] = builtins
        transcript: list[dict[str, Any]] = []
        try:
            for _ in range(max_turns):
                reply = self.chat([*messages, *transcript], tools=toolbox.specs, **options)
                options.pop("tool_choice", None)
                transcript.append(reply.message)
                if not reply.tool_calls:
                    break
                for call in reply.tool_calls:
                    if call.kind == "python":
                        tool_message = python.answer(call)
                    elif call.kind == "browser":
                        tool_message = _browser_answer(browser, call)
                    else:
                        tool_message = toolbox.answer(call)
                    if on_tool_result is not None:
                        arguments = {"code": call.code} if call.kind == "python" else call.arguments
                        on_tool_result(call.name, arguments, tool_message["content"])
                    transcript.append(tool_message)
        finally:
            python.close()
        update: dict[str, Any] = {"transcript": transcript}
        if browser is not None:
            from gptoss_hub.tools.browser.citations import cite

            cited, citations = cite(reply.content, browser.source_at)
            if citations:
                update |= {"content": cited, "citations": citations, "uncited_content": reply.content}
        return reply.model_copy(update=update)

    # -- lifecycle ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the backend's resources (processes, GPU memory). Safe to call twice."""
        self._closed = True
        self._engine.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _browser_answer(browser: Browser | None, call: ToolCall) -> dict[str, Any]:
    """The tool message answering a browser call: the browser's result, or, where no browser runs, that the
    model must go on without it."""
    if browser is None:
        text = "The browser tool is not available in this conversation; answer without it."
    else:
        text = browser.call(call.name, call.raw_arguments)
    return call.result_message(text)


class _PythonCalls:
    """The python calls of one `Model.run`: answered by the caller's session, or by one opened at the first call
    and closed with the run."""

    def __init__(self, session: PythonSession | None, *, enabled: bool):
        self.session, self.enabled, self.owned = session, enabled, False

    def answer(self, call: ToolCall) -> dict[str, Any]:
        """The tool message with the result of running the call's code."""
        if not self.enabled:
            text = "The python tool is not available in this conversation; answer without it."
        else:
            if self.session is None:
                from gptoss_hub.tools.python import PythonSession

                self.session, self.owned = PythonSession(), True
            text = self.session.run(call.code or "").text
        return call.result_message(text)

    def close(self) -> None:
        if self.owned and self.session is not None:
            self.session.close()
