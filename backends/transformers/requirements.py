"""What a transformers variant needs from a machine, read from its hardware report, each lack as one sentence.

Checks run from the report alone (never importing torch), so `gptoss-hub plan --hardware h100` answers for a
machine that is not here. They stop at the first level that rules a variant out: on the wrong GPU, which
packages are missing does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gptoss_hub.backends.transformers.variants import GpuVariant, HubKernel, hub_kernels, mxfp4_kernel
from gptoss_hub.hardware.report import MXFP4_TRITON_MIN, version_tuple

from gptoss_hub.memory import GIB, MemoryEstimate, context_tokens, memory_reasons, transformers_memory
from gptoss_hub.shape import read_shape

if TYPE_CHECKING:
    from gptoss_hub.hardware import Accelerator, HardwareReport

    from gptoss_hub.sources import ModelSpec

__all__ = ["common_reasons", "gpu_memory", "gpu_reasons", "memory_reason", "placement_gpus"]

_INSTALL = "Install the transformers extra: pip install 'gptoss-hub[transformers]'."
#: The wheel index of a torch build for each GPU programming interface.
_TORCH_INDEX = {"cuda": ("CUDA", "cu128"), "rocm": ("ROCm", "rocm6.4")}
_TRITON_KERNELS_PIP = "pip install 'triton_kernels @ git+https://github.com/triton-lang/triton.git@v3.4.0#subdirectory=python/triton_kernels'"


def common_reasons(report: HardwareReport, spec: ModelSpec) -> list[str]:
    """Reasons any transformers variant cannot run `spec`: the packages, or a checkpoint it cannot read."""
    reasons = []
    missing = [name for name in ("torch", "transformers") if name not in report.runtimes]
    if missing:
        reasons.append(f"{' and '.join(missing)} not installed. {_INSTALL}")
    if spec.gguf_only or spec.kind not in ("reference", "local_dir", "hf_repo"):
        what = "GGUF (use llamacpp)" if spec.gguf_only else {"endpoint": "a remote endpoint"}.get(spec.kind, spec.kind)
        reasons.append(f"transformers loads safetensors checkpoints (a folder or repo id), not {what}.")
    return reasons


def _describe(accelerators: Sequence[Accelerator]) -> str:
    names = []
    for gpu in accelerators:
        detail = gpu.compute_capability or gpu.family or "unknown architecture"
        label = "compute capability " if gpu.vendor == "nvidia" and gpu.compute_capability else ""
        names.append(gpu.name if detail in gpu.name else f"{gpu.name} ({label}{detail})")
    counts = {name: names.count(name) for name in names}
    return ", ".join(f"{count}x {name}" if count > 1 else name for name, count in counts.items())


def _capability(gpu: Accelerator) -> tuple[int, ...]:
    """`"8.0"` as `(8, 0)`; `()` (older than anything) when unknown."""
    return version_tuple(gpu.compute_capability or "")


def _hardware_reason(variant: GpuVariant, report: HardwareReport) -> str | None:
    if not report.has_gpu:
        return f"no GPU was found; {variant.name} needs {variant.families_label}."
    wrong = [
        gpu
        for gpu in report.accelerators
        if gpu.api not in variant.apis
        or (variant.families and gpu.family not in variant.families)
        or (variant.min_compute_capability and _capability(gpu) < variant.min_compute_capability)
    ]
    if wrong:
        return f"{variant.name} needs {variant.families_label}; this machine has {_describe(wrong)}."
    without_bf16 = [gpu for gpu in report.accelerators if not gpu.bf16]
    if variant.weights == "bf16" and without_bf16:
        return (
            f"{variant.name} computes in bf16, which {_describe(without_bf16)} cannot do natively (NVIDIA "
            "compute capability 8.0 or newer, or AMD CDNA or RDNA3, can); use llamacpp with a GGUF file."
        )
    return None


def _torch_reason(variant: GpuVariant, report: HardwareReport) -> str | None:
    build = report.runtime_builds.get("torch")
    if build is None:
        return None  # `common_reasons` already says torch is missing
    apis = sorted({gpu.api for gpu in report.accelerators if gpu.api in variant.apis})
    missing = [api for api in apis if not report.runtime_supports("torch", api)]
    if not missing:
        return None
    platform, index = _TORCH_INDEX[missing[0]]
    what = f"a {'/'.join(build.devices)} build" if build.devices else f"not known to be a {platform} build"
    return (
        f"torch {build.version} is {what}; {variant.name} needs torch built for {platform}: "
        f"pip install torch --index-url https://download.pytorch.org/whl/{index}."
    )


def _triton_reason(report: HardwareReport) -> str | None:
    triton = report.runtimes.get("triton")
    if triton is None:
        return "triton is not installed; transformers' MXFP4 kernels need triton >= 3.4: pip install 'triton>=3.4'."
    if version_tuple(triton) < MXFP4_TRITON_MIN:
        return (
            f"triton {triton} is installed; transformers' MXFP4 kernels need triton >= 3.4: "
            "pip install -U 'triton>=3.4' (torch 2.8 and later bring it)."
        )
    return None


def _listing(kernels: Sequence[HubKernel]) -> str:
    return " and ".join(f"{kernel.purpose} from {kernel.repo_id}" for kernel in kernels)


def _fetch_command(kernel: HubKernel) -> str:
    version = f", version={kernel.version}" if kernel.version is not None else ""
    return f"python -c \"from kernels import get_kernel; get_kernel('{kernel.repo_id}'{version})\""


def _kernel_reasons(variant: GpuVariant, report: HardwareReport) -> tuple[list[str], bool]:
    """What is missing of the kernels `variant` loads, and whether it leaves MXFP4 without its kernels."""
    transformers = report.runtimes.get("transformers")
    reasons: list[str] = []
    mxfp4_blocked = False
    if variant.weights == "mxfp4":
        triton = _triton_reason(report)
        if triton:
            reasons.append(triton)
        if mxfp4_kernel(transformers) is None and "triton_kernels" not in report.runtimes:
            reasons.append(
                f"triton_kernels is not installed; transformers {transformers} takes the MXFP4 MoE kernels from "
                f"it: {_TRITON_KERNELS_PIP}, or upgrade transformers (4.56 and later fetch them with `kernels`)."
            )
        mxfp4_blocked = bool(reasons)
    wanted = hub_kernels(variant, transformers)
    build = report.runtime_builds.get("kernels")
    if wanted and (build is None or "kernels" not in report.runtimes):
        reasons.append(
            f"the `kernels` package is not installed; transformers {transformers} fetches {_listing(wanted)} "
            "on the Hugging Face Hub through it: pip install kernels."
        )
        return reasons, mxfp4_blocked or any(kernel == mxfp4_kernel(transformers) for kernel in wanted)
    for kernel in wanted:
        if build is not None and build.offline and kernel.repo_id not in build.cached_repos:
            reasons.append(
                f"HF_HUB_OFFLINE is set and {kernel.repo_id}, {kernel.purpose}, is not in the kernel cache: "
                f"fetch it once while online ({_fetch_command(kernel)}), or unset HF_HUB_OFFLINE."
            )
            mxfp4_blocked = mxfp4_blocked or kernel == mxfp4_kernel(transformers)
    return reasons, mxfp4_blocked


def placement_gpus(variant: GpuVariant, report: HardwareReport, device: str | None = None) -> list[Accelerator]:
    """The GPUs `variant` may load onto: every usable one, or the one `device` ("cuda", "cuda:1") names."""
    gpus = [gpu for gpu in report.accelerators if gpu.api in variant.apis]
    if device is None:
        return gpus
    index = int(device.partition(":")[2] or 0)
    return gpus[index : index + 1]


def _free(gpus: Sequence[Accelerator]) -> int | None:
    sizes = [gpu.memory_free_bytes if gpu.memory_free_bytes is not None else gpu.memory_total_bytes for gpu in gpus]
    return None if None in sizes else sum(size for size in sizes if size is not None)


def _where(gpus: Sequence[Accelerator]) -> str:
    return gpus[0].name if len(gpus) == 1 else f"the {len(gpus)} GPUs together"


def gpu_memory(weights: str, spec: ModelSpec, gpus: Sequence[Accelerator]) -> MemoryEstimate | None:
    """What transformers holds for `spec` with `weights` ("mxfp4", "bf16") on `gpus`, against their free
    memory; `None` when the model's size cannot be told or there is no GPU."""
    reading = read_shape(spec)
    if reading.shape is None or not gpus:
        return None
    label = "MXFP4" if weights == "mxfp4" else "bf16"
    return transformers_memory(
        reading,
        context_tokens(spec),
        weights="mxfp4" if weights == "mxfp4" else "bf16",
        runtime=f"in {label}",
        available=_free(gpus),
        available_what=f"{_where(gpus)} {'has' if len(gpus) == 1 else 'have'} {{gib}} GiB free",
    )


