"""The transformers backend: gpt-oss through Hugging Face transformers.

Variants, by dispatch rank (docs/architecture.md):

| variant | weights | attention | MoE | where |
|---|---|---|---|---|
| `transformers/mxfp4+fa3` | MXFP4 (triton kernels) | Flash-Attention-3 with sinks (`kernels-community/vllm-flash-attn3`) | MXFP4 | Hopper |
| `transformers/mxfp4` | MXFP4 (triton kernels) | eager | MXFP4 | Blackwell, Hopper; any NVIDIA GPU from compute capability 7.5, ranked after bf16 there |
| `transformers/megablocks-bf16` | bf16 | eager | MegaBlocks (`use_kernels=True`) | CUDA, ROCm |
| `transformers/bf16` | bf16 | eager | plain | CUDA, ROCm |
| `transformers/cpu` | fp32/bf16 (MXFP4 dequantized) | eager | plain | CPU |

Each GPU variant's `check()` names what is missing (GPU family, torch build, triton >= 3.4, triton_kernels,
the `kernels` package, a Hub kernel that cannot be fetched offline, memory for the weights it really holds);
its `load()` passes `from_pretrained` exactly the arguments in `pretrained_kwargs` and never falls back
silently: MXFP4 that transformers would dequantize is an error unless `fallback=True` (see `gpu_loading`).

Tensor parallel over several GPUs, one process per GPU, launched with torchrun::

    # chat_120b.py: model = gh.load("120b", backend="transformers/mxfp4+fa3", tp_plan="auto")
    torchrun --nproc-per-node 2 chat_120b.py
    torchrun --nproc-per-node 2 -m my_package.chat      # the same for a module

Without torchrun, `tp_plan="auto"` is an `InvalidRequestError` that shows this command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from gptoss_hub.backends.transformers.requirements import common_reasons, gpu_reasons
from gptoss_hub.backends.transformers.variants import GPU_VARIANTS, GpuVariant

from gptoss_hub.engine import Backend
from gptoss_hub.memory import context_tokens, memory_reasons, transformers_memory
from gptoss_hub.plugins import hookimpl
from gptoss_hub.shape import read_shape

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import Engine, LoadRequest
    from gptoss_hub.memory import MemoryEstimate
    from gptoss_hub.plugins import BackendRegistry
    from gptoss_hub.sources import ModelSpec

__all__ = ["GPU_BACKENDS", "MXFP4_ELSEWHERE_PENALTY", "TransformersCpuBackend", "TransformersGpuBackend"]

#: Rank taken from a variant outside its preferred GPU families: enough to fall below both bf16 variants.
MXFP4_ELSEWHERE_PENALTY = 25


class TransformersCpuBackend(Backend):
    """transformers on the CPU: fp32 for the tiny checkpoints, bf16 for the real ones."""

    name: ClassVar[str] = "transformers/cpu"
    rank: ClassVar[int] = 10
    description: ClassVar[str] = "transformers on the CPU (KV cache, eager attention); MXFP4 weights dequantized"

    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """Reasons transformers cannot run `spec` on this CPU: missing packages, wrong format, too little RAM."""
        reasons = common_reasons(report, spec)
        memory = memory_reasons(spec, self.memory_estimate(report, spec))
        if memory and read_shape(spec).shape is not None:
            memory[0] += " Use llama.cpp with a GGUF file, or a GPU."
        return [*reasons, *memory]

    def memory_estimate(self, report: HardwareReport, spec: ModelSpec) -> MemoryEstimate | None:
        """The weights in bf16 (the checkpoint's float dtype; MXFP4 experts dequantized) and the KV cache,
        against the RAM."""
        reading = read_shape(spec)
        if reading.shape is None:
            return None
        return transformers_memory(
            reading,
            context_tokens(spec),
            weights="bf16",
            runtime=f"of RAM in {'fp32' if reading.shape.stored_as == 'float32' else 'bf16'} on the CPU (MXFP4 "
            "experts are dequantized there)",
            available=report.cpu.ram_usable_bytes,
            available_what="this machine has {gib} GiB",
            dequantizing_peak=True,
        )

    def load(self, request: LoadRequest) -> Engine:
        """Load the checkpoint with transformers on the CPU; options `dtype`, `threads` (see `CpuOptions`)."""
        from gptoss_hub.backends.transformers.engine import load_cpu_engine

        return load_cpu_engine(request)


class TransformersGpuBackend(Backend):
    """A GPU variant of the transformers backend; `variant` says which (weights, attention, kernels, GPUs)."""

    variant: ClassVar[GpuVariant]

    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """What is missing for this variant to run `spec` here; empty when it can."""
        return gpu_reasons(self.variant, report, spec)

    def rank_adjustment(self, report: HardwareReport, spec: ModelSpec) -> tuple[int, str] | None:
        """Below the bf16 variants on GPUs outside the variant's preferred families (MXFP4 on an A100)."""
        preferred = self.variant.preferred_families
        gpus = report.accelerators
        if not preferred or not gpus or all(gpu.family in preferred for gpu in gpus):
            return None
        return (
            -MXFP4_ELSEWHERE_PENALTY,
            f"first choice only on {' and '.join(preferred)} GPUs; elsewhere bf16 (with MegaBlocks) comes first "
            "when it fits",
        )

    def load(self, request: LoadRequest) -> Engine:
        """Load with exactly this variant's `from_pretrained` arguments on `request.device` ("cuda", "cuda:N";
        `None`: see `GpuOptions`). Options: `tp_plan` ("auto", under torchrun), `fallback` (continue on the next
        variant that fits)."""
        from gptoss_hub.backends.transformers.gpu_loading import load_gpu_engine

        return load_gpu_engine(self.variant, request)


def _gpu_backend(variant: GpuVariant) -> type[TransformersGpuBackend]:
    suffix = variant.name.removeprefix("transformers/").replace("-", "_").replace("+", "_")
    return type(
        f"Transformers_{suffix}",
        (TransformersGpuBackend,),
        {"name": variant.name, "rank": variant.rank, "variant": variant, "description": variant.description},
    )


#: One backend class per GPU variant, highest rank first.
GPU_BACKENDS = tuple(_gpu_backend(variant) for variant in GPU_VARIANTS)


@hookimpl
def gptoss_hub_register_backends(registry: BackendRegistry) -> None:
    """Register the transformers variants."""
    registry.add(TransformersCpuBackend)
    for backend in GPU_BACKENDS:
        registry.add(backend)
