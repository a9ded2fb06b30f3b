"""The vLLM engine: vLLM's asynchronous engine (`AsyncLLM`, v1 API) in this process, fed token ids.

vLLM's engine runs its scheduler and model in child processes and talks to them from an asyncio event
loop it is bound to. That loop runs here in one background thread, so the engine serves callers from
any thread or event loop: `generate` (blocking) and `agenerate` (async) both submit requests to it, and
vLLM batches whatever is in flight continuously. Harmony stays with the hub: prompts are token ids and
replies come back as token ids (no detokenizing in vLLM).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import os
import queue
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gptoss_hub.engine import Capabilities, Engine, EngineInfo, GenerationChunk, GenerationRequest, validate_options
from gptoss_hub.errors import BackendError, InvalidRequestError

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import LoadRequest
    from gptoss_hub.sources import ModelSpec

__all__ = ["VllmEngine", "VllmOptions", "engine_arguments", "load_vllm_engine"]

#: Context length when the caller names none: the hub-wide default, capped by the model's.
DEFAULT_MAX_MODEL_LEN = 8192
#: GiB of KV cache vLLM's CPU build reserves when `VLLM_CPU_KVCACHE_SPACE` is unset (its own default is 4).
DEFAULT_CPU_KV_CACHE_GIB = 4
#: The share of each GPU's memory vLLM reserves (its own default).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
_request_ids = itertools.count()
#: What a model whose engine process died says (calls raise it, `Model.info.status` shows it).
_DEAD = "vLLM's engine process died"
#: Engines still open, closed at interpreter exit: later, vLLM's own finalizer runs while modules are being
#: torn down and can fail, leaving its processes to notice on their own that the parent is gone.
_open_engines: weakref.WeakSet[VllmEngine] = weakref.WeakSet()


def _close_open_engines() -> None:
    for engine in list(_open_engines):
        engine.close()


def _close_first_at_exit() -> None:
    """(Re-)register `_close_open_engines` so it runs before every exit hook registered so far.

    Exit hooks run last registered first, and multiprocessing's, registered once vLLM is imported,
    terminates the engine's processes: after it, vLLM would report a closing engine as a dead one.
    """
    atexit.unregister(_close_open_engines)
    atexit.register(_close_open_engines)


class VllmOptions(BaseModel):
    """Options `gh.load(..., backend="vllm", **options)` accepts; vLLM's own names and meanings."""

    model_config = ConfigDict(extra="forbid")

    #: GPUs each model replica is split across (tensor parallel); default: as few as hold the model.
    tensor_parallel_size: int | None = Field(default=None, ge=1)
    #: Pipeline stages (layers split across GPUs or nodes).
    pipeline_parallel_size: int = Field(default=1, ge=1)
    #: Model replicas serving requests side by side.
    data_parallel_size: int = Field(default=1, ge=1)
    #: "mp" (one node, processes) or "ray" (several nodes, through a running Ray cluster).
    distributed_executor_backend: Literal["mp", "ray"] | None = None
    #: Share of each GPU's memory vLLM may use (weights plus KV cache).
    gpu_memory_utilization: float = Field(default=DEFAULT_GPU_MEMORY_UTILIZATION, gt=0.0, le=1.0)
    #: Longest prompt plus reply in tokens; default 8192. vLLM's name for the hub-wide `max_context`
    #: (`gh.load(..., max_context=…)`); pass either.
    max_model_len: int | None = Field(default=None, ge=1)
    #: Weights and activations: "auto" (vLLM's choice for the checkpoint and device), "bfloat16", "float32", …
    dtype: str = "auto"
    #: KV cache storage: "auto" (the model's dtype), "fp8", …
    kv_cache_dtype: str = "auto"
    #: Skip CUDA graph capture: slower decoding, faster start.
    enforce_eager: bool = False
    #: Requests batched at once.
    max_num_seqs: int | None = Field(default=None, ge=1)
    enable_prefix_caching: bool = True
    #: CPU build only: GiB of RAM for the KV cache (sets `VLLM_CPU_KVCACHE_SPACE` unless already set).
    cpu_kv_cache_gib: int | None = Field(default=None, ge=1)
    #: Several nodes without Ray (the `mp` executor): how many, this one's rank (0 is the head, which serves),
    #: and the head's address and port every node connects to.
    nnodes: int = Field(default=1, ge=1)
    node_rank: int = Field(default=0, ge=0)
    master_addr: str | None = None
    master_port: int | None = Field(default=None, ge=1, le=65535)


