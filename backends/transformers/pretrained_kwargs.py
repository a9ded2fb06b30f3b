"""The exact keyword arguments a transformers GPU variant passes to `from_pretrained`, built without loading.

A pure function of the variant, the model, the hardware report, the caller's options and the torchrun world
size, so tests assert them for every recorded machine. Only `Mxfp4Config` comes from transformers (its
quantization settings must be that class to merge with the checkpoint's own).

Tensor parallel (`tp_plan="auto"`) shards every layer over the GPUs, one process per GPU, so it only runs
under torchrun::

    torchrun --nproc-per-node 2 chat_120b.py     # chat_120b.py calls gh.load("120b", tp_plan="auto")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from gptoss_hub.backends.transformers.requirements import gpu_memory, placement_gpus
from gptoss_hub.backends.transformers.variants import GpuVariant
from pydantic import BaseModel, ConfigDict

from gptoss_hub.engine import validate_options
from gptoss_hub.errors import InvalidRequestError

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import LoadRequest
    from gptoss_hub.sources import ModelSpec

__all__ = [
    "GpuOptions",
    "from_pretrained_kwargs",
    "parse_gpu_options",
    "tensor_parallel_problem",
    "torchrun_world_size",
]


class GpuOptions(BaseModel):
    """What a GPU variant loads with: the request's `device` and context (`gh.load(device=…, max_context=…)`)
    and the variant's own options (`tp_plan`, `fallback`)."""

    model_config = ConfigDict(extra="forbid")

    #: `None`: the first GPU when it holds the model, else its layers spread over every GPU (`device_map="auto"`);
    #: "cuda" or "cuda:N": that one GPU.
    device: str | None = None
    #: Cap the context below the model's `max_position_embeddings`; memory is budgeted for it.
    max_context: int | None = None
    #: "auto": tensor parallel over the GPUs of a torchrun launch (one process per GPU).
    tp_plan: Literal["auto"] | None = None
    #: When the variant cannot load (a kernel cannot be fetched, transformers would dequantize), continue on
    #: the next transformers GPU variant that fits in memory instead of raising; `Model.info.details` and a
    #: warning say what was wanted, what runs and why.
    fallback: bool = False


def parse_gpu_options(variant: GpuVariant, request: LoadRequest) -> GpuOptions:
    """`request`'s device, context and options validated for `variant`; a bad value is an
    `InvalidRequestError` that names it."""
    if "device" in request.options or "max_context" in request.options:
        raise InvalidRequestError("device and max_context are the load request's own fields, not options.")
    placement = {"device": request.device, "max_context": request.context}
    parsed = validate_options(GpuOptions, {**request.options, **placement}, variant.name)
    device = parsed.device
    if device is not None and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise InvalidRequestError(
            f"{variant.name} runs on GPUs: device must be 'cuda' or 'cuda:N', not {device!r}; "
            "use backend='transformers/cpu' for the CPU."
        )
    if parsed.tp_plan is not None and device is not None:
        raise InvalidRequestError(
            "tp_plan='auto' places each shard on its own process's GPU: leave device unset with tp_plan."
        )
    return parsed


def torchrun_world_size(environ: Mapping[str, str] | None = None) -> int:
    """How many processes torchrun started (`WORLD_SIZE`); 1 outside torchrun."""
    value = (os.environ if environ is None else environ).get("WORLD_SIZE", "1")
    return int(value) if value.strip().isdigit() else 1


def tensor_parallel_problem(report: HardwareReport, world_size: int) -> str | None:
    """Why `tp_plan="auto"` cannot run in a process of a torchrun launch of `world_size` (`None`: it can)."""
    gpus = report.accelerator_count
    count = str(gpus) if gpus > 1 else "N"
    if world_size <= 1:
        return (
            "tp_plan='auto' shards the model over several GPUs, one process per GPU, and this process is not one "
            "of several started by torchrun (WORLD_SIZE is unset or 1). Launch it with "
            f"`torchrun --nproc-per-node {count} your_script.py` (or `torchrun --nproc-per-node {count} -m "
            "your_module`), or leave tp_plan unset to spread the layers over the GPUs from one process."
        )
    if world_size > gpus:
        return (
            f"torchrun started {world_size} processes (WORLD_SIZE) but this machine has {gpus} GPU"
            f"{'s' if gpus != 1 else ''}: launch with `torchrun --nproc-per-node {count} …`."
        )
    return None


def _device_map(options: GpuOptions, report: HardwareReport, variant: GpuVariant, spec: ModelSpec) -> str:
    if options.device is not None:
        return options.device
    usable = placement_gpus(variant, report)
    first = usable[0] if usable else None
    free = None if first is None else first.memory_free_bytes or first.memory_total_bytes
    estimate = gpu_memory(variant.weights, spec, usable)
    needed = estimate.needed_bytes if estimate is not None else 0
    # "cuda" puts everything on the first GPU and fails loudly if it does not fit, where "auto" would
    # quietly offload layers to the CPU; "auto" only when one GPU cannot hold the model, to spread the
    # layers over all of them.
    return "auto" if len(usable) > 1 and (free is None or needed > free) else "cuda"


def from_pretrained_kwargs(
    variant: GpuVariant,
    spec: ModelSpec,
    report: HardwareReport,
    options: GpuOptions,
    *,
    world_size: int = 1,
    mxfp4_checkpoint: bool = True,
) -> dict[str, Any]:
    """The keyword arguments `GptOssForCausalLM.from_pretrained(folder, **kwargs)` gets for `variant`.

    `mxfp4_checkpoint`: the checkpoint stores its experts in MXFP4 (the released ones do). The MXFP4 variants
    ask for the kernel path explicitly (`Mxfp4Config(dequantize=False)`: a bf16 checkpoint is quantized on
    load); the bf16 variants ask for dequantizing explicitly, so nothing is left for transformers to decide
    behind a warning. `use_kernels` stays off with MXFP4: transformers dequantizes when it is on.
    `world_size`: torchrun's process count, required above 1 by `tp_plan="auto"`.
    """
    if options.tp_plan is not None:
        problem = tensor_parallel_problem(report, world_size)
        if problem:
            raise InvalidRequestError(problem)
    kwargs: dict[str, Any] = {}
    if options.tp_plan is not None:
        kwargs["tp_plan"] = options.tp_plan
    else:
        kwargs["device_map"] = _device_map(options, report, variant, spec)
    # bf16 is what the released checkpoints hold outside the MXFP4 experts and what the GPU kernels compute
    # in; naming it keeps an fp32 checkpoint (the tiny reference ones) from running in fp32 on the GPU.
    kwargs["dtype"] = "bfloat16"
    if variant.weights == "mxfp4" or mxfp4_checkpoint:
        from transformers import Mxfp4Config

        kwargs["quantization_config"] = Mxfp4Config(dequantize=variant.weights != "mxfp4")
    kwargs["attn_implementation"] = variant.attention
    kwargs["use_kernels"] = variant.use_kernels
    return kwargs
