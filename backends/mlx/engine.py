"""The MLX engine: token ids in, token ids out, through mlx-lm's gpt-oss model and KV caches.

The hub renders harmony and parses the reply; MLX evaluates ids and the hub's own sampler picks the next
one. All MLX work of an engine (loading, every generation, closing) runs on one thread of its own, as
`mlx_lm.server` does: MLX streams belong to the thread that made them. Callers on any thread hand it a
request and read the chunks it produces, one request at a time.

Decoding is pipelined as in `mlx_lm.generate`: the step that feeds token n is queued before token n is
read back, so MLX computes while Python hands the previous token over.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from gptoss_hub.engine import (
    Capabilities,
    Engine,
    EngineInfo,
    GenerationChunk,
    GenerationRequest,
    PromptStats,
    token_chunk,
)
from gptoss_hub.errors import BackendError, InvalidRequestError

__all__ = ["MlxEngine", "MlxThread", "mlx_thread"]

T = TypeVar("T")
_END = object()


class MlxThread:
    """The thread that does all MLX work of this process's engines, one job at a time.

    It lives as long as the process: MLX aborts the process at exit, now and then, once a thread that ran
    MLX work has ended, so the thread is never ended (it is a daemon) and every engine shares it.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[str, Callable[[], None]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="gptoss-hub-mlx", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import mlx.core as mx

        while True:
            device, job = self._jobs.get()
            with mx.stream(mx.gpu if device == "metal" else mx.cpu):
                job()

    def submit(self, device: str, job: Callable[[], None]) -> None:
        """Run `job` with `device` ("metal" or "cpu") as MLX's device, after the jobs before it; `job`
        reports its own results and must not raise."""
        self._jobs.put((device, job))

    def call(self, device: str, function: Callable[[], T]) -> T:
        """Run `function` on the thread with `device` as MLX's device and return its result (or raise its
        exception) here."""
        done: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

        def job() -> None:
            try:
                done.put((True, function()))
            except BaseException as exc:  # re-raised in the caller's thread
                done.put((False, exc))

        self.submit(device, job)
        ok, value = done.get()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]


_THREAD_LOCK = threading.Lock()
_THREAD: MlxThread | None = None


def mlx_thread() -> MlxThread:
    """The process's MLX thread, started on first use."""
    global _THREAD
    with _THREAD_LOCK:
        if _THREAD is None:
            _THREAD = MlxThread()
        return _THREAD


