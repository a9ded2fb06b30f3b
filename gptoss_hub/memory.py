"""How much memory each runtime takes for a gpt-oss model, computed from the model's shape.

The shape comes from the model's own files (`gptoss_hub.shape`); each function here models what one
runtime really allocates, so that a plan never picks a runtime that runs out of memory:

- `llamacpp_memory`: llama.cpp maps the GGUF file; on the CPU it also repacks the MXFP4 experts into
  its own buffers (the pages of the file they came from can then be dropped by the kernel), plus the KV
  cache and its compute buffers; with every layer offloaded the weights live in GPU memory instead.
- `vllm_memory`: on a GPU vLLM takes `gpu_memory_utilization` of the GPU's memory whatever the model
  needs (the weights and at least one full-context sequence of KV cache must fit in it); on the CPU it
  holds bf16 weights and a KV cache of `VLLM_CPU_KVCACHE_SPACE` GiB.
- `transformers_memory`: the weights in the dtype transformers holds them in (MXFP4 experts are
  dequantized to bf16 wherever its MXFP4 kernels do not run) plus the KV cache.

`docs/real-size.md` holds the measurements these models were checked against.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from gptoss_hub.shape import ModelShape, ShapeReading, WeightFormat, read_shape
from gptoss_hub.sources import ModelSpec

__all__ = [
    "DEFAULT_CONTEXT_TOKENS",
    "GIB",
    "UNIFIED_GPU_SHARE",
    "MemoryEstimate",
    "context_tokens",
    "llamacpp_memory",
    "memory_reasons",
    "mlx_memory",
    "transformers_memory",
    "unknown_size_reason",
    "vllm_memory",
]

GIB = 1024**3
#: The context a plan budgets for when the caller names none: enough for a long chat with tools.
DEFAULT_CONTEXT_TOKENS = 8192
#: Margin for activations and runtime buffers the models below do not count one by one.
OVERHEAD = 0.10
#: llama.cpp's default batch: how many prompt tokens one compute graph holds.
LLAMACPP_BATCH = 512
#: vLLM on the CPU runs two Python processes (the API side and the engine core), each with torch loaded.
VLLM_PROCESS_BYTES = GIB
#: The share of unified memory (Apple silicon) a Metal GPU may wire by default: macOS's
#: `recommendedMaxWorkingSetSize`, about three quarters of the RAM; llama.cpp warns beyond it and swaps.
UNIFIED_GPU_SHARE = 0.75


@dataclass(frozen=True)
class MemoryEstimate:
    """What one runtime is expected to hold for one model, and what this machine has for it."""

    #: How the runtime holds the model, for sentences: "needs about 14 GiB {runtime} with a …" ("in bf16").
    runtime: str
    #: Bytes the process is expected to hold resident once loaded (anonymous and file-backed pages).
    resident_bytes: int
    #: Of which pages of memory-mapped files the kernel can drop under pressure without harm.
    reclaimable_bytes: int
    #: Bytes that must fit in the device's memory: the resident set less what the kernel can reclaim, or
    #: (vLLM on GPUs) less than the share of memory the runtime reserves whatever the model needs.
    needed_bytes: int
    #: Bytes of files the runtime reads from disk (the weights it loads or maps).
    disk_bytes: int
    #: The terms that add up to `resident_bytes`, by name.
    parts: tuple[tuple[str, int], ...]
    context_tokens: int
    #: Where the shape came from ("from config.json …", "guessed from the name …").
    basis: str
    guessed: bool = False
    #: What the device has for it (`None`: unknown), and a sentence for it with `{gib}` for the figure
    #: ("this machine has {gib} GiB of RAM", "NVIDIA H100 80GB HBM3 has {gib} GiB free").
    available_bytes: int | None = None
    available_what: str = "this machine has {gib} GiB of RAM"

    @property
    def fits(self) -> bool:
        """Whether `needed_bytes` fits in what is available (unknown availability counts as fitting)."""
        return self.available_bytes is None or self.needed_bytes <= self.available_bytes

    def fit_reason(self, model: str) -> str | None:
        """Why `model` does not fit, as a sentence with the figures; `None` when it fits."""
        if self.fits:
            return None
        guess = f" (its size is {self.basis})" if self.guessed else ""
        available = self.available_what.format(gib=f"{(self.available_bytes or 0) / GIB:.0f}")
        return (
            f"{model} needs about {self.needed_bytes / GIB:.0f} GiB {self.runtime} with a "
            f"{self.context_tokens}-token context{guess}; {available}."
        )

    def summary(self) -> str:
        """One line for plans: resident, reclaimable, what must fit, disk, and the basis."""
        reclaimable = (
            f" ({self.reclaimable_bytes / GIB:.1f} GiB of it reclaimable mapped file)" if self.reclaimable_bytes else ""
        )
        return (
            f"memory: about {self.resident_bytes / GIB:.1f} GiB resident{reclaimable}, "
            f"{self.needed_bytes / GIB:.1f} GiB must fit, {self.disk_bytes / GIB:.1f} GiB on disk; sizes {self.basis}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (bytes) for `gptoss-hub plan --json`."""
        return {
            "runtime": self.runtime,
            "resident_bytes": self.resident_bytes,
            "reclaimable_bytes": self.reclaimable_bytes,
            "needed_bytes": self.needed_bytes,
            "disk_bytes": self.disk_bytes,
            "available_bytes": self.available_bytes,
            "parts": dict(self.parts),
            "context_tokens": self.context_tokens,
            "basis": self.basis,
            "guessed": self.guessed,
        }


