"""The hardware probe: what this machine has, without importing torch or creating a CUDA context.

`probe()` returns a frozen, cached `HardwareReport`: the CPU, every NVIDIA/AMD/Apple GPU this process can see,
the installed runtimes and their builds, and for each detector that found nothing, why
(`HardwareReport.rejections`). Detectors are injectable for tests; `load_fixture("h100")` builds a report by
running the same parsers on outputs recorded from other machines.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping

from gptoss_hub.hardware.collect import ACCELERATOR_DETECTORS, AcceleratorDetector, RuntimeDetector, probe_host
from gptoss_hub.hardware.host import Host, LocalHost, NotDetected
from gptoss_hub.hardware.recorded import RecordedHost, RecordedMachine, fixture_names, load_fixture
from gptoss_hub.hardware.report import Accelerator, CpuInfo, HardwareCapabilities, HardwareReport, RuntimeBuild
from pydantic import ValidationError

from gptoss_hub.errors import InvalidRequestError

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
    """A report from a JSON file or the name of a recorded fixture ("h100").

    The file may hold a report (`HardwareReport.model_dump_json()`), what `gptoss-hub doctor --json` printed
    (its `hardware` field is read), or a recording from `gptoss-hub doctor --record` (replayed through the
    detectors).
    """
    path = os.fspath(source)
    if not os.path.isfile(path):
        return load_fixture(path)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    try:
        if isinstance(data, dict) and isinstance(data.get("hardware"), dict):
            return HardwareReport.model_validate(data["hardware"])
        if isinstance(data, dict) and "accelerators" not in data:
            # Not a report (which always lists its accelerators): a recording of what the detectors read.
            return probe_host(RecordedHost(RecordedMachine.model_validate(data), os.path.basename(path)))
        return HardwareReport.model_validate_json(text)
    except ValidationError as error:
        raise InvalidRequestError(
            f"{path} is neither a hardware report nor a recording: {error}. Write one with "
            "`gptoss-hub doctor --record FILE` (a recording) or `gptoss-hub doctor --json` (a report)."
        ) from None
