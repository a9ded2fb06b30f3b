"""The contract between the hub and a runtime: a `Backend` loads, and returns an engine of one of two kinds.

- An `Engine` turns token ids into token ids. It never sees a chat message: the hub renders harmony, hands
  it a `GenerationRequest` of prompt ids, and parses the ids it yields back (`gptoss_hub.turn.TokenTurns`).
  Every local runtime is one.
- A `MessageEngine` takes chat messages: a server that renders and parses harmony itself (the `openai`
  backend). The hub relays the events it yields (`gptoss_hub.turn.RemoteTurns`).

Both share `EngineBase`: what they can do (`capabilities`), how they run (`info`), whether they still can
(`problem()`) and `close()`. docs/architecture.md writes the whole contract down.
"""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gptoss_hub.errors import ContextLengthError, InvalidRequestError

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport
    from gptoss_hub.memory import MemoryEstimate
    from gptoss_hub.sources import ModelSpec

__all__ = [
    "Backend",
    "Capabilities",
    "Engine",
    "EngineBase",
    "EngineInfo",
    "GenerationChunk",
    "GenerationRequest",
    "LoadRequest",
    "MessageEngine",
    "PromptStats",
    "RepoFiles",
    "token_chunk",
    "validate_options",
]


#: Temperatures below this sample greedily.
GREEDY_TEMPERATURE = 1e-5


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do; the conformance kit and the server read these, so declare only what works."""

    streaming: bool = True
    #: Serves several requests at once (continuous batching), rather than one after another.
    batching: bool = False
    json_schema: bool = False
    grammar: bool = False
    logprobs: bool = False
    seeded_sampling: bool = True
    #: Longest prompt plus completion, in tokens; `None` when unknown.
    max_context: int | None = None


class GenerationRequest(BaseModel):
    """One completion to generate from prompt token ids. Values are validated here, once, for every backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_ids: list[int] = Field(min_length=1)
    #: Most tokens to generate; `None` means up to the end of the context.
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=100.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    #: 0 keeps every token.
    top_k: int = Field(default=0, ge=0)
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    #: Seeds the sampler; a 63-bit number at most (what every runtime's generator takes).
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    #: Generation ends after emitting any of these (the stop id is yielded, and counted).
    stop_token_ids: list[int] = Field(default_factory=list)
    #: Constrain the output to this JSON schema (only on engines declaring `json_schema`).
    json_schema: dict[str, Any] | None = None
    #: Return this many top logprobs per token (only on engines declaring `logprobs`).
    logprobs: int | None = Field(default=None, ge=0, le=20)

    @property
    def greedy(self) -> bool:
        """Whether sampling reduces to argmax: top_k 1, or a temperature below `GREEDY_TEMPERATURE` (dividing
        logits by one that small overflows to infinity; its limit is argmax, as vLLM treats it too)."""
        return self.temperature < GREEDY_TEMPERATURE or self.top_k == 1


@dataclass
class GenerationChunk:
    """Ids an engine produced since the last chunk; the last chunk carries `finish_reason`."""

    token_ids: list[int]
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: list[dict[int, float]] | None = None


OptionsT = TypeVar("OptionsT", bound=BaseModel)
#: What `gh.load()` takes for every backend and hands over as `LoadRequest` fields, not as options.
_LOAD_REQUEST_FIELDS = ("device", "max_context")


def validate_options(options_class: type[OptionsT], options: dict[str, Any], backend: str) -> OptionsT:
    """`options` (a backend's `load()` keyword arguments) validated by `options_class`; an unknown or
    invalid option is an `InvalidRequestError` naming it and listing what `backend` accepts."""
    try:
        return options_class(**options)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = error["loc"][0] if error["loc"] else "options"
        own = [name for name in options_class.model_fields if name not in _LOAD_REQUEST_FIELDS]
        raise InvalidRequestError(
            f"Invalid option for {backend}: {where}: {error['msg']}. Accepted: {', '.join(own) or 'none'}; "
            "and on every backend device= and max_context=."
        ) from exc


def token_chunk(token: int, produced: int, budget: int, stop: bool) -> GenerationChunk:
    """The chunk for one generated id, the `produced`-th: it finishes the generation with "stop" when `stop`
    (a stop id), else with "length" when it uses up the `budget`; otherwise it leaves it open."""
    if stop:
        return GenerationChunk([token], "stop")
    return GenerationChunk([token], "length" if produced >= budget else None)


class EngineInfo(BaseModel):
    """How an engine runs the model, for `Model.info`."""

    model_config = ConfigDict(frozen=True)

    device: str
    dtype: str
    quantization: str | None = None
    attention: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class EngineBase(abc.ABC):
    """What every backend's `load()` returns, whichever its kind (`Engine` or `MessageEngine`)."""

    capabilities: Capabilities = Capabilities()
    info: EngineInfo

    def problem(self) -> str | None:
        """Why the engine cannot serve requests any more (its process died, …), or `None` while it can."""
        return None

    def close(self) -> None:  # noqa: B027 - a no-op default is right for engines holding no resources
        """Release the runtime's resources. Safe to call twice."""