def unknown_size_reason(model: str, reading: ShapeReading, kind: str = "local_dir") -> str:
    """The rejection for a model whose size cannot be told: memory is never left unchecked."""
    advice = (
        "Check that it is a complete gpt-oss GGUF file (download or convert it again)."
        if kind == "gguf_file"
        else "Pass a folder holding its config.json, or a GGUF file."
    )
    return f"cannot tell the size of {model}, so its memory cannot be checked: {reading.basis}. {advice}"


def context_tokens(spec: ModelSpec) -> int:
    """The context a plan budgets memory for: the one asked for, else `DEFAULT_CONTEXT_TOKENS`."""
    return spec.context_tokens or DEFAULT_CONTEXT_TOKENS


def memory_reasons(spec: ModelSpec, estimate: MemoryEstimate | None) -> list[str]:
    """The one memory check every backend makes: the sentence saying `spec` does not fit, or that its size
    cannot be told (a model of unknown size is never passed unchecked); empty when it fits."""
    if estimate is None:
        reading = read_shape(spec)
        return (
            []
            if reading.shape is not None or spec.kind == "endpoint"
            else [unknown_size_reason(spec.name, reading, spec.kind)]
        )
    reason = estimate.fit_reason(spec.name)
    return [reason] if reason else []


def _estimate(
    runtime: str,
    reading: ShapeReading,
    context: int,
    parts: dict[str, int],
    *,
    reclaimable: int = 0,
    headroom: float = 0.0,
    disk: int,
    available: int | None,
    available_what: str,
) -> MemoryEstimate:
    resident = sum(parts.values())
    return MemoryEstimate(
        runtime=runtime,
        resident_bytes=resident,
        reclaimable_bytes=reclaimable,
        needed_bytes=int((resident - reclaimable) * (1 + headroom)),
        disk_bytes=disk,
        parts=tuple(parts.items()),
        context_tokens=context,
        basis=reading.describe(),
        guessed=reading.guessed,
        available_bytes=available,
        available_what=available_what,
    )


def _shape(reading: ShapeReading) -> ModelShape:
    if reading.shape is None:
        raise ValueError(f"no shape to estimate from: {reading.basis}")
    return reading.shape