def parse_options(request: LoadRequest) -> VllmOptions:
    """Validate the request's options, with an error that lists what is accepted; `max_model_len` is the
    context asked for either way (`max_context` or `max_model_len`)."""
    parsed = validate_options(VllmOptions, dict(request.options), "vllm")
    return parsed.model_copy(update={"max_model_len": request.context_tokens(parsed.max_model_len, "max_model_len")})


def runs_on(report: HardwareReport) -> str | None:
    """Where the installed vLLM runs here: "cuda", "rocm" or "cpu"; `None` when it cannot."""
    build = report.runtime_builds.get("vllm")
    if build is None:
        return None
    apis = {a.api for a in report.accelerators}
    for api in ("cuda", "rocm"):
        if api in build.devices and api in apis:
            return api
    return "cpu" if "cpu" in build.devices else None


def default_tensor_parallel(report: HardwareReport, needed_bytes: int | None, utilization: float) -> int:
    """One GPU when the model fits one; otherwise the fewest (a power of two, as attention heads divide)
    whose memory holds it, up to every GPU there is."""
    gpus = [a for a in report.accelerators if a.api in ("cuda", "rocm")]
    if not gpus or not needed_bytes:
        return 1
    per_gpu = min(a.memory_total_bytes or 0 for a in gpus) * utilization
    size = 1
    while size < len(gpus) and size * per_gpu < needed_bytes:
        size *= 2
    return min(size, len(gpus))


def engine_arguments(model: str, parsed: VllmOptions, *, tensor_parallel_size: int, device: str) -> dict[str, Any]:
    """The `AsyncEngineArgs` keyword arguments for `model`, options passed through unchanged."""
    arguments: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": tensor_parallel_size,
        "pipeline_parallel_size": parsed.pipeline_parallel_size,
        "data_parallel_size": parsed.data_parallel_size,
        "distributed_executor_backend": parsed.distributed_executor_backend,
        # The default context never goes past what the checkpoint supports (vLLM refuses that).
        "max_model_len": parsed.max_model_len or min(DEFAULT_MAX_MODEL_LEN, _trained_context(model)),
        "dtype": parsed.dtype,
        "kv_cache_dtype": parsed.kv_cache_dtype,
        "enforce_eager": parsed.enforce_eager,
        "enable_prefix_caching": parsed.enable_prefix_caching,
        "disable_log_stats": True,
    }
    if device != "cpu":
        arguments["gpu_memory_utilization"] = parsed.gpu_memory_utilization
    if parsed.max_num_seqs:
        arguments["max_num_seqs"] = parsed.max_num_seqs
    if parsed.nnodes > 1:
        arguments |= {"nnodes": parsed.nnodes, "node_rank": parsed.node_rank}
        arguments |= {name: value for name in ("master_addr", "master_port") if (value := getattr(parsed, name))}
    return arguments


def split_reasons(report: HardwareReport, spec: ModelSpec, parsed: VllmOptions, device: str | None) -> list[str]:
    """Why the parallel layout `parsed` asks for cannot run `spec` here (`parallel.parallel_reasons`)."""
    from gptoss_hub.backends.vllm.parallel import parallel_reasons

    from gptoss_hub.shape import read_shape

    return parallel_reasons(
        report,
        spec,
        read_shape(spec).shape,
        device,
        tensor=parsed.tensor_parallel_size,
        pipeline=parsed.pipeline_parallel_size,
        data=parsed.data_parallel_size,
        executor=parsed.distributed_executor_backend,
        nnodes=parsed.nnodes,
        node_rank=parsed.node_rank,
        enforce_eager=parsed.enforce_eager,
    )


