"""NVIDIA GPUs, from NVML (package nvidia-ml-py) when installed, else from nvidia-smi.

Never through `torch.cuda`: that imports torch and creates a CUDA context in the parent process, which breaks
runtimes that fork workers (vLLM) and costs seconds. NVML and nvidia-smi read the driver only.
"""

from __future__ import annotations

import contextlib
import csv
from typing import Any

from gptoss_hub.hardware.host import Host, NotDetected, run_tool
from gptoss_hub.hardware.report import Accelerator
from gptoss_hub.hardware.visible_devices import select_visible

__all__ = [
    "NVIDIA_SMI_FIELDS",
    "detect_nvidia",
    "nvidia_accelerator",
    "nvidia_family",
    "nvidia_smi_command",
    "parse_nvidia_smi",
    "read_nvml",
]

_MIB = 1024**2

#: The columns asked of nvidia-smi (see `nvidia-smi --help-query-gpu`). `compute_cap` needs driver >= 510.
NVIDIA_SMI_FIELDS = ("index", "name", "uuid", "memory.total", "memory.free", "compute_cap", "driver_version")

#: Compute capability (major, minor) -> architecture family; a bare major covers all its minors.
_FAMILIES: dict[tuple[int, ...], str] = {
    (3,): "Kepler",
    (5,): "Maxwell",
    (6,): "Pascal",
    (7, 0): "Volta",
    (7, 2): "Volta",
    (7, 5): "Turing",
    (8, 0): "Ampere",
    (8, 6): "Ampere",
    (8, 7): "Ampere",
    (8, 9): "Ada",
    (9, 0): "Hopper",
    (10,): "Blackwell",  # 10.0 B200/GB200, 10.3 B300
    (11,): "Blackwell",  # 11.0 Thor
    (12,): "Blackwell",  # 12.0 RTX 50xx and RTX PRO 6000, 12.1 GB10
}
_MISSING = {"", "N/A", "[N/A]", "[Not Supported]", "Not Supported"}


def _capability(text: str | None) -> tuple[int, int] | None:
    try:
        major, minor = (text or "").split(".")
        return int(major), int(minor)
    except ValueError:
        return None


def nvidia_family(compute_capability: str | None) -> str | None:
    """The architecture family for a compute capability ("9.0" -> "Hopper"), or `None` if unknown."""
    capability = _capability(compute_capability)
    if capability is None:
        return None
    return _FAMILIES.get(capability) or _FAMILIES.get(capability[:1])


def nvidia_accelerator(
    *,
    index: int,
    name: str,
    compute_capability: str | None,
    memory_total_bytes: int | None = None,
    memory_free_bytes: int | None = None,
    uuid: str | None = None,
    driver_version: str | None = None,
    source: str | None = None,
) -> Accelerator:
    """An NVIDIA GPU with its family and hardware capabilities derived from the compute capability."""
    capability = _capability(compute_capability) or (0, 0)
    return Accelerator(
        vendor="nvidia",
        name=name,
        family=nvidia_family(compute_capability),
        compute_capability=compute_capability,
        index=index,
        uuid=uuid,
        memory_total_bytes=memory_total_bytes,
        memory_free_bytes=memory_free_bytes,
        driver_version=driver_version,
        api="cuda",
        source=source,
        bf16=capability >= (8, 0),
        fp4_tensor_cores=capability[0] >= 10,
        # transformers runs the MXFP4 MoE kernels of triton_kernels from compute capability 7.5 (its own
        # check); Blackwell also has FP4 tensor cores.
        mxfp4_hardware=capability >= (7, 5),
        # Flash-Attention-3 uses Hopper-only instructions (wgmma, TMA); Blackwell does not run it.
        flash_attention_3_hardware=capability[0] == 9,
    )


def nvidia_smi_command(fields: tuple[str, ...] = NVIDIA_SMI_FIELDS) -> list[str]:
    """The nvidia-smi command line that lists the GPUs with `fields`, one CSV line each."""
    return ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"]


def _value(text: str) -> str | None:
    return None if text.strip() in _MISSING else text.strip()


def _mib(text: str | None) -> int | None:
    return int(float(text)) * _MIB if text is not None else None