class Engine(EngineBase):
    """Loaded weights that generate token ids from token ids.

    Subclasses implement `generate` (a synchronous iterator) and may override `agenerate` when the
    runtime is natively asynchronous. The default `agenerate` runs `generate` in a worker thread so an
    event loop is never blocked. The hub may call either from several threads at once: an engine that
    serves one request at a time holds a lock.
    """

    @abc.abstractmethod
    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        """Yield chunks of generated ids until a stop id, `max_tokens` or the context end."""

    def raw_decode_rate(self, prompt_ids: list[int], tokens: int) -> float | None:
        """Tokens per second of the runtime's own generation loop, without the hub, greedily generating
        `tokens` ids after `prompt_ids` on the loaded model (`gptoss-hub bench` sets it beside the hub's);
        `None` for a runtime without one (the default)."""
        return None

    async def agenerate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Asynchronous twin of `generate`."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        done = object()
        stop = threading.Event()

        def deliver(item: Any) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
                return True
            except RuntimeError:  # the consumer's event loop has closed: nobody is left to receive it
                return False

        def produce() -> None:
            try:
                for chunk in self.generate(request):
                    if not deliver(chunk) or stop.is_set():
                        break
            except BaseException as exc:  # handed to the consumer, re-raised there
                deliver(exc)
            finally:
                deliver(done)

        worker = threading.Thread(target=produce, name="gptoss-hub-generate", daemon=True)
        worker.start()
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()  # a consumer that leaves early ends the generation at the next chunk

    def check_context(self, request: GenerationRequest) -> int:
        """Raise `ContextLengthError` if the prompt leaves no room; return how many tokens may be generated."""
        limit = self.capabilities.max_context
        if limit is None:
            return request.max_tokens or 2**31
        room = limit - len(request.prompt_ids)
        if room < 1:
            raise ContextLengthError(
                f"The prompt has {len(request.prompt_ids)} tokens but the context holds {limit}. "
                "Shorten the conversation or load the model with a larger context."
            )
        return min(room, request.max_tokens) if request.max_tokens else room


class MessageEngine(EngineBase):
    """An engine that takes chat messages rather than token ids: a remote OpenAI-compatible server, which
    renders and parses harmony itself. `Model` hands it the messages and options of each call and relays
    the events it yields (the last one `Done` with the reply)."""

    @abc.abstractmethod
    def astream_messages(self, messages: list[Any], options: dict[str, Any]) -> AsyncIterator[Any]:
        """Yield the `gptoss_hub.events` of one assistant turn for `messages`; the last is `Done(reply)`.

        `options` are `Model.chat`'s keyword arguments as the caller passed them.
        """

    def stream_messages(self, messages: list[Any], options: dict[str, Any]) -> Iterator[Any]:
        """Synchronous twin of `astream_messages` (the default runs it on a private event loop)."""
        loop = asyncio.new_event_loop()
        events = self.astream_messages(messages, options)
        try:
            while True:
                try:
                    yield loop.run_until_complete(events.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(events, "aclose", None)  # an async generator's; a plain async iterator has none
            if aclose is not None:
                loop.run_until_complete(aclose())
            loop.close()


@dataclass(frozen=True)
class LoadRequest:
    """What a backend's `load()` receives; `gptoss_hub.load()` builds it once, for every backend."""

    #: The model: `spec.kind` is `reference` (the tiny checkpoints, `spec.name` "tiny-harmony" or
    #: "tiny-random"), `hf_repo` (`repo_id`, `revision`), `local_dir` or `gguf_file` (`path`), or `endpoint`
    #: (`url`); `spec.name` is what sentences call it. `spec.local_dir()` downloads a repo when needed.
    spec: ModelSpec
    #: The machine (this one, as probed).
    report: HardwareReport
    #: The device asked for (`gh.load(device=…)`: "cpu", "cuda", "cuda:1", "metal", …); `None` lets the
    #: backend choose. A backend that cannot run there raises `InvalidRequestError`.
    device: str | None = None
    #: The context asked for in tokens (`gh.load(max_context=…)`), validated; `None`: the backend's default.
    #: The plan budgeted memory for `spec.context_tokens`: this, or the hub's default of 8192.
    context: int | None = None
    #: The backend's own options as the caller passed them; validate them with `validate_options`.
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: ModelSpec, report: HardwareReport, *, device: str | None = None, **options: Any) -> LoadRequest:
        """A request from `gh.load()`'s keyword arguments: `max_context` becomes `context`, the rest `options`."""
        context = options.pop("max_context", None)
        if context is not None and (isinstance(context, bool) or not isinstance(context, int) or context < 1):
            raise InvalidRequestError(f"max_context must be a positive number of tokens, got {context!r}.")
        return cls(spec=spec, report=report, device=device, context=context, options=options)

    def context_tokens(self, native: int | None = None, native_name: str = "") -> int | None:
        """The context asked for, through `max_context` or the backend's own name for it (`native`, e.g.
        llama.cpp's `n_ctx`); both at once must agree."""
        if native is not None and self.context is not None and native != self.context:
            raise InvalidRequestError(f"Pass {native_name} or max_context, not both (they mean the same).")
        return native if native is not None else self.context


