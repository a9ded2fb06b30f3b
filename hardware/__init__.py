"""The hardware probe: what this machine has, without importing torch or creating a CUDA context.

`probe()` returns a frozen, cached `HardwareReport`. Detectors can be injected for tests.
This release detects the CPU, memory and installed runtimes; accelerator detectors (NVIDIA, AMD,
Apple) report that they are not probed yet, in `HardwareReport.rejections`.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable

from gptoss_hub.hardware.cpu import detect_cpu
from gptoss_hub.hardware.report import Accelerator, CpuInfo, HardwareReport
from gptoss_hub.hardware.runtimes import detect_runtimes

__all__ = ["Accelerator", "CpuInfo", "HardwareReport", "probe"]


def _probe(
    cpu_detector: Callable[[], CpuInfo] = detect_cpu,
    runtime_detector: Callable[[], dict[str, str]] = detect_runtimes,
) -> HardwareReport:
    return HardwareReport(
        os=platform.system(),
        machine=platform.machine(),
        cpu=cpu_detector(),
        runtimes=runtime_detector(),
        rejections={
            vendor: "accelerator detection is not part of this release; only the CPU is used"
            for vendor in ("nvidia", "amd", "apple")
        },
    )


@functools.lru_cache(maxsize=1)
def _cached_probe() -> HardwareReport:
    return _probe()


def probe(
    *,
    cpu_detector: Callable[[], CpuInfo] | None = None,
    runtime_detector: Callable[[], dict[str, str]] | None = None,
    refresh: bool = False,
) -> HardwareReport:
    """Describe this machine. Cached; pass detectors (tests) or `refresh=True` to probe again."""
    if cpu_detector or runtime_detector:
        return _probe(cpu_detector or detect_cpu, runtime_detector or detect_runtimes)
    if refresh:
        _cached_probe.cache_clear()
    return _cached_probe()
