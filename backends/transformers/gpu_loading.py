"""Loading a transformers GPU variant with no silent fallback.

A variant loads exactly as asked or raises a typed error that says what was wanted, what is missing and
what to do. With `fallback=True` the next lower-ranked GPU variant that fits in memory (measured with the
weights it really holds: bf16 after MXFP4) is tried instead, and the engine's details plus a
`VariantFallbackWarning` record what was wanted, what runs and why. The CPU is never a fallback: a model
meant for GPUs runs there only when asked for by name (`backend="transformers/cpu"`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from gptoss_hub.backends.transformers import gpu_runtime
from gptoss_hub.backends.transformers.engine import TransformersEngine
from gptoss_hub.backends.transformers.pretrained_kwargs import (
    GpuOptions,
    from_pretrained_kwargs,
    parse_gpu_options,
    tensor_parallel_problem,
    torchrun_world_size,
)
from gptoss_hub.backends.transformers.requirements import gpu_reasons, placement_gpus
from gptoss_hub.backends.transformers.variants import GPU_VARIANTS, GpuVariant, HubKernel, hub_kernels

from gptoss_hub.errors import BackendError, BackendUnavailableError, InvalidRequestError
from gptoss_hub.memory import DEFAULT_CONTEXT_TOKENS

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import LoadRequest
    from gptoss_hub.sources import ModelSpec

__all__ = ["VariantFallbackWarning", "load_gpu_engine"]

_FALLBACK_HINT = "Or pass fallback=True to continue on the next transformers GPU variant that fits in memory."


class VariantFallbackWarning(UserWarning):
    """A transformers variant other than the one asked for was loaded, because `fallback=True` allowed it."""


def _refusal(variant: GpuVariant, spec: ModelSpec, missing: str, todo: str = "", hint: bool = True) -> str:
    """What was wanted, what is missing, what to do (and, unless fallback is already on, that it exists)."""
    parts = [f"{variant.name} cannot load {spec.name}: {missing}", todo, _FALLBACK_HINT if hint else ""]
    return " ".join(part for part in parts if part)


def _fetch_failed(variant: GpuVariant, spec: ModelSpec, kernel: HubKernel, error: Exception, hint: bool) -> str:
    version = f", version={kernel.version}" if kernel.version is not None else ""
    return _refusal(
        variant,
        spec,
        f"{kernel.purpose} (Hub kernel {kernel.repo_id}) could not be fetched or loaded: "
        f"{type(error).__name__}: {error}.",
        "Let this machine reach the Hugging Face Hub, or fetch the kernel once where it can "
        f"(python -c \"from kernels import get_kernel; get_kernel('{kernel.repo_id}'{version})\") and copy "
        "the cache (HF_KERNELS_CACHE or HF_HUB_CACHE).",
        hint,
    )


def _stores_mxfp4(folder: Path) -> bool:
    """Whether the checkpoint keeps its experts in MXFP4 (its config names the quantization)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    quantization = config.get("quantization_config") or {}
    return isinstance(quantization, dict) and quantization.get("quant_method") == "mxfp4"


def _quantization(variant: GpuVariant, mxfp4_checkpoint: bool) -> str | None:
    if variant.weights == "mxfp4":
        return "mxfp4 (triton kernels)"
    return "mxfp4 dequantized to bf16" if mxfp4_checkpoint else None


