"""Running the detectors: one report from a CPU detector, a runtime detector and the accelerator detectors.

Every detector runs inside its own error handling, so a missing tool, a broken driver or a bug in one
detector becomes a sentence in `HardwareReport.rejections` and never stops the others.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence

from gptoss_hub.hardware.amd import detect_amd
from gptoss_hub.hardware.apple import detect_apple
from gptoss_hub.hardware.cpu import detect_cpu
from gptoss_hub.hardware.host import Host, NotDetected
from gptoss_hub.hardware.nvidia import detect_nvidia
from gptoss_hub.hardware.report import Accelerator, CpuInfo, HardwareReport, RuntimeBuild
from gptoss_hub.hardware.runtimes import detect_runtime_builds, runtime_builds_from_versions

__all__ = ["ACCELERATOR_DETECTORS", "AcceleratorDetector", "RuntimeDetector", "collect", "probe_host"]

_log = logging.getLogger("gptoss_hub.hardware")

#: Detector name (the key used in `HardwareReport.rejections`) -> function listing that vendor's GPUs.
ACCELERATOR_DETECTORS: Mapping[str, Callable[[Host], Sequence[Accelerator]]] = {
    "nvidia": detect_nvidia,
    "amd": detect_amd,
    "apple": detect_apple,
}

#: Lists accelerators, or raises `NotDetected("why")`.
AcceleratorDetector = Callable[[], Sequence[Accelerator]]
#: Runtime name -> version, or runtime name -> `RuntimeBuild`.
RuntimeDetector = Callable[[], Mapping[str, str] | Mapping[str, RuntimeBuild]]


def _why(error: Exception) -> str:
    if isinstance(error, NotDetected):
        return str(error)
    # A detector bug must not stop the probe; the message still reaches `gptoss-hub doctor`.
    return f"detector failed: {type(error).__name__}: {error}"


def _run(name: str, detector: Callable[[], object], rejections: dict[str, str]) -> object | None:
    try:
        return detector()
    except Exception as error:
        _log.debug("hardware detector %s found nothing", name, exc_info=True)
        rejections[name] = _why(error)
        return None


def _runtime_builds(found: object) -> dict[str, RuntimeBuild]:
    found = dict(found or {})  # type: ignore[call-overload]
    if all(isinstance(value, RuntimeBuild) for value in found.values()):
        return found
    return runtime_builds_from_versions(found)  # a detector that reports versions only


def collect(
    host: Host,
    cpu_detector: Callable[[], CpuInfo],
    runtime_detector: RuntimeDetector,
    detectors: Mapping[str, AcceleratorDetector],
) -> HardwareReport:
    """Run the detectors and assemble the report; what each one could not find goes to `rejections`."""
    rejections: dict[str, str] = {}
    cpu = _run("cpu", cpu_detector, rejections)
    accelerators: list[Accelerator] = []
    for name, detector in detectors.items():
        found = list(_run(name, detector, rejections) or ())  # type: ignore[call-overload]
        if name in rejections:
            continue
        if not all(isinstance(item, Accelerator) for item in found):
            rejections[name] = f"detector failed: it returned {found!r}, not a list of Accelerator"
        elif not found:
            rejections[name] = "no device found"
        else:
            accelerators.extend(found)
    builds = _runtime_builds(_run("runtimes", runtime_detector, rejections))
    return HardwareReport(
        os=host.system,
        machine=host.machine,
        libc=getattr(host, "libc", None),
        cpu=cpu if isinstance(cpu, CpuInfo) else CpuInfo(),
        accelerators=tuple(accelerators),
        runtimes={name: build.version for name, build in builds.items()},
        runtime_builds=builds,
        rejections=rejections,
    )


def probe_host(
    host: Host,
    *,
    cpu_detector: Callable[[], CpuInfo] | None = None,
    runtime_detector: RuntimeDetector | None = None,
    detectors: Mapping[str, AcceleratorDetector | None] | None = None,
) -> HardwareReport:
    """Run the built-in detectors against `host` (this machine or a recorded one), replacing those given.

    `detectors` replaces accelerator detectors by name (`None` drops one, a new name adds one).
    """
    chosen: dict[str, AcceleratorDetector | None] = {
        name: functools.partial(detect, host) for name, detect in ACCELERATOR_DETECTORS.items()
    }
    chosen.update(detectors or {})
    return collect(
        host,
        cpu_detector or functools.partial(detect_cpu, host),
        runtime_detector or functools.partial(detect_runtime_builds, host),
        {name: detector for name, detector in chosen.items() if detector is not None},
    )