@dataclass(frozen=True)
class PromptStats:
    """What an engine that keeps its KV cache between requests (llama.cpp, MLX) did with the last prompt, as
    its `last_prompt`: the prompt's length, the prefix it already held, and how many ids it evaluated (the
    prompt minus the prefix it reused; the whole prompt when it could reuse none)."""

    prompt_tokens: int
    reused_tokens: int
    evaluated_tokens: int


@dataclass(frozen=True)
class RepoFiles:
    """The files of a Hugging Face repo a backend's `load()` fetches for a model: what `gptoss-hub pull`
    downloads ahead of time for that backend."""

    repo_id: str
    revision: str | None
    #: Picks, from the names of the repo's files, those `load()` would fetch.
    choose: Callable[[list[str]], list[str]]


class Backend(abc.ABC):
    """A way to run gpt-oss: a runtime plus a configuration of it (e.g. `transformers/cpu`).

    Registered by plugins through `gptoss_hub_register_backends`. Importing a backend's module must stay
    cheap: heavy runtimes are imported inside `load()`.
    """

    #: Unique name, `family/variant` where a runtime offers several ways (`transformers/cpu`).
    name: ClassVar[str]
    #: Higher runs first when several backends can run a model (the dispatch policy: docs/architecture.md).
    rank: ClassVar[int] = 0
    #: One line for `gptoss-hub plan` and `doctor`.
    description: ClassVar[str] = ""
    #: Serves many requests at once (continuous batching): preferred when planning with `serving=True`.
    batching: ClassVar[bool] = False
    #: The one device a backend bound to one runs on ("cpu", "cuda", "rocm", "metal"); `None` for a backend
    #: that runs wherever it is asked. `gh.load(device=…)` sets aside the backends bound to another.
    device: ClassVar[str | None] = None

    @property
    def family(self) -> str:
        """The runtime name, the part of `name` before '/'; `backend="transformers"` picks within it."""
        return self.name.split("/", 1)[0]

    @abc.abstractmethod
    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """Reasons this backend cannot run `spec` on this machine; an empty list means it can.

        Each reason is a sentence the user can act on ("pip install 'gptoss-hub[transformers]'").
        """

    def check_options(self, report: HardwareReport, spec: ModelSpec, options: Mapping[str, Any]) -> list[str]:
        """Reasons the backend cannot run `spec` here with these `load()` options, known before loading (a
        parallel size the model's shape cannot be split by, more devices than the machine has, a combination
        the runtime is known to break on); an empty list means none. Options the backend does not take are
        `load()`'s to refuse, not a reason here."""
        return []

    def memory_estimate(self, report: HardwareReport, spec: ModelSpec) -> MemoryEstimate | None:
        """The memory this backend would hold for `spec` here, with what the device has for it, or `None`
        when it holds no weights on this machine or the model's size cannot be told.

        `gptoss-hub plan` shows it for each candidate; a backend's `check()` rejects a model that does not
        fit through `gptoss_hub.memory.memory_reasons`. The models in `gptoss_hub.memory` compute it from
        the shape `gptoss_hub.shape.read_shape(spec)` reads from the model's files.
        """
        return None

    def repo_files(self, spec: ModelSpec) -> RepoFiles | None:
        """The Hugging Face repo files `load()` would download for `spec`, or `None` when it downloads nothing.

        By default: for a repo id, the checkpoint's safetensors, config and tokenizer (every file but the
        original weights, Metal files and GGUF conversions). A backend that reads other files overrides it.
        """
        from gptoss_hub.sources import checkpoint_files

        if spec.kind != "hf_repo" or spec.repo_id is None:
            return None
        return RepoFiles(spec.repo_id, spec.revision, checkpoint_files)

    def rank_adjustment(self, report: HardwareReport, spec: ModelSpec) -> tuple[int, str] | None:
        """A change to `rank` on this machine, with why (shown by `gptoss-hub plan`), or `None`.

        For a backend that runs in many places but is the first choice in only some of them.
        """
        return None

    @abc.abstractmethod
    def load(self, request: LoadRequest) -> Engine | MessageEngine:
        """Load `request.spec` and return a ready engine: an `Engine` (token ids in, token ids out) for a local
        runtime, a `MessageEngine` for a server that speaks harmony itself. Unknown or invalid options raise
        `InvalidRequestError`; what is missing to run here, `BackendUnavailableError`."""