def _load(
    variant: GpuVariant, spec: ModelSpec, report: HardwareReport, options: GpuOptions, world_size: int
) -> TransformersEngine:
    """Load `variant` exactly, or raise: `BackendUnavailableError` for what is missing, `BackendError` when
    transformers itself fails."""
    hint = not options.fallback
    problems = gpu_runtime.runtime_problems(variant)
    if problems:
        raise BackendUnavailableError(_refusal(variant, spec, " ".join(problems), hint=hint))
    kernels = hub_kernels(variant, gpu_runtime.installed_transformers())
    for kernel in kernels:
        try:
            gpu_runtime.fetch_kernel(kernel)
        except Exception as error:  # any failure of the fetch means the kernel is not there: say which
            raise BackendUnavailableError(_fetch_failed(variant, spec, kernel, error, hint)) from error
    folder = spec.checkpoint_dir()
    mxfp4_checkpoint = _stores_mxfp4(folder)
    kwargs = from_pretrained_kwargs(
        variant, spec, report, options, world_size=world_size, mxfp4_checkpoint=mxfp4_checkpoint
    )
    try:
        model = gpu_runtime.load_pretrained(folder, kwargs)
    except Exception as error:  # out of memory, a kernel failing to build, a corrupt file: all end this variant
        gpu_runtime.release()  # what a half-finished load left on the GPU, before another variant tries
        raise BackendError(
            _refusal(
                variant, spec, f"transformers failed while loading it: {type(error).__name__}: {error}.", hint=hint
            )
        ) from error
    problems = gpu_runtime.loaded_problems(variant, model)
    if problems:
        del model
        gpu_runtime.release()
        raise BackendUnavailableError(_refusal(variant, spec, " ".join(problems), hint=hint))
    model.eval()
    limit = getattr(model.config, "max_position_embeddings", None)
    max_context = min(filter(None, (options.max_context, limit)), default=spec.context_tokens)
    placement = {"tp_plan": kwargs["tp_plan"], "world_size": world_size} if "tp_plan" in kwargs else {}
    return TransformersEngine(
        model,
        max_context=max_context or DEFAULT_CONTEXT_TOKENS,
        quantization=_quantization(variant, mxfp4_checkpoint),
        attention=variant.attention,
        details={
            "variant": variant.name,
            "device_map": kwargs.get("device_map"),
            **placement,
            "use_kernels": variant.use_kernels,
            "hub_kernels": [kernel.repo_id for kernel in kernels],
        },
    )


def _candidates(variant: GpuVariant, fallback: bool) -> list[GpuVariant]:
    lower = [other for other in GPU_VARIANTS if other.rank < variant.rank]
    return [variant, *sorted(lower, key=lambda other: -other.rank)] if fallback else [variant]


def _fell_back(engine: TransformersEngine, wanted: GpuVariant, running: GpuVariant, why: dict[str, str]) -> None:
    record = {"wanted": wanted.name, "running": running.name, "why": why}
    engine.info = engine.info.model_copy(update={"details": {**engine.info.details, "fallback": record}})
    reasons = " ".join(f"[{name}] {reason}" for name, reason in why.items())
    warnings.warn(
        f"{wanted.name} was wanted but {running.name} is running (fallback=True): {reasons}",
        VariantFallbackWarning,
        stacklevel=5,  # the caller of gh.load
    )


def load_gpu_engine(variant: GpuVariant, request: LoadRequest) -> TransformersEngine:
    """Load `request.spec` with `variant` on this machine's GPUs (`request.report` describes it); see `GpuOptions`.

    Raises `InvalidRequestError` for options that cannot work (tp_plan outside torchrun), otherwise
    `BackendUnavailableError` / `BackendError` naming what is missing, unless `fallback=True` finds a
    lower-ranked variant that loads.
    """
    parsed = parse_gpu_options(variant, request)
    spec, report = request.spec, request.report
    if parsed.device is not None and not placement_gpus(variant, report, parsed.device):
        usable = len(placement_gpus(variant, report))
        raise InvalidRequestError(
            f"device={parsed.device!r}: this machine has {usable} GPU{'s' if usable != 1 else ''} {variant.name} "
            f"can use (cuda:0 to cuda:{max(usable - 1, 0)})."
        )
    world_size = torchrun_world_size()
    if parsed.tp_plan is not None and (problem := tensor_parallel_problem(report, world_size)):
        raise InvalidRequestError(problem)
    spec = spec.model_copy(
        update={"context_tokens": parsed.max_context or spec.context_tokens or DEFAULT_CONTEXT_TOKENS}
    )
    why: dict[str, str] = {}
    for candidate in _candidates(variant, parsed.fallback):
        reasons = gpu_reasons(candidate, report, spec, placement_gpus(candidate, report, parsed.device))
        if reasons:
            if not parsed.fallback:
                raise BackendUnavailableError(_refusal(candidate, spec, " ".join(reasons)))
            why[candidate.name] = " ".join(reasons)
            continue
        try:
            engine = _load(candidate, spec, report, parsed, world_size)
        except (BackendUnavailableError, BackendError) as error:
            if not parsed.fallback:
                raise
            why[candidate.name] = str(error)
            continue
        if candidate is not variant:
            _fell_back(engine, variant, candidate, why)
        return engine
    attempts = "\n".join(f"  {name}: {reason}" for name, reason in why.items())
    raise BackendUnavailableError(
        f"{variant.name} was asked for with fallback=True, and no transformers GPU variant can load "
        f"{spec.name} here:\n{attempts}"
    )