def load_vllm_engine(request: LoadRequest) -> Engine:
    """Fetch the checkpoint if needed and start vLLM's engine on it, on `request.device` ("cpu" for vLLM's CPU
    build, or the GPU API, "cuda" or "rocm"; `None` is whatever the installed build runs on here)."""
    from gptoss_hub.memory import DEFAULT_CONTEXT_TOKENS, vllm_memory
    from gptoss_hub.shape import read_shape

    parsed = parse_options(request)
    spec, report = request.spec, request.report
    device = runs_on(report)
    if device is None:
        raise InvalidRequestError("vLLM is not installed in a build that runs here; see `gptoss-hub plan`.")
    if request.device not in (None, device):
        raise InvalidRequestError(f"The installed vLLM runs on {device} here, not {request.device!r}.")
    needed = None
    reading = read_shape(spec)
    if reading.shape is not None and device != "cpu":
        context = parsed.max_model_len or DEFAULT_CONTEXT_TOKENS
        needed = vllm_memory(reading, context, on_gpu=True, available=None, available_what="").needed_bytes
    tensor_parallel = parsed.tensor_parallel_size or default_tensor_parallel(
        report, needed, parsed.gpu_memory_utilization
    )
    reasons = split_reasons(report, spec, parsed.model_copy(update={"tensor_parallel_size": tensor_parallel}), device)
    if reasons:
        raise InvalidRequestError(" ".join(reasons))
    if device == "cpu":
        # vLLM's CPU build sizes its KV cache from this variable when its engine process starts.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(parsed.cpu_kv_cache_gib or DEFAULT_CPU_KV_CACHE_GIB))
        ranks = tensor_parallel * parsed.pipeline_parallel_size * parsed.data_parallel_size // parsed.nnodes
        if ranks > 1 and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
            from gptoss_hub.backends.vllm.parallel import cpu_thread_binding

            # Each rank its own cores: left to itself, vLLM looks for a NUMA node per rank and fails on a
            # machine with one ("Not enough allowed NUMA nodes to bind threads").
            os.environ["VLLM_CPU_OMP_THREADS_BIND"] = cpu_thread_binding(ranks, sorted(os.sched_getaffinity(0)))
    folder = spec.checkpoint_dir()
    arguments = engine_arguments(str(folder), parsed, tensor_parallel_size=tensor_parallel, device=device)
    if parsed.node_rank > 0:
        from gptoss_hub.backends.vllm.nodes import WorkerNode

        return WorkerNode.start(arguments | {"device": device})  # a follower: its workers, no engine of its own
    return VllmEngine.start(arguments, device=device)


def _trained_context(folder: str) -> int:
    """The checkpoint's `max_position_embeddings` (131072 for the released models)."""
    try:
        return int(json.loads((Path(folder) / "config.json").read_text())["max_position_embeddings"])
    except (OSError, KeyError, ValueError):
        return DEFAULT_MAX_MODEL_LEN


def _leave_ray() -> None:
    """Disconnect from the Ray cluster vLLM joined for this engine: its workers (actors) and placement group
    go with the connection, instead of holding the cluster's GPUs until this process exits."""
    import sys

    ray = sys.modules.get("ray")  # imported by vLLM when it used Ray; nothing to leave otherwise
    if ray is not None and ray.is_initialized():
        ray.shutdown()


