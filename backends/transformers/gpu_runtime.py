"""What this process's torch, transformers and `kernels` do for a GPU variant, around `from_pretrained`.

Before loading: whether transformers' own checks would pass (it dequantizes MXFP4 to bf16 behind a warning
when triton or `kernels` is missing) and fetching each Hub kernel, so a missing one fails here, by name.
After loading: whether the model is what the variant promised (MXFP4 experts, the attention kernel, the
MegaBlocks layers, nothing offloaded to the CPU). Each step is one function, so tests replace it.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path
from typing import Any

from gptoss_hub.backends.transformers.variants import GpuVariant, HubKernel, hub_kernels, mxfp4_kernel

__all__ = [
    "fetch_kernel",
    "installed_transformers",
    "load_pretrained",
    "loaded_problems",
    "release",
    "runtime_problems",
]


def installed_transformers() -> str | None:
    """The version of transformers installed here (read from its metadata, without importing it)."""
    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return None


def _kernels_problem(kernels: tuple[HubKernel, ...]) -> str:
    from transformers.utils import import_utils

    try:
        installed = f"kernels {metadata.version('kernels')} is installed"
    except metadata.PackageNotFoundError:
        installed = "the `kernels` package is not installed"
    low, high = getattr(import_utils, "KERNELS_MIN_VERSION", None), getattr(import_utils, "KERNELS_MAX_VERSION", None)
    need = f"kernels>={low},<{high}" if low and high else "kernels"
    repos = " and ".join(kernel.repo_id for kernel in kernels)
    return (
        f"{installed}, and transformers {installed_transformers()} needs {need} to fetch {repos}: pip install '{need}'."
    )


def runtime_problems(variant: GpuVariant) -> list[str]:
    """What in this process would stop `variant` or make transformers quietly change it, by transformers' checks."""
    import torch
    from transformers.utils import import_utils

    if not torch.cuda.is_available():
        build = "a CPU build" if not (torch.version.cuda or torch.version.hip) else "a GPU build"
        return [
            f"torch {torch.__version__} ({build}) sees no GPU in this process (torch.cuda.is_available() is "
            "False): check the driver and CUDA_VISIBLE_DEVICES, and that torch is built for CUDA or ROCm."
        ]
    problems = []
    version = installed_transformers()
    if variant.weights == "mxfp4":
        if not import_utils.is_triton_available("3.4.0"):
            problems.append(
                "triton >= 3.4 is not importable here, so transformers would dequantize the MXFP4 experts to bf16: "
                "pip install 'triton>=3.4'."
            )
        if mxfp4_kernel(version) is None and importlib.util.find_spec("triton_kernels") is None:
            problems.append(
                f"triton_kernels is not importable here, so transformers {version} would dequantize the MXFP4 "
                "experts to bf16: install triton_kernels, or upgrade transformers."
            )
    kernels = hub_kernels(variant, version)
    if kernels and not import_utils.is_kernels_available():
        problems.append(_kernels_problem(kernels))
    return problems


def fetch_kernel(kernel: HubKernel) -> None:
    """Load `kernel` the way transformers will (from the cache, else the Hub unless `HF_HUB_OFFLINE`)."""
    try:
        # transformers' wrapper passes the same arguments it uses itself while loading.
        from transformers.integrations.hub_kernels import get_kernel
    except ImportError:
        from kernels import get_kernel
    if kernel.version is None:
        get_kernel(kernel.repo_id)
    else:
        get_kernel(kernel.repo_id, version=kernel.version)


def load_pretrained(folder: Path, kwargs: dict[str, Any]) -> Any:
    """`GptOssForCausalLM.from_pretrained(folder, **kwargs)`."""
    from gptoss_hub.backends.transformers.engine import progress_only_when_long
    from transformers import GptOssForCausalLM

    with progress_only_when_long(folder):
        return GptOssForCausalLM.from_pretrained(folder, **kwargs)


def loaded_problems(variant: GpuVariant, model: Any) -> list[str]:
    """How the loaded `model` differs from what `variant` asked transformers for."""
    problems = []
    if variant.weights == "mxfp4" and not any(type(m).__name__ == "Mxfp4GptOssExperts" for m in model.modules()):
        problems.append(
            "transformers loaded the experts dequantized to bf16 (about three times the memory of MXFP4), "
            "because its MXFP4 kernels did not load; its warning above says which part was missing."
        )
    attention = getattr(model.config, "_attn_implementation", None)
    if variant.attention != "eager" and attention != variant.attention:
        problems.append(f"transformers runs attention with {attention!r}, not {variant.attention}.")
    # Releases without the attribute say nothing either way; only a model that says "off" is wrong.
    if variant.use_kernels and getattr(model, "use_kernels", None) is False:
        problems.append("transformers did not switch the MegaBlocks kernels on (the loaded model has use_kernels off).")
    placed = getattr(model, "hf_device_map", None) or {}
    offloaded = sorted({str(where) for where in placed.values() if str(where) in ("cpu", "disk")})
    if offloaded:
        problems.append(
            f"transformers put part of the model on the {' and '.join(offloaded)} because the GPUs could not hold it."
        )
    return problems


def release() -> None:
    """Free the GPU memory of a model the caller has dropped."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
