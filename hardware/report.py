"""The frozen description of a machine that dispatch decides on."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Accelerator", "CpuInfo", "HardwareReport"]


class Accelerator(BaseModel):
    """One GPU or other accelerator."""

    model_config = ConfigDict(frozen=True)

    vendor: str
    name: str
    #: e.g. "Hopper", "Ampere", "CDNA3", "Apple".
    family: str | None = None
    #: CUDA compute capability ("9.0") or gfx target ("gfx942").
    compute_capability: str | None = None
    memory_total_bytes: int | None = None
    memory_free_bytes: int | None = None


class CpuInfo(BaseModel):
    """The host CPU and memory."""

    model_config = ConfigDict(frozen=True)

    model: str = "unknown"
    #: Cores this process may use (affinity and cgroup quota applied).
    cores: int = 1
    ram_total_bytes: int | None = None
    ram_available_bytes: int | None = None
    #: Instruction-set extensions that matter to runtimes: avx2, avx512f, amx_tile, neon, …
    flags: tuple[str, ...] = ()


class HardwareReport(BaseModel):
    """What the probe found. Frozen, so it can be cached and shared."""

    model_config = ConfigDict(frozen=True)

    os: str
    machine: str
    cpu: CpuInfo
    accelerators: tuple[Accelerator, ...] = ()
    #: Installed runtimes and their versions, read from package metadata (nothing is imported).
    runtimes: dict[str, str] = Field(default_factory=dict)
    #: Detector name -> why it found nothing (for `gptoss-hub doctor`).
    rejections: dict[str, str] = Field(default_factory=dict)

    @property
    def has_gpu(self) -> bool:
        """Whether any accelerator was found."""
        return bool(self.accelerators)