def memory_reason(weights: str, spec: ModelSpec, gpus: Sequence[Accelerator]) -> str | None:
    """Why `spec` in `weights` ("mxfp4", "bf16") plus its KV cache does not fit in the free memory of `gpus`
    (or why its size cannot be told)."""
    if not gpus:
        return None
    reasons = memory_reasons(spec, gpu_memory(weights, spec, gpus))
    return reasons[0] if reasons else None


def _dequantized_note(spec: ModelSpec, gpus: Sequence[Accelerator]) -> str | None:
    """What memory the silent bf16 fallback of transformers would take, so the plan shows it."""
    estimate = gpu_memory("bf16", spec, gpus)
    if estimate is None or estimate.available_bytes is None:
        return None
    free = estimate.available_bytes
    verdict = (
        f"which fits in the {free / GIB:.0f} GiB free (the bf16 variants load it so on purpose)"
        if estimate.fits
        else f"more than the {free / GIB:.0f} GiB free on {_where(gpus)}"
    )
    return (
        "without the MXFP4 kernels transformers dequantizes the experts to bf16: "
        f"{spec.name} then needs about {estimate.needed_bytes / GIB:.0f} GiB with a "
        f"{estimate.context_tokens}-token context, {verdict}."
    )


def gpu_reasons(
    variant: GpuVariant, report: HardwareReport, spec: ModelSpec, gpus: Sequence[Accelerator] | None = None
) -> list[str]:
    """Reasons `variant` cannot run `spec` on the machine `report` describes; empty when it can.

    In order: packages and checkpoint format, the GPU, the torch build, triton and the Hub kernels (and
    whether they can be fetched offline), then memory for the weights the variant really holds plus the KV
    cache of `spec.context_tokens`, on `gpus` (default: every GPU the variant can use).
    """
    reasons = common_reasons(report, spec)
    hardware = _hardware_reason(variant, report)
    if hardware:
        return [*reasons, hardware]
    gpus = placement_gpus(variant, report) if gpus is None else list(gpus)
    torch = _torch_reason(variant, report)
    if torch:
        reasons.append(torch)
    kernels, mxfp4_blocked = _kernel_reasons(variant, report)
    reasons.extend(kernels)
    memory = memory_reason(variant.weights, spec, gpus)
    if memory:
        reasons.append(memory)
    note = _dequantized_note(spec, gpus) if mxfp4_blocked else None
    if note:
        reasons.append(note)
    return reasons