class MlxEngine(Engine):
    """Generates with one mlx-lm gpt-oss model, one request at a time, reusing its KV cache across requests."""

    def __init__(
        self,
        model: Any,
        *,
        device: str,
        max_context: int,
        prefill_step: int,
        dtype: str,
        quantization: str | None,
        details: dict[str, Any],
    ):
        from gptoss_hub.backends.mlx.prompt_cache import PromptCache

        self._device = device
        self._model = model
        self._prefill_step = prefill_step
        self._cache = mlx_thread().call(device, lambda: PromptCache(model))
        self.capabilities = Capabilities(
            streaming=True, batching=False, json_schema=False, logprobs=True, max_context=max_context
        )
        self.info = EngineInfo(
            device=device,
            dtype=dtype,
            quantization=quantization,
            attention="mlx sdpa with sinks",
            details={**details, "max_context": max_context, "prefill_step": prefill_step},
        )
        #: The last prompt's reuse figures (set when its first token is produced).
        self.last_prompt: PromptStats | None = None
        _OPEN_ENGINES.add(self)

    @classmethod
    def open(cls, folder: Path, *, device: str, max_context: int | None, prefill_step: int) -> MlxEngine:
        """Load the checkpoint in `folder` on `device` ("metal" or "cpu") on a new MLX thread."""
        from gptoss_hub.backends.mlx.loading import load_mlx_model

        thread = mlx_thread()
        model, config = thread.call(device, lambda: load_mlx_model(folder))
        native = int(config.get("max_position_embeddings") or 131072)
        quantization = _quantization(config)
        dtype = thread.call(device, lambda: str(model.model.embed_tokens.weight.dtype).removeprefix("mlx.core."))
        return cls(
            model,
            device=device,
            max_context=min(max_context or native, native),
            prefill_step=prefill_step,
            dtype=dtype,
            quantization=quantization,
            details={"checkpoint": str(folder)},
        )

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        """Evaluate what the cache does not hold of the prompt, then sample token by token."""
        if request.json_schema is not None:
            raise InvalidRequestError("The mlx backend does not constrain output to a JSON schema.")
        budget = self.check_context(request)
        if self._model is None:
            raise BackendError("This MLX engine was closed.")
        chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancelled = threading.Event()

        def job() -> None:
            try:
                self._decode(request, budget, chunks.put, cancelled)
            except BaseException as exc:  # handed to the caller's thread, re-raised there
                self._cache.reset()  # the layers may hold ids the cache did not record
                chunks.put(exc)
            finally:
                chunks.put(_END)

        mlx_thread().submit(self._device, job)
        try:
            while (item := chunks.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()  # a caller that stops reading stops the generation at its next token

    def _decode(
        self,
        request: GenerationRequest,
        budget: int,
        emit: Callable[[GenerationChunk], None],
        cancelled: threading.Event,
    ) -> None:
        import mlx.core as mx
        from gptoss_hub.backends.mlx.sampling import SamplingKeys, next_token, top_logprobs

        cache, prompt = self._cache, request.prompt_ids
        reused = cache.reuse(prompt)
        self._prefill(prompt[reused:-1])
        logits = self._step(prompt[-1:])
        cache.take_snapshot()
        keys = None if request.greedy else SamplingKeys(request.seed)
        token_array = next_token(logits, request, keys)
        mx.async_eval(token_array)
        self.last_prompt = PromptStats(len(prompt), reused, len(prompt) - reused)
        stops = set(request.stop_token_ids)
        for produced in range(1, budget + 1):
            if produced < budget:  # queue the next step before reading this token back
                following = self._step(token_array.reshape(1))
                following_token = next_token(following, request, keys)
                mx.async_eval(following_token)
            token = int(token_array.item())
            if produced < budget:
                cache.ids.append(token)
            entry = [top_logprobs(logits, token, request.logprobs)] if request.logprobs is not None else None
            chunk = token_chunk(token, produced, budget, token in stops)
            chunk.logprobs = entry
            emit(chunk)
            if chunk.finish_reason or cancelled.is_set():
                return
            logits, token_array = following, following_token

    def raw_decode_rate(self, prompt_ids: list[int], tokens: int) -> float | None:
        """mlx-lm's `generate_step` alone, greedy, `tokens` ids after `prompt_ids` from an empty cache (the
        engine's cache is emptied too, so the hub's next generation evaluates the whole prompt as well)."""
        model = self._model
        if model is None:
            raise BackendError("This MLX engine was closed.")

        def run() -> float:
            import mlx.core as mx
            from mlx_lm.generate import generate_step

            self._cache.reset()
            started = time.perf_counter()
            produced = sum(1 for _ in generate_step(mx.array(prompt_ids), model, max_tokens=tokens))
            return produced / (time.perf_counter() - started)

        return mlx_thread().call(self._device, run)

    def _prefill(self, ids: list[int]) -> None:
        """Feed `ids` to the cache in chunks of `prefill_step`, evaluating the caches after each (the logits
        of these positions are never needed, so MLX never computes them)."""
        import mlx.core as mx

        cache = self._cache
        for start in range(0, len(ids), self._prefill_step):
            piece = ids[start : start + self._prefill_step]
            self._model(mx.array([piece]), cache=cache.layers)
            mx.eval([layer.state for layer in cache.layers])
            cache.ids.extend(piece)

    def _step(self, ids: Any) -> Any:
        """Queue the model on `ids` (a list, or a lazy 1-element array fed back) and return the last
        position's logits, lazily. List ids are recorded in the cache's ids here; fed-back tokens by the
        caller once read."""
        import mlx.core as mx

        cache = self._cache
        tokens = mx.array([ids]) if isinstance(ids, list) else ids[None]
        logits = self._model(tokens, cache=cache.layers)[0, -1]
        if isinstance(ids, list):
            cache.ids.extend(ids)
        return logits

    def close(self) -> None:
        """Drop the model and the caches on the MLX thread and end it. Safe to call twice."""
        if self._model is None:
            return
        _OPEN_ENGINES.discard(self)
        model, cache = self._model, self._cache
        self._model = self._cache = None  # type: ignore[assignment]

        def release() -> None:
            # MLX arrays are freed on the thread that made them, before MLX itself shuts down.
            nonlocal model, cache
            model = cache = None
            import gc

            import mlx.core as mx

            gc.collect()
            mx.synchronize()
            mx.clear_cache()

        mlx_thread().call(self._device, release)


#: Engines not closed yet: closed at interpreter exit, while MLX can still free their arrays (freed later,
#: during the interpreter's teardown, MLX aborts the process).
_OPEN_ENGINES: weakref.WeakSet[MlxEngine] = weakref.WeakSet()


@atexit.register
def _close_open_engines() -> None:
    for engine in list(_OPEN_ENGINES):
        engine.close()


def _quantization(config: dict[str, Any]) -> str | None:
    """How the checkpoint's weights are quantized: "mxfp4" (released), "4-bit"/"8-bit" (MLX-converted)."""
    mlx_quantization = config.get("quantization")
    if isinstance(mlx_quantization, dict) and mlx_quantization.get("bits"):
        mode = mlx_quantization.get("mode", "affine")
        if mode == "mxfp4":  # the released experts (mlx-lm records them in this form)
            return "mxfp4"
        return f"{mlx_quantization['bits']}-bit {mode}, group {mlx_quantization.get('group_size')}"
    method = (config.get("quantization_config") or {}).get("quant_method")
    return str(method) if method else None