class VllmEngine(Engine):
    """Continuous batching over vLLM's `AsyncLLM`, running in a background event loop."""

    def __init__(self, llm: Any, loop: asyncio.AbstractEventLoop, thread: threading.Thread, arguments, device: str):
        self._llm = llm
        self._loop = loop
        self._thread = thread
        self._dead: str | None = None
        #: Requests running on the engine's loop, so `close()` can end them with an error instead of a hang.
        self._running: set[asyncio.Task[Any]] = set()
        max_len = int(llm.model_config.max_model_len)
        self.capabilities = Capabilities(
            streaming=True, batching=True, json_schema=True, logprobs=True, max_context=max_len
        )
        self.info = EngineInfo(
            device=device,
            dtype=str(llm.model_config.dtype).removeprefix("torch."),
            quantization=getattr(llm.model_config, "quantization", None),
            attention="vllm",
            details={k: v for k, v in arguments.items() if k != "model"} | {"checkpoint": arguments["model"]},
        )
        _open_engines.add(self)
        _close_first_at_exit()

    @classmethod
    def start(cls, arguments: dict[str, Any], *, device: str) -> VllmEngine:
        """Start vLLM's engine with `AsyncEngineArgs(**arguments)` (about 20 s for a tiny model on a CPU)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="gptoss-hub-vllm", daemon=True)
        thread.start()

        async def create() -> Any:
            # AsyncLLM binds its output handler to the running loop: create it inside ours. vLLM is first
            # imported here too: one of its modules keeps the traceback of an optional import it tried, and
            # with it every frame on the importing stack; had that been this thread's, the frame holding the
            # engine would outlive `close()` and vLLM's finalizer would fail at interpreter exit.
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM

            return AsyncLLM.from_engine_args(AsyncEngineArgs(**arguments))

        try:
            llm = asyncio.run_coroutine_threadsafe(create(), loop).result()
        except Exception as exc:
            loop.call_soon_threadsafe(loop.stop)
            raise BackendError(f"vLLM could not start on {arguments['model']}: {exc}") from exc
        return cls(llm, loop, thread, arguments, device)

    # -- requests -----------------------------------------------------------------------------------

    def _sampling_params(self, request: GenerationRequest, budget: int) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        return SamplingParams(
            temperature=0.0 if request.greedy else request.temperature,
            top_p=request.top_p,
            top_k=request.top_k if request.top_k > 0 else -1,
            min_p=request.min_p,
            seed=request.seed,
            max_tokens=budget,
            stop_token_ids=list(request.stop_token_ids),
            logprobs=request.logprobs,
            # Compact JSON, where the structured-output backend honours it (with free whitespace a model can
            # pad until the budget runs out); vLLM's CPU build at the pinned version does not.
            structured_outputs=StructuredOutputsParams(json=request.json_schema, disable_any_whitespace=True)
            if request.json_schema
            else None,
            output_kind=RequestOutputKind.DELTA,
            detokenize=False,
            skip_special_tokens=False,
            # The hub's stop ids decide, except under a schema: vLLM ends a completed schema with the eos.
            ignore_eos=request.json_schema is None,
        )

    async def _pump(self, request: GenerationRequest, put: Any) -> None:
        """Run one request on the engine's loop, handing each chunk (then `None`, or an error) to `put`."""
        from vllm.inputs import TokensPrompt

        request_id = f"gptoss-hub-{next(_request_ids)}"
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            if self._llm is None:  # closed between submitting and starting
                raise BackendError("This vLLM engine was closed.")
            budget = self.check_context(request)
            params = self._sampling_params(request, budget)
            stops = set(request.stop_token_ids)
            async for output in self._llm.generate(
                TokensPrompt(prompt_token_ids=request.prompt_ids), params, request_id
            ):
                completion = output.outputs[0]
                reason = None
                if completion.finish_reason is not None:
                    last = completion.token_ids[-1] if completion.token_ids else None
                    reason = "stop" if completion.finish_reason == "stop" or last in stops else "length"
                logprobs = None
                if request.logprobs is not None and completion.logprobs:
                    logprobs = [{t: float(lp.logprob) for t, lp in entry.items()} for entry in completion.logprobs]
                put(GenerationChunk(list(completion.token_ids), reason, logprobs))
            put(None)
        except asyncio.CancelledError:
            if self._llm is not None:
                await self._llm.abort(request_id)
            else:  # cancelled by `close()`; a caller that stopped reading ignores this
                _deliver(put, BackendError("The model was closed while this request was running."))
            raise
        except Exception as exc:  # handed to the caller's thread or loop, re-raised there
            _deliver(put, self._translate(exc))
        finally:
            self._running.discard(task)

    def _translate(self, exc: Exception) -> Exception:
        from vllm.exceptions import VLLMValidationError
        from vllm.v1.engine.exceptions import EngineDeadError

        if isinstance(exc, VLLMValidationError):
            return InvalidRequestError(f"vLLM rejected the request: {exc}")
        if isinstance(exc, EngineDeadError):
            self._dead = _DEAD
            return BackendError(f"{self._dead}; load the model again (see the log above for the cause).")
        if isinstance(exc, (InvalidRequestError, BackendError)):
            return exc
        if isinstance(exc, ValueError):
            return InvalidRequestError(f"vLLM rejected the request: {exc}")
        return BackendError(f"vLLM failed: {exc}")

    def _check_alive(self) -> None:
        if self._llm is None:
            raise BackendError("This vLLM engine was closed.")
        if self._dead is None and getattr(self._llm, "errored", False):
            self._dead = _DEAD
        if self._dead is not None:
            raise BackendError(f"{self._dead}; load the model again.")

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        """Submit the request to the engine's loop and yield its chunks as they arrive."""
        self._check_alive()
        results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        future = asyncio.run_coroutine_threadsafe(self._pump(request, results.put), self._loop)
        try:
            while (item := results.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            future.cancel()  # a caller that stops early aborts the request in vLLM

    async def agenerate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Submit the request from any event loop; chunks cross back to it as they arrive."""
        self._check_alive()
        caller = asyncio.get_running_loop()
        results: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            caller.call_soon_threadsafe(results.put_nowait, item)

        future = asyncio.run_coroutine_threadsafe(self._pump(request, put), self._loop)
        try:
            while (item := await results.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            future.cancel()

    def problem(self) -> str | None:
        """`None` while the engine takes requests; otherwise why not (closed, its processes died)."""
        try:
            self._check_alive()
        except BackendError as exc:
            return str(exc)
        return None

    def close(self, timeout: float = 30.0) -> None:
        """Shut vLLM's engine down and wait until its processes have exited. Safe to call twice."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        _open_engines.discard(self)
        import psutil

        before = {p.pid: p for p in psutil.Process().children(recursive=True) if _is_engine_process(p)}
        try:
            # Requests still running end with an error, and vLLM's output handler stops before its engine
            # process does (in the other order it reports the engine's exit as a failure).
            asyncio.run_coroutine_threadsafe(self._stop_tasks(llm), self._loop).result(timeout=timeout)
            llm.shutdown()
            del llm  # the last reference: vLLM's finalizer runs now, not at interpreter exit
            # vLLM's own tasks on the loop (its socket readers) end before the loop does.
            asyncio.run_coroutine_threadsafe(_cancel_other_tasks(), self._loop).result(timeout=timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()
        _, alive = psutil.wait_procs(list(before.values()), timeout=timeout)
        for process in alive:  # shutdown asks politely; what is still there after the timeout is stopped
            process.kill()
        psutil.wait_procs(alive, timeout=5)
        if self.info.details.get("distributed_executor_backend") == "ray":
            _leave_ray()

    async def _stop_tasks(self, llm: Any) -> None:
        handler = getattr(llm, "output_handler", None)
        tasks = [*self._running, *([handler] if handler is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _cancel_other_tasks() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _deliver(put: Any, item: Any) -> None:
    """Hand `item` to a caller that may be gone (its event loop closed after it stopped reading)."""
    with contextlib.suppress(RuntimeError):
        put(item)


def _is_engine_process(process: Any) -> bool:
    try:
        return any(part.startswith("VLLM::") for part in process.cmdline()[:1]) or process.name().startswith("VLLM")
    except Exception:  # it exited meanwhile
        return False
