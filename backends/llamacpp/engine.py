"""The llama.cpp engine: token ids in, token ids out, through llama-cpp-python's `Llama`.

The hub renders harmony and parses the reply; llama.cpp only evaluates ids and samples. `Llama.generate`
keeps the ids it has evaluated and, given a prompt sharing a prefix with them, evaluates only the rest,
so a multi-turn chat costs the new turn, not the whole history. The KV cache of sliding-window layers
is kept at full size (`swa_full`) by default: otherwise llama.cpp cannot cut it back to a shared
prefix and re-evaluates the whole prompt.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from gptoss_hub.encoding import FIRST_SPECIAL_ID
from gptoss_hub.engine import (
    Capabilities,
    Engine,
    EngineInfo,
    GenerationChunk,
    GenerationRequest,
    PromptStats,
    token_chunk,
    validate_options,
)
from gptoss_hub.errors import BackendError, InvalidRequestError

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import LoadRequest

__all__ = ["LlamaCppEngine", "LlamaCppOptions", "PromptStats", "gpu_api", "load_llamacpp_engine"]

#: The context llama.cpp allocates when the caller names none (or the model's own, if shorter); 0 asks for the
#: model's full context.
DEFAULT_N_CTX = 8192


class LlamaCppOptions(BaseModel):
    """Options `gh.load(..., backend="llamacpp", **options)` accepts (llama.cpp's own names where it has one)."""

    model_config = ConfigDict(extra="forbid")

    #: Layers offloaded to the GPU: -1 all, 0 none; default all when the build and machine have a GPU.
    n_gpu_layers: int | None = None
    #: Context length in tokens (prompt plus reply); 0 means the model's full context. Default 8192.
    #: llama.cpp's name for the hub-wide `max_context` (`gh.load(..., max_context=…)`); pass either.
    n_ctx: int | None = None
    #: Threads for generation and for prompt evaluation; default: the usable cores.
    n_threads: int | None = None
    n_threads_batch: int | None = None
    #: Tokens evaluated per batch during prompt processing.
    n_batch: int = 512
    #: Flash attention (with attention sinks); default on for GPU offload, off on the CPU.
    flash_attn: bool | None = None
    use_mmap: bool = True
    #: Full-size KV cache for sliding-window layers, so a shared prompt prefix can be reused.
    swa_full: bool = True
    #: Which GGUF to use: "mxfp4", "Q8_0", "f16" … for repos and folders; "f32" or "mxfp4" for the tiny
    #: reference checkpoints. Default "mxfp4" (the published files), "f32" for reference checkpoints.
    quantization: str | None = None
    #: One exact file name in a repo or folder, instead of choosing by quantization.
    filename: str | None = None
    #: llama.cpp's own logging on stderr.
    verbose: bool = False


def parse_options(request: LoadRequest) -> LlamaCppOptions:
    """Validate the request's options and device, with an error that lists what is accepted."""
    parsed = validate_options(LlamaCppOptions, dict(request.options), "llamacpp")
    if request.device not in (None, "cpu", "cuda", "rocm", "metal", "vulkan"):
        raise InvalidRequestError(f"llamacpp runs on cpu, cuda, rocm, metal or vulkan, not {request.device!r}.")
    return parsed


def gpu_api(report: HardwareReport) -> str | None:
    """The GPU interface this llama.cpp build can use on this machine ("cuda", "rocm", "metal"), or `None`."""
    apis = {a.api for a in report.accelerators if a.api}
    for api in ("cuda", "rocm", "metal"):
        if api in apis and report.runtime_supports("llama_cpp", api):
            return api
    return None


def load_llamacpp_engine(request: LoadRequest) -> LlamaCppEngine:
    """Find (fetch, export) the GGUF for `request.spec` and load it with llama.cpp on `request.device`."""
    from gptoss_hub.backends.llamacpp.files import local_gguf

    parsed = parse_options(request)
    spec, report, device = request.spec, request.report, request.device
    api = gpu_api(report)
    if device not in (None, "cpu") and device != api:
        raise InvalidRequestError(
            f"device={device!r} is not available to this llama.cpp build here "
            f"({'it can use ' + api if api else 'it runs on the CPU only'}). Rebuild llama-cpp-python with "
            "CMAKE_ARGS='-DGGML_CUDA=on' (CUDA) or '-DGGML_HIP=on' (ROCm), or pass device='cpu'."
        )
    on_gpu = device != "cpu" and api is not None
    n_gpu_layers = parsed.n_gpu_layers if parsed.n_gpu_layers is not None else (-1 if on_gpu else 0)
    offloaded = on_gpu and n_gpu_layers != 0
    quantization = parsed.quantization or ("f32" if spec.kind == "reference" else "mxfp4")
    path = local_gguf(spec, quantization, parsed.filename)
    n_ctx = request.context_tokens(parsed.n_ctx, "n_ctx")
    if n_ctx is None:
        # The hub's default, unless the model was made for less: llama.cpp warns of a context past training.
        n_ctx = min(DEFAULT_N_CTX, _trained_context(path) or DEFAULT_N_CTX)
    threads = parsed.n_threads or report.cpu.cores or None
    settings: dict[str, Any] = {
        "n_gpu_layers": n_gpu_layers,
        "n_ctx": n_ctx,
        "n_threads": threads,
        "n_threads_batch": parsed.n_threads_batch or threads,
        "n_batch": parsed.n_batch,
        "flash_attn": offloaded if parsed.flash_attn is None else parsed.flash_attn,
        "use_mmap": parsed.use_mmap,
        "swa_full": parsed.swa_full,
        "verbose": parsed.verbose,
    }
    return LlamaCppEngine.open(path, settings, device=api if offloaded else "cpu")


class LlamaCppEngine(Engine):
    """Generates with one `llama_cpp.Llama`, one request at a time (concurrent callers queue)."""

    def __init__(self, llama: Any, *, path: Path, settings: dict[str, Any], device: str):
        self._llama = llama
        n_ctx = llama.n_ctx()
        self.capabilities = Capabilities(
            streaming=True, batching=False, json_schema=True, logprobs=False, max_context=n_ctx
        )
        file_type = _file_type(llama)
        self.info = EngineInfo(
            device=device,
            dtype=file_type,
            quantization=file_type,
            attention="flash" if settings.get("flash_attn") else "llama.cpp",
            details={"gguf": str(path), **{k: v for k, v in settings.items() if k != "verbose"}, "n_ctx": n_ctx},
        )
        self.last_prompt: PromptStats | None = None
        #: Control-token ids kept out of schema-constrained output (see `_text_only`), found on first use.
        self._special_ids: Any = None
        # One context, one sequence: llama.cpp's state is not re-entrant.
        self._lock = threading.Lock()
        # Count the ids handed to llama.cpp for evaluation: `Llama.generate` evaluates through `eval`.
        self._evaluated = 0
        evaluate = llama.eval

        def counting_eval(tokens: Any) -> None:
            self._evaluated += len(tokens)
            evaluate(tokens)

        llama.eval = counting_eval

    @classmethod
    def open(cls, path: Path, settings: dict[str, Any], *, device: str) -> LlamaCppEngine:
        """Load the GGUF at `path` with llama.cpp `settings` (`Llama` keyword arguments)."""
        from gptoss_hub.backends.llamacpp import native_log
        from llama_cpp import Llama

        native_log.install(echo=bool(settings.get("verbose")))
        try:
            llama = Llama(model_path=str(path), **settings)
        except Exception as exc:
            said = native_log.recent_warnings()
            detail = f"; llama.cpp said: {said[-2000:]}" if said else ""
            raise BackendError(f"llama.cpp could not load {path}: {exc}{detail}") from exc
        return cls(llama, path=path, settings=settings, device=device)

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        """Evaluate the part of the prompt not already in the cache, then sample token by token."""
        import llama_cpp

        if request.logprobs is not None:
            raise InvalidRequestError("The llamacpp backend does not return logprobs.")
        budget = self.check_context(request)
        stops = set(request.stop_token_ids)
        grammar = None
        if request.json_schema is not None:
            grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(request.json_schema), verbose=False)
        greedy = request.greedy
        with self._lock:
            llama = self._llama
            if llama is None:
                raise BackendError("This llama.cpp engine was closed.")
            llama.set_seed(request.seed if request.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED)
            reusable = _shared_prefix(llama, request.prompt_ids)
            self._evaluated = 0
            tokens = llama.generate(
                request.prompt_ids,
                temp=0.0 if greedy else request.temperature,
                top_k=request.top_k,
                top_p=request.top_p,
                min_p=request.min_p,
                typical_p=1.0,
                repeat_penalty=1.0,
                grammar=grammar,
                logits_processor=self._text_only() if grammar is not None else None,
            )
            produced = 0
            try:
                for token in tokens:
                    if produced == 0:
                        self._record_prompt(request, reusable)
                    produced += 1
                    # A schema-constrained reply ends when the grammar does, at llama.cpp's end-of-generation.
                    stop = token in stops or (
                        grammar is not None and llama_cpp.llama_vocab_is_eog(llama._model.vocab, token)
                    )
                    chunk = token_chunk(token, produced, budget, stop)
                    yield chunk
                    if chunk.finish_reason:
                        return
            finally:
                tokens.close()

    def raw_decode_rate(self, prompt_ids: list[int], tokens: int) -> float | None:
        """`Llama.generate` alone, greedy, `tokens` ids after `prompt_ids` (its prompt cache applies, as it
        does for the hub)."""
        with self._lock:
            llama = self._llama
            if llama is None:
                raise BackendError("This llama.cpp engine was closed.")
            started = time.perf_counter()
            produced = 0
            generator = llama.generate(
                prompt_ids, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0, repeat_penalty=1.0
            )
            for _ in generator:
                produced += 1
                if produced == tokens:
                    break
            generator.close()
            return produced / (time.perf_counter() - started)

    def _text_only(self) -> Any:
        """A logits processor that keeps harmony's control tokens out of schema-constrained output.

        llama.cpp's grammar matches a token by its text, and `<|end|>` spells characters a JSON string may
        hold; sampled there, it ends the reply inside the arguments. The ids llama.cpp treats as the end of
        generation stay: the grammar itself allows them only once the JSON is complete.
        """
        import llama_cpp
        import numpy

        if self._special_ids is None:
            assert self._llama is not None
            vocab = self._llama._model.vocab
            self._special_ids = numpy.array(
                [
                    token
                    for token in range(FIRST_SPECIAL_ID, self._llama.n_vocab())
                    if not llama_cpp.llama_vocab_is_eog(vocab, token)
                ]
            )
        banned = self._special_ids

        def text_only(_: Any, scores: Any) -> Any:
            scores[banned] = -numpy.inf
            return scores

        return llama_cpp.LogitsProcessorList([text_only])

    def _record_prompt(self, request: GenerationRequest, reusable: int) -> None:
        # Called at the first sampled token, when only the prompt has been evaluated.
        self.last_prompt = PromptStats(
            prompt_tokens=len(request.prompt_ids), reused_tokens=reusable, evaluated_tokens=self._evaluated
        )

    def close(self) -> None:
        """Free the llama.cpp context and weights. Safe to call twice."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None


def _trained_context(path: Path) -> int | None:
    """The context the GGUF at `path` says its model was made for, or `None` when it cannot be read."""
    from gptoss_hub.shape import read_shape
    from gptoss_hub.sources import ModelSpec

    if not path.is_file():
        return None
    reading = read_shape(ModelSpec(source=str(path), kind="gguf_file", name=path.name, path=path))
    return reading.shape.context_length if reading.shape is not None else None


def _shared_prefix(llama: Any, prompt: list[int]) -> int:
    """How many leading prompt ids llama.cpp already holds and can reuse (what `Llama.generate` reuses).

    At most all but the last: sampling needs fresh logits, so a fully cached prompt re-evaluates its last id.
    """
    held = llama.input_ids[: llama.n_tokens].tolist()
    shared = 0
    for a, b in zip(held, prompt, strict=False):
        if a != b:
            break
        shared += 1
    return min(shared, len(prompt) - 1)


def _file_type(llama: Any) -> str:
    """The GGUF's `general.file_type` as a short name ("f32", "bf16", "mxfp4-moe")."""
    description = llama.metadata.get("general.file_type")
    names = {"0": "f32", "32": "bf16", "38": "mxfp4-moe"}
    return names.get(str(description), f"gguf file type {description}" if description else "gguf")
