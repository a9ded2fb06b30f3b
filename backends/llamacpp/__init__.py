"""The llama.cpp backend: gpt-oss from GGUF files through llama-cpp-python.

The first choice on Apple Metal and on machines without a GPU (DESIGN.md section 6); on CUDA and ROCm
it runs when built for them (`CMAKE_ARGS="-DGGML_CUDA=on" pip install llama-cpp-python`), below the
transformers GPU variants. Harmony stays with the hub: llama.cpp receives token ids and returns token ids.

Options (`gh.load(model, backend="llamacpp", **options)`): see `LlamaCppOptions` — `n_gpu_layers`,
`n_ctx`/`max_context`, `n_threads`, `flash_attn`, `use_mmap`, `swa_full`, `quantization`, `filename`.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, ClassVar

from gptoss_hub.engine import Backend
from gptoss_hub.memory import DEFAULT_CONTEXT_TOKENS, GIB, SHAPES, required_bytes
from gptoss_hub.plugins import hookimpl

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import Engine
    from gptoss_hub.plugins import BackendRegistry
    from gptoss_hub.sources import ModelSpec

__all__ = ["LlamaCppBackend"]

_INSTALL = "Install the llamacpp extra: pip install 'gptoss-hub[llamacpp]'"


class LlamaCppBackend(Backend):
    """llama.cpp with GGUF weights (MXFP4 experts), on the CPU, Metal, CUDA or ROCm."""

    name: ClassVar[str] = "llamacpp"
    rank: ClassVar[int] = 50
    description: ClassVar[str] = "llama.cpp with GGUF weights (MXFP4 experts); CPU, Metal, CUDA or ROCm builds"

    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """Reasons llama.cpp cannot run `spec` here: not installed, not a GGUF source, too little memory."""
        from gptoss_hub.backends.llamacpp.engine import gpu_api
        from gptoss_hub.backends.llamacpp.files import source_problem

        reasons = []
        if "llama_cpp" not in report.runtimes:
            reasons.append(
                f"llama-cpp-python is not installed. {_INSTALL} (for CUDA set CMAKE_ARGS='-DGGML_CUDA=on' first)."
            )
        problem = source_problem(spec)
        if problem:
            reasons.append(problem)
        if spec.kind == "reference" and importlib.util.find_spec("gguf") is None:
            reasons.append(f"exporting the reference checkpoint to GGUF needs the gguf package. {_INSTALL}.")
        if spec.size in SHAPES:
            needed = required_bytes(spec.size, "gguf-mxfp4", spec.context_tokens or DEFAULT_CONTEXT_TOKENS)
            api = gpu_api(report)
            if api is not None:
                on = [a for a in report.accelerators if a.api == api]
                # Unified memory (Apple) is the machine's RAM; discrete GPUs add up across devices
                # (llama.cpp splits the layers between them).
                available = sum(a.memory_total_bytes or 0 for a in on)
                where = f"{len(on)} {api} GPU{'s' if len(on) > 1 else ''}"
            else:
                available = report.cpu.ram_usable_bytes or 0
                where = "RAM"
            if available and available < needed:
                reasons.append(
                    f"{spec.name} needs about {needed / GIB:.0f} GiB as MXFP4 GGUF with an "
                    f"{spec.context_tokens or DEFAULT_CONTEXT_TOKENS}-token context; this machine has "
                    f"{available / GIB:.0f} GiB of {where}."
                )
        return reasons

    def load(self, spec: ModelSpec, report: HardwareReport, **options: Any) -> Engine:
        """Fetch or export the GGUF and load it; see `LlamaCppOptions` for the options."""
        from gptoss_hub.backends.llamacpp.engine import load_llamacpp_engine

        return load_llamacpp_engine(spec, report, **options)


@hookimpl
def gptoss_hub_register_backends(registry: BackendRegistry) -> None:
    """Register the llama.cpp backend."""
    registry.add(LlamaCppBackend)
