"""A gptoss_hub backend plugin for MyRuntime (here: llama-cpp-python, to be replaced by yours).

The hub renders harmony and parses the reply; a backend only loads weights and turns prompt ids into
completion ids. Everything marked RUNTIME is what changes for another runtime.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from gptoss_hub import (
    Backend,
    Capabilities,
    Engine,
    EngineInfo,
    GenerationChunk,
    GenerationRequest,
    LoadRequest,
    hookimpl,
    validate_options,
)
from gptoss_hub.errors import InvalidRequestError

DEFAULT_CONTEXT = 8192


class MyRuntimeOptions(BaseModel):
    """The options `gh.load(..., backend="myruntime", **options)` accepts; anything else is an error."""

    model_config = ConfigDict(extra="forbid")

    n_threads: int | None = None


def _weights(spec: Any) -> Path | None:
    """The file this runtime loads for `spec`, or `None` when it cannot load that kind of model."""
    if spec.kind == "reference":  # the tiny checkpoints the conformance kit runs on, exported to GGUF
        from gptoss_hub.testing import gguf_path

        return gguf_path(spec.name)
    if spec.kind == "gguf_file":
        return Path(spec.path)
    return None  # RUNTIME: repos and folders, if your runtime reads them


class MyRuntimeEngine(Engine):
    """One loaded model. `generate` may be called from several threads at once: a lock serves one at a time."""

    def __init__(self, path: Path, context: int, options: MyRuntimeOptions):
        from llama_cpp import Llama  # RUNTIME: imported here, so importing the plugin stays cheap

        self._llama = Llama(model_path=str(path), n_ctx=context, n_threads=options.n_threads, verbose=False)
        self._lock = threading.Lock()
        self.capabilities = Capabilities(streaming=True, max_context=context)
        self.info = EngineInfo(device="cpu", dtype="gguf", details={"path": str(path)})

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        budget = self.check_context(request)  # raises ContextLengthError when the prompt leaves no room
        stops = set(request.stop_token_ids)
        with self._lock:
            self._llama.set_seed(request.seed if request.seed is not None else 0xFFFFFFFF)
            # RUNTIME: sample from the prompt ids with the request's settings.
            tokens = self._llama.generate(
                request.prompt_ids,
                temp=0.0 if request.greedy else request.temperature,
                top_k=request.top_k,
                top_p=request.top_p,
                min_p=request.min_p,
                repeat_penalty=1.0,
                reset=True,
            )
            try:
                for produced, token in enumerate(tokens, start=1):
                    # The contract: a stop id is yielded and ends with "stop"; the last id the budget allows
                    # ends with "length".
                    if token in stops:
                        yield GenerationChunk([token], "stop")
                        return
                    yield GenerationChunk([token], "length" if produced >= budget else None)
                    if produced >= budget:
                        return
            finally:
                tokens.close()

    def close(self) -> None:
        self._llama.close()


class MyRuntimeBackend(Backend):
    """MyRuntime on the CPU."""

    name: ClassVar[str] = "myruntime"
    #: Below every built-in backend, so the hub picks it only when asked by name (see the dispatch table).
    rank: ClassVar[int] = 1
    description: ClassVar[str] = "MyRuntime on the CPU (a plugin)"
    device: ClassVar[str | None] = "cpu"

    def check(self, report: Any, spec: Any) -> list[str]:
        """Why this backend cannot run `spec` here: sentences a user can act on (empty when it can)."""
        reasons = []
        if importlib.util.find_spec("llama_cpp") is None:  # RUNTIME: is your runtime installed?
            reasons.append("MyRuntime is not installed: pip install llama-cpp-python.")
        if spec.kind not in ("reference", "gguf_file"):  # what _weights can load; check() builds nothing
            reasons.append(f"myruntime reads GGUF files and the tiny reference models, not a {spec.kind}.")
        return reasons

    def load(self, request: LoadRequest) -> Engine:
        options = validate_options(MyRuntimeOptions, dict(request.options), self.name)
        if request.device not in (None, "cpu"):
            raise InvalidRequestError(f"myruntime runs on the CPU, not {request.device!r}.")
        path = _weights(request.spec)
        if path is None:
            raise InvalidRequestError(f"myruntime cannot load {request.spec.name}: pass a .gguf file.")
        return MyRuntimeEngine(path, request.context or DEFAULT_CONTEXT, options)


@hookimpl
def gptoss_hub_register_backends(registry: Any) -> None:
    """Register the backend (the hub calls this through the entry point in pyproject.toml)."""
    registry.add(MyRuntimeBackend)
