"""The frozen description of a machine that dispatch decides on.

A report is data only: detectors fill it, dispatch reads it, `gptoss-hub plan --hardware report.json` loads a
saved one (`model_dump_json` / `model_validate_json` round-trip). What the hardware can do is stored per
accelerator by the detector that knows the vendor; what the hardware *and* the installed software can do
together is derived on demand (`HardwareReport.capabilities`), so it can never disagree with the facts.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Accelerator", "CpuInfo", "HardwareCapabilities", "HardwareReport", "RuntimeBuild", "version_tuple"]

_GIB = 1024**3
#: Triton version from which transformers' MXFP4 kernels run on CUDA (transformers' own check).
MXFP4_TRITON_MIN = (3, 4)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Accelerator(_Frozen):
    """One GPU (or Apple silicon's GPU), with what its hardware can do."""

    #: "nvidia", "amd" or "apple".
    vendor: str
    #: The product name the vendor tool reports ("NVIDIA H100 80GB HBM3", "AMD Instinct MI300X", "Apple M3 Max").
    name: str
    #: Architecture family: "Hopper", "Blackwell", "Ampere", "Ada", "Turing", "CDNA3", "RDNA3", "Apple", …
    family: str | None = None
    #: CUDA compute capability ("9.0") for NVIDIA, gfx target ("gfx942") for AMD, `None` for Apple.
    compute_capability: str | None = None
    #: Device index as the vendor tool numbers it (nvidia-smi/NVML: PCI bus order), before any
    #: `CUDA_VISIBLE_DEVICES` renumbering.
    index: int = 0
    uuid: str | None = None
    memory_total_bytes: int | None = None
    memory_free_bytes: int | None = None
    #: Memory shared with the CPU (Apple silicon): `memory_total_bytes` is the machine's RAM.
    unified_memory: bool = False
    driver_version: str | None = None
    #: The programming interface runtimes use on it: "cuda", "rocm" or "metal".
    api: str | None = None
    #: Which detector source produced this entry: "nvml", "nvidia-smi", "amd-smi", "rocm-smi", "kfd", "sysctl".
    source: str | None = None
    #: Native bf16 arithmetic (NVIDIA compute capability >= 8.0, AMD CDNA and RDNA3+, Apple M-series).
    bf16: bool = False
    #: Hardware FP4 tensor math (NVIDIA Blackwell, AMD CDNA4).
    fp4_tensor_cores: bool = False
    #: gpt-oss's MXFP4 weights run without dequantizing to bf16: NVIDIA from compute capability 7.5 (the
    #: triton_kernels transformers uses) and AMD CDNA4 (FP4 units). Whether the software for it is installed
    #: is a separate question (`capabilities`).
    mxfp4_hardware: bool = False
    #: Flash-Attention-3 runs here (it is written for Hopper, sm_90, only).
    flash_attention_3_hardware: bool = False

    @property
    def memory_total_gib(self) -> float | None:
        """Total memory in GiB, for messages."""
        return None if self.memory_total_bytes is None else self.memory_total_bytes / _GIB


class CpuInfo(_Frozen):
    """The host CPU and memory."""

    model: str = "unknown"
    #: Cores this process may use (affinity and cgroup quota applied).
    cores: int = 1
    #: Logical CPUs the OS has, before affinity and quotas.
    logical_cpus: int | None = None
    #: The machine's RAM (`MemTotal`, `hw.memsize`).
    ram_total_bytes: int | None = None
    ram_available_bytes: int | None = None
    #: A container's memory limit (cgroup), when one is set below the machine's RAM.
    ram_limit_bytes: int | None = None
    #: Instruction-set extensions that matter to runtimes: avx2, avx512f, avx512_bf16, amx_tile, amx_bf16, neon, …
    flags: tuple[str, ...] = ()

    @property
    def ram_usable_bytes(self) -> int | None:
        """RAM this process can use: the machine's RAM, capped by a container limit."""
        known = [v for v in (self.ram_total_bytes, self.ram_limit_bytes) if v is not None]
        return min(known) if known else None

    @property
    def amx(self) -> bool:
        """Intel AMX tiles with bf16 (Sapphire Rapids and later): fast bf16 matmul on the CPU."""
        return "amx_tile" in self.flags and "amx_bf16" in self.flags


class RuntimeBuild(_Frozen):
    """One installed runtime: which distribution provides it, its version, and what it was built for."""

    distribution: str
    version: str
    #: Devices the build can run on: "cpu", "cuda", "rocm", "xpu", "mps", "metal", "vulkan", "sycl".
    #: Empty when the installed files do not tell (e.g. a llama.cpp build linked into one library).
    devices: tuple[str, ...] = ()
    #: The CUDA toolkit the build targets ("12.8"), when it is a CUDA build.
    cuda_version: str | None = None
    #: The HIP/ROCm version the build targets, when it is a ROCm build.
    hip_version: str | None = None
    #: Hub repositories of code this runtime fetches that are already in the local cache, so they load
    #: without the network (the `kernels` package: "kernels-community/vllm-flash-attn3", …).
    cached_repos: tuple[str, ...] = ()
    #: Hub downloads are switched off (`HF_HUB_OFFLINE`): only `cached_repos` can be loaded.
    offline: bool = False


class HardwareCapabilities(_Frozen):
    """What this machine can do for gpt-oss, hardware and installed software together.

    Each holds only when every accelerator has it (a job spread over the GPUs runs at the pace of the
    weakest). `why_not` has a sentence for each capability that does not hold.
    """

    bf16: bool = False
    mxfp4_hardware: bool = False
    #: triton >= 3.4 and the MXFP4 kernels (`kernels` fetches them, or `triton_kernels` is installed).
    mxfp4_software: bool = False
    mxfp4: bool = False
    flash_attention_3_hardware: bool = False
    #: The `kernels` package, which fetches Flash-Attention-3 with sinks (kernels-community/vllm-flash-attn3).
    flash_attention_3_software: bool = False
    flash_attention_3: bool = False
    why_not: dict[str, str] = Field(default_factory=dict)


class HardwareReport(_Frozen):
    """What the probe found. Frozen, so it can be cached and shared; JSON round-trips."""

    os: str
    machine: str
    #: The C library ("glibc 2.36"): runtimes' Linux wheels need a minimum one (MLX: glibc 2.35).
    libc: str | None = None
    cpu: CpuInfo
    accelerators: tuple[Accelerator, ...] = ()
    #: Installed runtimes and their versions, read from package metadata (nothing is imported).
    runtimes: dict[str, str] = Field(default_factory=dict)
    #: The same runtimes with their distribution and build (CUDA, ROCm, CPU, Metal …).
    runtime_builds: dict[str, RuntimeBuild] = Field(default_factory=dict)
    #: Detector name -> why it found nothing (for `gptoss-hub doctor`).
    rejections: dict[str, str] = Field(default_factory=dict)

    @property
    def has_gpu(self) -> bool:
        """Whether any accelerator was found."""
        return bool(self.accelerators)

    @property
    def accelerator_count(self) -> int:
        """How many accelerators this process can use."""
        return len(self.accelerators)

    @property
    def accelerator_memory_total_bytes(self) -> int:
        """Memory of all accelerators together (unknown sizes count as 0)."""
        return sum(a.memory_total_bytes or 0 for a in self.accelerators)

    @property
    def accelerator_memory_free_bytes(self) -> int | None:
        """Free memory of all accelerators together, or `None` when any is unknown."""
        free = [a.memory_free_bytes for a in self.accelerators]
        return None if not free or None in free else sum(f for f in free if f is not None)

    @property
    def families(self) -> tuple[str, ...]:
        """The distinct accelerator families, in device order."""
        return tuple(dict.fromkeys(a.family for a in self.accelerators if a.family))

    def runtime_supports(self, runtime: str, device: str) -> bool:
        """Whether `runtime` ("torch", "llama_cpp", "vllm", …) is installed in a build for `device` ("cuda", …)."""
        build = self.runtime_builds.get(runtime)
        return build is not None and device in build.devices

    @property
    def capabilities(self) -> HardwareCapabilities:
        """bf16, MXFP4 and Flash-Attention-3: hardware, software and both, with why each is missing."""
        return _capabilities(self)


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading numeric parts of a version ("3.4.0+rocm6.4" -> (3, 4, 0)), for comparisons."""
    parts = []
    for piece in re.split(r"[.+-]", version):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
        if match.group() != piece:
            break
    return tuple(parts)


def _describe(accelerator: Accelerator) -> str:
    detail = accelerator.compute_capability or accelerator.family or "unknown architecture"
    if detail in accelerator.name:
        return accelerator.name
    label = "compute capability " if accelerator.vendor == "nvidia" and accelerator.compute_capability else ""
    return f"{accelerator.name} ({label}{detail})"


def _lacking(report: HardwareReport, attribute: str) -> list[str]:
    lacking = [_describe(a) for a in report.accelerators if not getattr(a, attribute)]
    counts = {name: lacking.count(name) for name in lacking}
    return [f"{count}x {name}" if count > 1 else name for name, count in counts.items()]


def _mxfp4_software_reason(runtimes: dict[str, str]) -> str | None:
    triton = runtimes.get("triton")
    if triton is None:
        return "triton is not installed (MXFP4 kernels need triton >= 3.4)"
    if version_tuple(triton) < MXFP4_TRITON_MIN:
        return f"triton {triton} is installed; MXFP4 kernels need triton >= 3.4"
    if "kernels" not in runtimes and "triton_kernels" not in runtimes:
        return "the MXFP4 kernels are missing: install `kernels` (it fetches them) or `triton_kernels`"
    return None


#: What each hardware capability needs, said to a user whose GPUs lack it.
_HARDWARE_NEEDS = {
    "bf16": "native bf16 needs NVIDIA compute capability >= 8.0, AMD CDNA or RDNA3+, or Apple silicon",
    "mxfp4_hardware": "MXFP4 without dequantizing to bf16 needs NVIDIA compute capability 7.5 or newer, or AMD CDNA4",
    "flash_attention_3_hardware": "Flash-Attention-3 needs Hopper (compute capability 9.0)",
}


def _hardware_capabilities(report: HardwareReport, why_not: dict[str, str]) -> dict[str, bool]:
    held = {}
    for attribute, need in _HARDWARE_NEEDS.items():
        lacking = _lacking(report, attribute)
        held[attribute] = report.has_gpu and not lacking
        if not report.has_gpu:
            why_not[attribute] = f"no GPU was found; {need}"
        elif lacking:
            why_not[attribute] = f"{', '.join(lacking)}: {need}"
    return held


def _capabilities(report: HardwareReport) -> HardwareCapabilities:
    why_not: dict[str, str] = {}
    hardware = _hardware_capabilities(report, why_not)
    mxfp4_reason = _mxfp4_software_reason(report.runtimes)
    if mxfp4_reason:
        why_not["mxfp4_software"] = mxfp4_reason
    fa3_software = "kernels" in report.runtimes
    if not fa3_software:
        why_not["flash_attention_3_software"] = (
            "the `kernels` package is not installed (it fetches Flash-Attention-3 with sinks)"
        )
    mxfp4 = hardware["mxfp4_hardware"] and mxfp4_reason is None
    fa3 = hardware["flash_attention_3_hardware"] and fa3_software
    if not mxfp4:
        why_not["mxfp4"] = why_not.get("mxfp4_hardware") or why_not["mxfp4_software"]
    if not fa3:
        why_not["flash_attention_3"] = (
            why_not.get("flash_attention_3_hardware") or why_not["flash_attention_3_software"]
        )
    return HardwareCapabilities(
        **hardware,
        mxfp4_software=mxfp4_reason is None,
        mxfp4=mxfp4,
        flash_attention_3_software=fa3_software,
        flash_attention_3=fa3,
        why_not=why_not,
    )
