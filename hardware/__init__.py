"""The hardware probe: what this machine has, without importing torch or creating a CUDA context.

`probe()` returns a frozen, cached `HardwareReport`: the CPU, every NVIDIA/AMD/Apple GPU this process can see,
the installed runtimes and their builds, and for each detector that found nothing, why
(`HardwareReport.rejections`). Detectors are injectable for tests; `load_fixture("h100")` builds a report by
running the same parsers on outputs recorded from other machines.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping

from gptoss_hub.hardware.collect import ACCELERATOR_DETECTORS, AcceleratorDetector, RuntimeDetector, probe_host
from gptoss_hub.hardware.host import Host, LocalHost, NotDetected
from gptoss_hub.hardware.recorded import fixture_names, load_fixture
from gptoss_hub.hardware.report import Accelerator, CpuInfo, HardwareCapabilities, HardwareReport, RuntimeBuild

__all__ = [
    "ACCELERATOR_DETECTORS",
    "Accelerator",
    "CpuInfo",
    "HardwareCapabilities",
    "HardwareReport",
    "Host",
    "NotDetected",
    "RuntimeBuild",
    "fixture_names",
    "load_fixture",
    "load_report",
    "probe",
    "probe_host",
]


@functools.lru_cache(maxsize=1)
def _cached_probe() -> HardwareReport:
    return probe_host(LocalHost())


def probe(
    *,
    cpu_detector: Callable[[], CpuInfo] | None = None,
    runtime_detector: RuntimeDetector | None = None,
    detectors: Mapping[str, AcceleratorDetector | None] | None = None,
    host: Host | None = None,
    refresh: bool = False,
) -> HardwareReport:
    """Describe this machine. Cached; pass detectors or a `host` (tests) or `refresh=True` to probe again.

    `cpu_detector` returns a `CpuInfo`; `runtime_detector` returns runtime name -> version (or -> `RuntimeBuild`);
    `detectors` replaces accelerator detectors by name ("nvidia", "amd", "apple"; `None` drops one, a new name
    adds one), each returning a list of `Accelerator` or raising `NotDetected("why")`; `host` points the
    built-in detectors at another machine (a `RecordedHost`). Nothing a detector raises escapes: it is
    recorded in `HardwareReport.rejections`.
    """
    if cpu_detector is None and runtime_detector is None and detectors is None and host is None:
        if refresh:
            _cached_probe.cache_clear()
        return _cached_probe()
    return probe_host(
        host or LocalHost(), cpu_detector=cpu_detector, runtime_detector=runtime_detector, detectors=detectors
    )


def load_report(source: str | os.PathLike[str]) -> HardwareReport:
    """A report from a JSON file (written with `model_dump_json`) or the name of a recorded fixture ("h100")."""
    path = os.fspath(source)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return HardwareReport.model_validate_json(handle.read())
    return load_fixture(path)
