"""The llama.cpp backend: gpt-oss from GGUF files through llama-cpp-python.

Variants by device: `llamacpp/metal`, `llamacpp/cuda`, `llamacpp/rocm` (every layer on the GPU, when
llama-cpp-python was built for it: `CMAKE_ARGS="-DGGML_CUDA=on" pip install llama-cpp-python`) and
`llamacpp/cpu`. The first choice on Apple Metal and on machines without a GPU (docs/architecture.md); on CUDA
and ROCm below the transformers GPU variants; on the CPU of a machine with a GPU, after every GPU backend.
`backend="llamacpp"` picks the best variant that can run here. Harmony stays with the hub: llama.cpp receives token ids and returns token ids.

Options (`gh.load(model, backend="llamacpp", **options)`): see `LlamaCppOptions` — `n_gpu_layers`,
`n_ctx`/`max_context`, `n_threads`, `flash_attn`, `use_mmap`, `swa_full`, `quantization`, `filename`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from gptoss_hub.engine import Backend
from gptoss_hub.memory import GIB, UNIFIED_GPU_SHARE, context_tokens, llamacpp_memory, memory_reasons
from gptoss_hub.plugins import hookimpl
from gptoss_hub.shape import read_shape

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import Engine, LoadRequest, RepoFiles
    from gptoss_hub.memory import MemoryEstimate
    from gptoss_hub.plugins import BackendRegistry
    from gptoss_hub.sources import ModelSpec

__all__ = ["CPU_WITH_GPU_PENALTY", "LLAMACPP_BACKENDS", "LlamaCppBackend"]

_INSTALL = "Install the llamacpp extra: pip install 'gptoss-hub[llamacpp]'"


class LlamaCppBackend(Backend):
    """llama.cpp with GGUF weights (MXFP4 experts) on one kind of device; `device` says which."""

    #: "metal", "cuda", "rocm" (GPU builds, every layer offloaded) or "cpu".
    device: ClassVar[str]

    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """Reasons llama.cpp cannot run `spec` on this device here: not installed, not built for the GPU, not
        a GGUF source, too little memory."""
        from gptoss_hub.backends.llamacpp.files import source_problem

        reasons = []
        installed = "llama_cpp" in report.runtimes
        if not installed:
            reasons.append(
                f"llama-cpp-python is not installed. {_INSTALL} (for CUDA set CMAKE_ARGS='-DGGML_CUDA=on' first)."
            )
        gpu = self._gpu_reason(report, installed) if self.device != "cpu" else None
        if gpu:
            reasons.append(gpu)
        problem = source_problem(spec)
        if problem:
            reasons.append(problem)
        if spec.kind == "reference" and importlib.util.find_spec("gguf") is None:
            reasons.append(f"exporting the reference checkpoint to GGUF needs the gguf package. {_INSTALL}.")
        if gpu is None:
            reasons.extend(memory_reasons(spec, self.memory_estimate(report, spec)))
        return reasons

    def _gpu_reason(self, report: HardwareReport, installed: bool) -> str | None:
        label = _GPU_LABELS[self.device]
        if not any(a.api == self.device for a in report.accelerators):
            return f"no {label} GPU was found; {self.name} runs on one."
        if installed and not report.runtime_supports("llama_cpp", self.device):
            return (
                f"llama-cpp-python here was not built for {label}: reinstall it with "
                f"CMAKE_ARGS='{_BUILD_FLAGS[self.device]}' pip install --force-reinstall --no-cache-dir llama-cpp-python."
            )
        return None

    def memory_estimate(self, report: HardwareReport, spec: ModelSpec) -> MemoryEstimate | None:
        """The GGUF mapped and, on the CPU, its MXFP4 experts repacked, plus KV cache and compute buffers;
        against the RAM (CPU), or the memory of this variant's GPUs added up (llama.cpp splits the layers)."""
        reading = read_shape(spec)
        if reading.shape is None:
            return None
        if self.device == "cpu":
            available, what = report.cpu.ram_usable_bytes, "this machine has {gib} GiB of RAM"
        else:
            on = [a for a in report.accelerators if a.api == self.device]
            total = sum(a.memory_total_bytes or 0 for a in on)
            what = f"this machine has {{gib}} GiB of {len(on)} {self.device} GPU{'s' if len(on) > 1 else ''}"
            # Discrete GPUs add up (llama.cpp splits the layers between them). Unified memory (Apple) is
            # the machine's RAM, of which the GPU may wire only a share.
            available = total or None
            if total and any(a.unified_memory for a in on):
                available = int(total * UNIFIED_GPU_SHARE)
                what = (
                    f"the {self.device} GPU may use about {{gib}} GiB of this machine's {total / GIB:.0f} GiB of "
                    "unified memory"
                )
        return llamacpp_memory(
            reading, context_tokens(spec), on_gpu=self.device != "cpu", available=available, available_what=what
        )

    def repo_files(self, spec: ModelSpec) -> RepoFiles | None:
        """For a GGUF repo (or 20b/120b: ggml-org's), the MXFP4 GGUF file(s) `load()` fetches by default."""
        from gptoss_hub.backends.llamacpp.files import choose_gguf_files, gguf_repo

        from gptoss_hub.engine import RepoFiles

        repo = gguf_repo(spec)
        if repo is None:
            return None
        return RepoFiles(repo, spec.revision, lambda names: choose_gguf_files(names, "mxfp4"))

    def rank_adjustment(self, report: HardwareReport, spec: ModelSpec) -> tuple[int, str] | None:
        """llama.cpp on the CPU of a machine with a GPU comes after every GPU backend."""
        if self.device == "cpu" and report.has_gpu:
            return -CPU_WITH_GPU_PENALTY, "a GPU is here: llama.cpp on the CPU comes after the backends that use it"
        return None

    def load(self, request: LoadRequest) -> Engine:
        """Fetch or export the GGUF and load it on this variant's device; see `LlamaCppOptions`."""
        from gptoss_hub.backends.llamacpp.engine import load_llamacpp_engine

        from gptoss_hub.errors import InvalidRequestError

        if request.device not in (None, self.device):
            raise InvalidRequestError(
                f"{self.name} runs on {self.device}, not {request.device!r}; `gptoss-hub plan MODEL --backend "
                f"llamacpp/{request.device}` shows why that variant cannot run here."
            )
        return load_llamacpp_engine(replace(request, device=self.device))


