"""The transformers backend: gpt-oss through Hugging Face transformers.

Variants, by dispatch rank (DESIGN.md section 6). In this release only `transformers/cpu` loads; the
GPU variants are registered so `gptoss-hub plan` shows them and says why they cannot run yet.

| variant | weights | attention | where |
|---|---|---|---|
| `transformers/mxfp4+fa3` | MXFP4 | Flash-Attention-3 with sinks | Hopper |
| `transformers/mxfp4` | MXFP4 | eager/sdpa | Blackwell, Hopper |
| `transformers/megablocks-bf16` | bf16 + MegaBlocks MoE | sdpa | other CUDA, ROCm |
| `transformers/bf16` | bf16 | sdpa | any CUDA/ROCm GPU |
| `transformers/cpu` | fp32/bf16 (MXFP4 dequantized) | eager | CPU |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gptoss_hub.engine import Backend
from gptoss_hub.memory import DEFAULT_CONTEXT_TOKENS, GIB, SHAPES, required_bytes
from gptoss_hub.plugins import hookimpl

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import Engine
    from gptoss_hub.plugins import BackendRegistry
    from gptoss_hub.sources import ModelSpec

__all__ = ["TransformersCpuBackend", "TransformersGpuBackend"]

_INSTALL = "Install the transformers extra: pip install 'gptoss-hub[transformers]'."


def _common_reasons(report: HardwareReport, spec: ModelSpec) -> list[str]:
    reasons = []
    missing = [name for name in ("torch", "transformers") if name not in report.runtimes]
    if missing:
        reasons.append(f"{' and '.join(missing)} not installed. {_INSTALL}")
    if spec.kind not in ("reference", "local_dir", "hf_repo"):
        what = {"gguf_file": "a GGUF file", "endpoint": "a remote endpoint"}.get(spec.kind, spec.kind)
        reasons.append(f"transformers loads Hugging Face checkpoints (a folder or repo id), not {what}.")
    return reasons


class TransformersCpuBackend(Backend):
    """transformers on the CPU: fp32 for the tiny checkpoints, bf16 for the real ones."""

    name: ClassVar[str] = "transformers/cpu"
    rank: ClassVar[int] = 10
    description: ClassVar[str] = "transformers on the CPU (KV cache, eager attention); MXFP4 weights dequantized"

    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """Reasons transformers cannot run `spec` on this CPU: missing packages, wrong format, too little RAM."""
        reasons = _common_reasons(report, spec)
        available = report.cpu.ram_usable_bytes
        if spec.size in SHAPES and available:
            needed = required_bytes(spec.size, "bf16", spec.context_tokens or DEFAULT_CONTEXT_TOKENS)
            if available < needed:
                reasons.append(
                    f"{spec.name} needs about {needed / GIB:.0f} GiB of RAM in bf16 on the CPU "
                    f"(MXFP4 experts are dequantized there); this machine has {available / GIB:.0f} GiB. "
                    "Use llama.cpp with a GGUF file, or a GPU."
                )
        return reasons

    def load(self, spec: ModelSpec, report: HardwareReport, **options: Any) -> Engine:
        """Load the checkpoint with transformers on the CPU. Options: `device` ("cpu"), `dtype`, `threads`, `max_context`."""
        from gptoss_hub.backends.transformers.engine import load_cpu_engine

        return load_cpu_engine(spec, **options)


class TransformersGpuBackend(Backend):
    """A GPU variant of the transformers backend, declared but not available in this release."""

    variant: ClassVar[str]

    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """Always says why: GPU variants are not part of this release."""
        return [
            *_common_reasons(report, spec),
            f"the {self.variant} GPU path of the transformers backend is not available in this release; "
            "use backend='transformers/cpu', or another backend on GPUs.",
        ]

    def load(self, spec: ModelSpec, report: HardwareReport, **options: Any) -> Engine:
        """Refuses, with the reason `check()` gives."""
        from gptoss_hub.errors import BackendUnavailableError

        raise BackendUnavailableError(" ".join(self.check(report, spec)))


def _gpu_variant(variant: str, rank: int, description: str) -> type[TransformersGpuBackend]:
    return type(
        f"Transformers_{variant.replace('-', '_').replace('+', '_')}",
        (TransformersGpuBackend,),
        {"name": f"transformers/{variant}", "rank": rank, "variant": variant, "description": description},
    )


GPU_VARIANTS = (
    _gpu_variant("mxfp4+fa3", 100, "MXFP4 weights with Flash-Attention-3 (sinks) on Hopper"),
    _gpu_variant("mxfp4", 90, "MXFP4 weights on Hopper or Blackwell"),
    _gpu_variant("megablocks-bf16", 80, "bf16 with MegaBlocks MoE kernels on CUDA or ROCm"),
    _gpu_variant("bf16", 70, "bf16 on any CUDA or ROCm GPU"),
)


@hookimpl
def gptoss_hub_register_backends(registry: BackendRegistry) -> None:
    """Register the transformers variants."""
    registry.add(TransformersCpuBackend)
    for variant in GPU_VARIANTS:
        registry.add(variant)