def llamacpp_compute_bytes(shape: ModelShape, context: int, *, flash_attention: bool) -> int:
    """llama.cpp's compute buffers for one batch of `LLAMACPP_BATCH` prompt tokens.

    Without flash attention the attention scores of a batch against the whole context dominate
    (`context × batch × heads` floats); the rest is the batch's activations through the experts.
    """
    batch = LLAMACPP_BATCH
    scores = 0 if flash_attention else context * batch * shape.attention_heads * 4
    activations = batch * 4 * (shape.vocab_size + 4 * shape.experts_per_token * 2 * shape.intermediate_size)
    return scores + activations


def llamacpp_memory(
    reading: ShapeReading,
    context: int,
    *,
    on_gpu: bool,
    available: int | None,
    available_what: str,
    swa_full: bool = True,
) -> MemoryEstimate:
    """llama.cpp with the GGUF `reading` describes (or the MXFP4 GGUF its checkpoint converts to).

    On the CPU: the mapped file, plus the experts repacked into llama.cpp's own buffers (their pages in
    the mapped file are read once and are then reclaimable), the KV cache (f16; sliding-window layers at
    full size when `swa_full`, as the hub runs it) and the compute buffers. On a GPU with every layer
    offloaded: the weights, KV cache and compute buffers in GPU memory. `resident_bytes` is what the
    process is expected to hold; what must fit (`needed_bytes`) leaves out the reclaimable pages and adds
    `OVERHEAD` for the rest of the machine (a model that fills the RAM to the last page thrashes).
    """
    shape = _shape(reading)
    stored = reading.stored if reading.stored is not None and reading.stored.file_format == "gguf" else None
    weights = stored.tensor_bytes if stored else shape.weights_bytes("gguf-mxfp4")
    experts = stored.expert_bytes if stored else shape.expert_bytes("gguf-mxfp4")
    disk = stored.file_bytes if stored else weights
    kv = shape.kv_cache_bytes(context, 2, sliding_tokens=context if swa_full else None)
    compute = llamacpp_compute_bytes(shape, context, flash_attention=on_gpu)
    if on_gpu:
        parts = {"weights": weights, "kv cache": kv, "compute buffers": compute}
        return _estimate(
            "as MXFP4 GGUF on the GPU",
            reading,
            context,
            parts,
            headroom=OVERHEAD,
            disk=disk,
            available=available,
            available_what=available_what,
        )
    mxfp4 = (stored is None and shape.stored_as == "mxfp4") or (stored is not None and "MXFP4" in stored.bytes_by_type)
    repacked = experts if mxfp4 else 0
    parts = {"mapped file": weights, "repacked experts": repacked, "kv cache": kv, "compute buffers": compute}
    return _estimate(
        "as MXFP4 GGUF on the CPU",
        reading,
        context,
        parts,
        reclaimable=repacked,
        headroom=OVERHEAD,
        disk=disk,
        available=available,
        available_what=available_what,
    )


def _dequantizing_peak(shape: ModelShape) -> int:
    """What loading holds on top while MXFP4 experts are dequantized on the CPU: one layer's largest
    projection (gate and up) in float32."""
    return shape.experts * 2 * shape.intermediate_size * shape.hidden_size * 4


def _transformers_format(shape: ModelShape, weights: str) -> WeightFormat:
    if weights == "mxfp4":
        return "mxfp4"
    return "fp32" if shape.stored_as == "float32" else "bf16"


def transformers_memory(
    reading: ShapeReading,
    context: int,
    *,
    weights: Literal["mxfp4", "bf16"],
    runtime: str,
    available: int | None,
    available_what: str,
    dequantizing_peak: bool = False,
) -> MemoryEstimate:
    """transformers holding the weights as `weights` ("mxfp4" with its MXFP4 kernels; otherwise the
    checkpoint's float dtype, bf16 for the released MXFP4 checkpoints, whose experts it dequantizes), with a
    KV cache for `context` tokens in that dtype and a margin for activations.

    `dequantizing_peak` adds what loading takes on top while it dequantizes MXFP4 experts on the CPU: one
    layer's largest projection in float32 (measured on two layers at the real width: see
    docs/real-size.md), so the estimate is the peak, not only what stays once loaded.
    """
    shape = _shape(reading)
    weight_format = _transformers_format(shape, weights)
    held = shape.weights_bytes(weight_format)
    kv = shape.kv_cache_bytes(context, 4 if weight_format == "fp32" else 2)
    disk = reading.stored.file_bytes if reading.stored else shape.weights_bytes("mxfp4")
    parts = {"weights": held, "kv cache": kv, "margin": int((held + kv) * OVERHEAD)}
    if dequantizing_peak and weights != "mxfp4" and shape.stored_as == "mxfp4":
        parts["dequantizing while loading"] = _dequantizing_peak(shape)
    return _estimate(runtime, reading, context, parts, disk=disk, available=available, available_what=available_what)