def _variant(device: str, rank: int, description: str) -> type[LlamaCppBackend]:
    return type(
        f"LlamaCpp_{device}",
        (LlamaCppBackend,),
        {"name": f"llamacpp/{device}", "rank": rank, "device": device, "description": description},
    )


_GPU_LABELS = {"metal": "Apple Metal", "cuda": "CUDA", "rocm": "ROCm"}
_BUILD_FLAGS = {"metal": "-DGGML_METAL=on", "cuda": "-DGGML_CUDA=on", "rocm": "-DGGML_HIP=on"}
#: Rank taken from llama.cpp on the CPU where a GPU is present: below vLLM, above transformers on the CPU.
CPU_WITH_GPU_PENALTY = 30

#: The llama.cpp variants, highest rank first: first choice on Apple Metal and on machines without a GPU
#: (docs/architecture.md), below the transformers GPU variants on CUDA and ROCm.
LLAMACPP_BACKENDS = (
    _variant("metal", 55, "llama.cpp on Apple Metal (unified memory), GGUF with MXFP4 experts"),
    _variant("cuda", 50, "llama.cpp built with CUDA, every layer on the GPUs, GGUF with MXFP4 experts"),
    _variant("rocm", 50, "llama.cpp built with HIP (ROCm), every layer on the GPUs, GGUF with MXFP4 experts"),
    _variant("cpu", 45, "llama.cpp on the CPU, GGUF with MXFP4 experts"),
)


@hookimpl
def gptoss_hub_register_backends(registry: BackendRegistry) -> None:
    """Register the llama.cpp variants."""
    for backend in LLAMACPP_BACKENDS:
        registry.add(backend)
