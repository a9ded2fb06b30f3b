"""CPU detector: model, usable cores, memory and instruction sets, from the OS without extra packages."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from gptoss_hub.hardware.report import CpuInfo

__all__ = ["detect_cpu"]

_INTERESTING_FLAGS = (
    "avx",
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "amx_tile",
    "amx_bf16",
    "fma",
    "f16c",
)


def _usable_cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # A container's CPU quota (cgroup v2) can be lower than the cores it sees.
    quota_file = Path("/sys/fs/cgroup/cpu.max")
    try:
        quota, period = quota_file.read_text().split()
        if quota != "max":
            cores = max(1, min(cores, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return values


def detect_cpu() -> CpuInfo:
    """Read the CPU model and flags from `/proc/cpuinfo` (Linux) and memory from `/proc/meminfo`."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("unknown", "", platform.machine()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    meminfo = _meminfo()
    total = meminfo.get("MemTotal")
    if total is None and hasattr(os, "sysconf"):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            total = None
    return CpuInfo(
        model=model,
        cores=_usable_cores(),
        ram_total_bytes=total,
        ram_available_bytes=meminfo.get("MemAvailable"),
        flags=tuple(f for f in _INTERESTING_FLAGS if f in flags) + (("neon",) if "asimd" in flags else ()),
    )