def vllm_memory(
    reading: ShapeReading,
    context: int,
    *,
    on_gpu: bool,
    available: int | None,
    available_what: str,
    cpu_kv_cache_bytes: int = 4 * GIB,
    gpu_total: int | None = None,
    gpu_memory_utilization: float = 0.9,
) -> MemoryEstimate:
    """vLLM: on GPUs, MXFP4 weights and a full-context KV cache must fit in the `gpu_memory_utilization`
    share of `gpu_total`, which vLLM then takes whole; on the CPU, bf16 weights, a fixed KV cache, the
    peak of dequantizing the MXFP4 experts while loading and its two processes (checked against a
    measurement in docs/real-size.md)."""
    shape = _shape(reading)
    disk = reading.stored.file_bytes if reading.stored else shape.weights_bytes("mxfp4")
    if on_gpu:
        held = shape.weights_bytes("mxfp4")
        kv = shape.kv_cache_bytes(context)
        runtime, parts = (
            "in MXFP4 through vLLM",
            {"weights": held, "kv cache": kv, "margin": int((held + kv) * OVERHEAD)},
        )
    else:
        held = shape.weights_bytes("bf16")
        runtime = "in bf16 through vLLM on the CPU"
        parts = {"weights": held, "kv cache": cpu_kv_cache_bytes, "margin": int(held * OVERHEAD)}
        if shape.stored_as == "mxfp4":
            parts["dequantizing while loading"] = _dequantizing_peak(shape)
        parts["engine processes"] = VLLM_PROCESS_BYTES
    estimate = _estimate(
        runtime, reading, context, parts, disk=disk, available=available, available_what=available_what
    )
    if on_gpu and gpu_total is not None:
        # vLLM reserves its share of the GPUs' memory up front, whatever the model needs.
        reserved = int(gpu_total * gpu_memory_utilization)
        return replace(estimate, resident_bytes=max(reserved, estimate.resident_bytes))
    return estimate


def mlx_memory(
    reading: ShapeReading, context: int, *, prefill_step: int, available: int | None, available_what: str
) -> MemoryEstimate:
    """MLX (mlx-lm): the weights as they are stored (MXFP4 experts stay MXFP4; MLX-converted repos keep their
    4- or 8-bit form), a KV cache of the full-attention layers for `context` tokens and of the sliding
    layers for their window plus one prefill chunk (held twice: the cache and the copy that lets the next
    turn reuse it), and a margin for activations."""
    shape = _shape(reading)
    if reading.stored is not None:
        held = reading.stored.tensor_bytes
    else:
        held = shape.weights_bytes(
            "mxfp4" if shape.stored_as == "mxfp4" else "fp32" if shape.stored_as == "float32" else "bf16"
        )
    bytes_per_value = 4 if shape.stored_as == "float32" else 2
    sliding = 2 * (shape.sliding_window + prefill_step)
    kv = shape.kv_cache_bytes(context, bytes_per_value, sliding_tokens=sliding)
    parts = {"weights": held, "kv cache": kv, "margin": int((held + kv) * OVERHEAD)}
    disk = reading.stored.file_bytes if reading.stored else held
    runtime = "through MLX"
    return _estimate(runtime, reading, context, parts, disk=disk, available=available, available_what=available_what)
