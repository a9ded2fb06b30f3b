"""How a model is split across processes, checked before anything loads, and what each process needs.

vLLM splits a model by tensor parallel (each layer's heads and experts across `tensor_parallel_size`
ranks), by pipeline parallel (its layers across stages) and into data-parallel replicas, over processes on
one node (`mp`), several nodes (`mp` with `nnodes`), or a Ray cluster. What can never work is known from
the model's shape and the machine, so it is refused here with what to change rather than after minutes of
loading:

- gpt-oss does not replicate KV heads, so the tensor-parallel size must divide both the KV heads and the
  query heads (8 and 64 in the released models: 1, 2, 4 or 8);
- a pipeline has at most one stage per layer;
- each rank needs a device of its own on its node: a GPU, or on a CPU a core;
- vLLM's CPU platform does not run on Ray, and its CPU worker fails at the first request with pipeline
  stages in eager mode (the second stage's buffers are made only in the warm-up that eager mode skips).

On a CPU, vLLM binds each rank's threads to cores and fails ("Not enough allowed NUMA nodes") when it cannot
place several ranks on one NUMA node by itself: `cpu_thread_binding` gives each rank its own cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.shape import Shape
    from gptoss_hub.sources import ModelSpec

__all__ = ["cpu_thread_binding", "parallel_reasons", "tensor_parallel_sizes"]


def tensor_parallel_sizes(shape: Shape) -> list[int]:
    """The tensor-parallel sizes `shape` can be split by: those dividing its KV heads and its query heads."""
    return [
        size
        for size in range(1, shape.kv_heads + 1)
        if shape.kv_heads % size == 0 and shape.attention_heads % size == 0
    ]


def parallel_reasons(
    report: HardwareReport,
    spec: ModelSpec,
    shape: Shape | None,
    device: str | None,
    *,
    tensor: int | None,
    pipeline: int,
    data: int,
    executor: str | None,
    nnodes: int,
    node_rank: int = 0,
    enforce_eager: bool,
) -> list[str]:
    """Why this split of `spec` cannot run here (empty when it can, as far as can be told before loading)."""
    reasons = []
    if shape is not None and tensor is not None and tensor not in tensor_parallel_sizes(shape):
        reasons.append(
            f"tensor_parallel_size={tensor} cannot split {spec.name}: it has {shape.kv_heads} KV heads and "
            f"{shape.attention_heads} query heads, and gpt-oss does not replicate KV heads, so the size must "
            f"divide both: use {', '.join(map(str, tensor_parallel_sizes(shape)))} (with pipeline_parallel_size "
            "or more nodes for more devices)."
        )
    if shape is not None and pipeline > shape.layers:
        reasons.append(
            f"pipeline_parallel_size={pipeline} is more stages than {spec.name} has layers ({shape.layers})."
        )
    if node_rank >= nnodes:
        reasons.append(f"node_rank={node_rank} is not one of the {nnodes} nodes (0 to {nnodes - 1}).")
    if nnodes > 1 and executor == "ray":
        reasons.append("nnodes is for the mp executor; with Ray, the cluster's nodes are used: leave nnodes out.")
    ranks = (tensor or 1) * pipeline * data
    if ranks % nnodes:
        reasons.append(f"{ranks} ranks (tensor x pipeline x data parallel) do not split evenly over {nnodes} nodes.")
    per_node = -(-ranks // nnodes)
    if device in ("cuda", "rocm") and executor != "ray":
        gpus = sum(1 for accelerator in report.accelerators if accelerator.api == device)
        if per_node > gpus:
            where = "each node" if nnodes > 1 else "this machine"
            reasons.append(
                f"{per_node} ranks on {where} need {per_node} GPUs; this machine has {gpus}: lower the parallel "
                "sizes, or spread the ranks over more nodes (nnodes, or a Ray cluster)."
            )
    if device == "cpu":
        if executor == "ray":
            reasons.append(
                "vLLM's CPU platform does not run on Ray: use distributed_executor_backend='mp' (several nodes "
                "with nnodes, node_rank, master_addr and master_port)."
            )
        if per_node > report.cpu.cores:
            reasons.append(f"{per_node} ranks need a core each; this machine has {report.cpu.cores}.")
        if pipeline > 1 and enforce_eager:
            reasons.append(
                "pipeline_parallel_size > 1 with enforce_eager=True fails at the first request on vLLM's CPU "
                "build (the later stages' buffers are made in the warm-up eager mode skips): drop enforce_eager."
            )
    return reasons


def cpu_thread_binding(ranks: int, cpus: list[int]) -> str:
    """vLLM's `VLLM_CPU_OMP_THREADS_BIND` for `ranks` ranks on the CPUs `cpus`: each rank a contiguous share,
    ranks separated by '|' ("0|1", "0-3|4-7"); the CPUs left over go to the last rank."""
    if ranks < 1 or len(cpus) < ranks:
        raise ValueError(f"{ranks} ranks cannot each have a CPU of the {len(cpus)} allowed")
    share = len(cpus) // ranks
    groups = [cpus[rank * share : (rank + 1) * share] for rank in range(ranks)]
    groups[-1] = cpus[(ranks - 1) * share :]
    return "|".join(_cpu_list(group) for group in groups)


def _cpu_list(cpus: list[int]) -> str:
    """`cpus` as a CPU list: ranges joined by commas ("0-3,8")."""
    parts: list[str] = []
    start = previous = cpus[0]
    for cpu in [*cpus[1:], None]:
        if cpu is not None and cpu == previous + 1:
            previous = cpu
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if cpu is not None:
            start = previous = cpu
    return ",".join(parts)
