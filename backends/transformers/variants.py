"""The GPU variants of the transformers backend as data: weights, attention, MoE kernels, GPUs, Hub kernels.

Each variant is one way of calling `from_pretrained` for gpt-oss (docs/architecture.md). What a variant needs
from the machine is checked in `requirements`, the arguments it passes are built in `pretrained_kwargs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gptoss_hub.hardware.report import version_tuple

__all__ = [
    "FA3_KERNEL",
    "GPU_VARIANTS",
    "GpuVariant",
    "HubKernel",
    "hub_kernels",
    "mxfp4_kernel",
    "uses_kernel_versions",
]

#: The attention implementation with attention sinks that gpt-oss needs, as transformers names it.
FA3_KERNEL = "kernels-community/vllm-flash-attn3"


@dataclass(frozen=True)
class HubKernel:
    """A compiled kernel that transformers fetches from the Hugging Face Hub through the `kernels` package."""

    repo_id: str
    #: The major version transformers asks for; `None` where it takes the repository's main branch.
    version: int | None
    #: What it does, for messages ("Flash-Attention-3 with attention sinks").
    purpose: str


@dataclass(frozen=True)
class GpuVariant:
    """One way to run gpt-oss with transformers on GPUs."""

    #: The backend name, `transformers/<variant>`.
    name: str
    rank: int
    description: str
    #: What the MoE experts are held in once loaded: MXFP4 (triton kernels) or bf16 (dequantized if need be).
    weights: Literal["mxfp4", "bf16"]
    #: `attn_implementation`: a Hub kernel repository or "eager" (gpt-oss has no sdpa path: its sinks).
    attention: str
    #: `use_kernels=True`: MegaBlocks MoE layers from the Hub.
    use_kernels: bool
    #: GPU families it runs on; empty means any GPU of `apis`.
    families: tuple[str, ...]
    #: What the families look like to a user, for messages.
    families_label: str
    #: Programming interfaces of the GPUs it runs on ("cuda", "rocm").
    apis: tuple[str, ...]
    #: Oldest NVIDIA compute capability it runs on, where that, not the family, is the rule.
    min_compute_capability: tuple[int, int] | None = None
    #: Families where it is the first choice; elsewhere it ranks below the bf16 variants (docs/architecture.md).
    preferred_families: tuple[str, ...] = ()

    @property
    def needs_kernels_package(self) -> bool:
        """Whether a Hub kernel is part of the variant whatever the transformers release (FA3, MegaBlocks)."""
        return self.attention == FA3_KERNEL or self.use_kernels


GPU_VARIANTS = (
    GpuVariant(
        name="transformers/mxfp4+fa3",
        rank=100,
        description="MXFP4 weights with Flash-Attention-3 (sinks) on Hopper",
        weights="mxfp4",
        attention=FA3_KERNEL,
        use_kernels=False,
        families=("Hopper",),
        families_label="a Hopper GPU (H100, H200: compute capability 9.0)",
        apis=("cuda",),
    ),
    GpuVariant(
        name="transformers/mxfp4",
        rank=90,
        description="MXFP4 weights through triton kernels; first choice on Blackwell (and Hopper without FA3)",
        weights="mxfp4",
        attention="eager",
        use_kernels=False,
        # transformers runs its MXFP4 kernels from compute capability 7.5 (its own check); the launch
        # recommendations make them the first choice on Hopper and Blackwell only.
        families=(),
        families_label="an NVIDIA GPU of compute capability 7.5 or newer (T4, A100, L4, RTX 30xx/40xx/50xx, H100, B200)",
        apis=("cuda",),
        min_compute_capability=(7, 5),
        preferred_families=("Hopper", "Blackwell"),
    ),
    GpuVariant(
        name="transformers/megablocks-bf16",
        rank=80,
        description="bf16 with MegaBlocks MoE kernels on CUDA or ROCm",
        weights="bf16",
        attention="eager",
        use_kernels=True,
        families=(),
        families_label="a CUDA or ROCm GPU",
        apis=("cuda", "rocm"),
    ),
    GpuVariant(
        name="transformers/bf16",
        rank=70,
        description="bf16 on any CUDA or ROCm GPU",
        weights="bf16",
        attention="eager",
        use_kernels=False,
        families=(),
        families_label="a CUDA or ROCm GPU",
        apis=("cuda", "rocm"),
    ),
)


def uses_kernel_versions(transformers_version: str | None) -> bool:
    """Whether this transformers release pins Hub kernels to a major version (5.x does, 4.x took main)."""
    found = version_tuple(transformers_version or "")
    return not found or found >= (5,)


def mxfp4_kernel(transformers_version: str | None) -> HubKernel | None:
    """Where this transformers release takes its MXFP4 MoE kernels (triton_kernels) from.

    `None`: from the `triton_kernels` package (transformers before 4.56). Later releases fetch them through
    `kernels`, from a repository whose name changed with transformers 5.
    """
    found = version_tuple(transformers_version or "")
    if found and found < (4, 56):
        return None
    purpose = "the MXFP4 MoE kernels of triton_kernels"
    if found and found < (5,):
        return HubKernel("kernels-community/triton_kernels", None, purpose)
    return HubKernel("kernels-community/gpt-oss-triton-kernels", 1, purpose)


def hub_kernels(variant: GpuVariant, transformers_version: str | None) -> tuple[HubKernel, ...]:
    """The Hub kernels `variant` loads under this transformers release, in the order transformers loads them."""
    version = 1 if uses_kernel_versions(transformers_version) else None
    kernels = []
    if variant.weights == "mxfp4" and (triton := mxfp4_kernel(transformers_version)) is not None:
        kernels.append(triton)
    if variant.attention == FA3_KERNEL:
        kernels.append(HubKernel(FA3_KERNEL, version, "Flash-Attention-3 with attention sinks"))
    if variant.use_kernels:
        kernels.append(HubKernel("kernels-community/megablocks", version, "the MegaBlocks MoE kernels"))
    return tuple(kernels)