def parse_nvidia_smi(text: str, fields: tuple[str, ...] = NVIDIA_SMI_FIELDS) -> list[Accelerator]:
    """Parse `nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits` (memory in MiB)."""
    accelerators = []
    lines = [line for line in text.splitlines() if line.strip()]
    for number, row in enumerate(csv.reader(lines, skipinitialspace=True), start=1):
        if len(row) != len(fields):
            raise NotDetected(f"could not parse nvidia-smi output line {number}: {lines[number - 1]!r}")
        values = {field: _value(cell) for field, cell in zip(fields, row, strict=True)}
        try:
            accelerators.append(
                nvidia_accelerator(
                    index=int(values["index"] or number - 1),
                    name=values["name"] or "NVIDIA GPU",
                    compute_capability=values.get("compute_cap"),
                    memory_total_bytes=_mib(values["memory.total"]),
                    memory_free_bytes=_mib(values["memory.free"]),
                    uuid=values["uuid"],
                    driver_version=values["driver_version"],
                    source="nvidia-smi",
                )
            )
        except ValueError:
            raise NotDetected(f"could not parse nvidia-smi output line {number}: {lines[number - 1]!r}") from None
    return accelerators


def _text(value: Any) -> str:
    # pynvml returned bytes before nvidia-ml-py 11.515; str since.
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(nvml: Any, call: Any, *args: Any) -> Any | None:
    try:
        return call(*args)
    except nvml.NVMLError:
        return None  # e.g. memory info is "Not Supported" on unified-memory parts (GB10)


def read_nvml(nvml: Any) -> list[Accelerator]:
    """List the GPUs through NVML (`nvml` is the `pynvml` module); NVML errors become `NotDetected`."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        raise NotDetected(f"NVML could not start: {error}") from None
    try:
        driver = _optional(nvml, nvml.nvmlSystemGetDriverVersion)
        accelerators = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = _optional(nvml, nvml.nvmlDeviceGetMemoryInfo, handle)
            capability = _optional(nvml, nvml.nvmlDeviceGetCudaComputeCapability, handle)
            uuid = _optional(nvml, nvml.nvmlDeviceGetUUID, handle)
            accelerators.append(
                nvidia_accelerator(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    compute_capability=f"{capability[0]}.{capability[1]}" if capability else None,
                    memory_total_bytes=int(memory.total) if memory else None,
                    memory_free_bytes=int(memory.free) if memory else None,
                    uuid=_text(uuid) if uuid is not None else None,
                    driver_version=_text(driver) if driver is not None else None,
                    source="nvml",
                )
            )
        return accelerators
    except nvml.NVMLError as error:
        raise NotDetected(f"NVML failed: {error}") from None
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()


def _from_nvidia_smi(host: Host) -> list[Accelerator]:
    fields = NVIDIA_SMI_FIELDS
    try:
        text = run_tool(host, nvidia_smi_command(fields))
    except NotDetected as error:
        if "not a valid field" not in str(error):
            raise
        # Drivers before 510 do not know compute_cap: list the GPUs without it rather than not at all.
        fields = tuple(f for f in fields if f != "compute_cap")
        text = run_tool(host, nvidia_smi_command(fields))
    found = parse_nvidia_smi(text, fields)
    if not found:
        raise NotDetected("nvidia-smi ran but listed no GPU")
    return found


def detect_nvidia(host: Host) -> list[Accelerator]:
    """The NVIDIA GPUs this process can see (`CUDA_VISIBLE_DEVICES` applied); `NotDetected` says why none."""
    nvml = host.nvml()
    nvml_note = "NVML not tried: nvidia-ml-py is not installed"
    if nvml is not None:
        try:
            found = read_nvml(nvml)
            if found:
                return select_visible(found, host.env, ("CUDA_VISIBLE_DEVICES",), "NVIDIA")
            nvml_note = "NVML lists no GPU"
        except NotDetected as error:
            nvml_note = str(error)
        except Exception as error:  # an old or broken pynvml must not hide nvidia-smi's answer
            nvml_note = f"NVML failed: {type(error).__name__}: {error}"
    try:
        found = _from_nvidia_smi(host)
    except NotDetected as error:
        raise NotDetected(f"{error} ({nvml_note})") from None
    return select_visible(found, host.env, ("CUDA_VISIBLE_DEVICES",), "NVIDIA")
