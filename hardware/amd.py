"""AMD GPUs (ROCm), from amd-smi, else rocm-smi, else the kernel's KFD topology in sysfs.

The tools come with ROCm and may be missing from a container that still has the GPU; the amdgpu driver's
KFD topology (`/sys/class/kfd/kfd/topology/nodes`) is there whenever the GPU is usable at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from gptoss_hub.hardware.host import Host, NotDetected, read_optional, run_tool
from gptoss_hub.hardware.report import Accelerator
from gptoss_hub.hardware.visible_devices import select_visible

__all__ = [
    "AMD_SMI_METRIC",
    "AMD_SMI_STATIC",
    "KFD_NODES",
    "ROCM_SMI",
    "amd_accelerator",
    "amd_family",
    "detect_amd",
    "gfx_target",
    "parse_amd_smi",
    "parse_rocm_smi",
    "read_kfd",
]

AMD_SMI_STATIC = ("amd-smi", "static", "--asic", "--vram", "--driver", "--json")
AMD_SMI_METRIC = ("amd-smi", "metric", "--mem-usage", "--json")
ROCM_SMI = ("rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json")
KFD_NODES = "/sys/class/kfd/kfd/topology/nodes"
#: amd-smi on 8 GPUs takes a few seconds.
_AMD_SMI_TIMEOUT_S = 15.0

#: gfx target -> family; exact targets first, then the six-character prefix ("gfx110" covers gfx1100-gfx1103).
_FAMILIES = {
    "gfx906": "GCN5",
    "gfx908": "CDNA",
    "gfx90a": "CDNA2",
    "gfx940": "CDNA3",
    "gfx941": "CDNA3",
    "gfx942": "CDNA3",
    "gfx950": "CDNA4",
    "gfx101": "RDNA1",
    "gfx103": "RDNA2",
    "gfx110": "RDNA3",
    "gfx115": "RDNA3.5",
    "gfx120": "RDNA4",
}
_BF16_FAMILIES = {"CDNA", "CDNA2", "CDNA3", "CDNA4", "RDNA3", "RDNA3.5", "RDNA4"}
_UNIT_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}
_VISIBILITY = ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")


def amd_family(gfx: str | None) -> str | None:
    """The architecture family for a gfx target ("gfx942" -> "CDNA3"), or `None` if unknown."""
    if not gfx:
        return None
    return _FAMILIES.get(gfx) or _FAMILIES.get(gfx[:6])


def gfx_target(gfx_target_version: int) -> str:
    """KFD's `gfx_target_version` (major*10000 + minor*100 + stepping) as a gfx target: 90402 -> "gfx942"."""
    major, minor, stepping = gfx_target_version // 10000, gfx_target_version // 100 % 100, gfx_target_version % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def amd_accelerator(
    *,
    index: int,
    name: str | None,
    gfx: str | None,
    memory_total_bytes: int | None = None,
    memory_free_bytes: int | None = None,
    driver_version: str | None = None,
    uuid: str | None = None,
    source: str | None = None,
) -> Accelerator:
    """An AMD GPU with its family and hardware capabilities derived from the gfx target."""
    family = amd_family(gfx)
    return Accelerator(
        vendor="amd",
        name=name or f"AMD {family + ' ' if family else ''}GPU ({gfx or 'unknown gfx target'})",
        family=family,
        compute_capability=gfx,
        index=index,
        uuid=uuid,
        memory_total_bytes=memory_total_bytes,
        memory_free_bytes=memory_free_bytes,
        driver_version=driver_version,
        api="rocm",
        source=source,
        bf16=family in _BF16_FAMILIES,
        # CDNA4 (MI350/MI355) has FP4 matrix units; CDNA3 dequantizes MXFP4.
        fp4_tensor_cores=family == "CDNA4",
        mxfp4_hardware=family == "CDNA4",
    )


def _present(value: Any) -> Any | None:
    return None if value in (None, "", "N/A", "n/a") else value


def _bytes(value: Any, default_unit: str = "MB") -> int | None:
    """A size in amd-smi's shapes: 196592, "196592 MB" or {"value": 196592, "unit": "MB"} (MB means MiB)."""
    if isinstance(value, dict):
        return _bytes(value.get("value"), str(value.get("unit") or default_unit))
    if isinstance(value, bool) or _present(value) is None:
        return None
    if isinstance(value, (int, float)):
        return int(value * _UNIT_BYTES[default_unit.upper()])
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", str(value))
    if not match:
        return None
    unit = (match.group(2) or default_unit).upper()
    return int(float(match.group(1)) * _UNIT_BYTES.get(unit, _UNIT_BYTES["MB"]))


def _gpu_entries(payload: Any) -> list[dict]:
    # amd-smi before ROCm 6.4 prints a list; later versions wrap it as {"gpu_data": [...]}.
    if isinstance(payload, dict):
        payload = payload.get("gpu_data", [payload])
    if not isinstance(payload, list):
        raise ValueError(f"expected a list of GPUs, got {type(payload).__name__}")
    return [entry for entry in payload if isinstance(entry, dict)]


def _memory_usage(metric_text: str | None) -> dict[int, tuple[int | None, int | None]]:
    if not metric_text:
        return {}
    usage = {}
    try:
        for position, entry in enumerate(_gpu_entries(json.loads(metric_text))):
            memory = entry.get("mem_usage") or {}
            total, free, used = (_bytes(memory.get(k)) for k in ("total_vram", "free_vram", "used_vram"))
            if free is None and total is not None and used is not None:
                free = total - used
            usage[int(entry.get("gpu", position))] = (total, free)
    except (ValueError, TypeError, AttributeError):
        return {}  # free memory is a nicety; an unreadable metric report must not lose the GPUs
    return usage


def parse_amd_smi(static_text: str, metric_text: str | None = None) -> list[Accelerator]:
    """Parse `amd-smi static --asic --vram --driver --json`, with free memory from `amd-smi metric --mem-usage --json`."""
    usage = _memory_usage(metric_text)
    accelerators = []
    for position, entry in enumerate(_gpu_entries(json.loads(static_text))):
        index = int(entry.get("gpu", position))
        asic, vram = entry.get("asic") or {}, entry.get("vram") or {}
        board, driver = entry.get("board") or {}, entry.get("driver") or {}
        total = _bytes(vram.get("size", vram.get("vram_size")))
        metric_total, free = usage.get(index, (None, None))
        accelerators.append(
            amd_accelerator(
                index=index,
                name=_present(asic.get("market_name")) or _present(board.get("product_name")),
                gfx=_present(asic.get("target_graphics_version")),
                memory_total_bytes=total or metric_total,
                memory_free_bytes=free,
                driver_version=_present(driver.get("version", driver.get("driver_version"))),
                source="amd-smi",
            )
        )
    return accelerators


def parse_rocm_smi(text: str) -> list[Accelerator]:
    """Parse `rocm-smi --showproductname --showmeminfo vram --json` (one "cardN" object per GPU)."""
    payload = json.loads(text)
    driver = _present((payload.get("system") or {}).get("Driver version"))
    cards = sorted((key for key in payload if re.fullmatch(r"card\d+", key)), key=lambda key: int(key[4:]))
    accelerators = []
    for position, card in enumerate(cards):
        # rocm-smi has spelled these keys with either case ("Card series", "Card Series").
        fields = {key.lower(): value for key, value in payload[card].items()}
        total = _bytes(fields.get("vram total memory (b)"), "B")
        used = _bytes(fields.get("vram total used memory (b)"), "B")
        accelerators.append(
            amd_accelerator(
                index=position,
                name=_present(fields.get("card series")) or _present(fields.get("card model")),
                gfx=_present(fields.get("gfx version")),
                memory_total_bytes=total,
                memory_free_bytes=total - used if total is not None and used is not None else None,
                driver_version=driver,
                uuid=_present(fields.get("unique id")),
                source="rocm-smi",
            )
        )
    return accelerators


def _properties(text: str) -> dict[str, int]:
    values = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def _kfd_memory(host: Host, node: str) -> int | None:
    try:
        banks = host.list_dir(f"{node}/mem_banks")
    except OSError:
        return None
    sizes: dict[int, int] = {}
    for bank in banks:
        properties = _properties(read_optional(host, f"{node}/mem_banks/{bank}/properties") or "")
        heap = properties.get("heap_type", 0)
        sizes[heap] = sizes.get(heap, 0) + properties.get("size_in_bytes", 0)
    # Heap types 1 and 2 are the GPU's own memory (public and private framebuffer); an APU has only
    # system memory (type 0).
    own = sizes.get(1, 0) + sizes.get(2, 0)
    return own or sum(sizes.values()) or None


def read_kfd(host: Host) -> list[Accelerator]:
    """The GPUs in the amdgpu driver's KFD topology, with free memory from the DRM device where it is exposed."""
    if host.system != "Linux":
        raise NotDetected(f"no KFD topology: {host.system} is not Linux")
    try:
        nodes = sorted(host.list_dir(KFD_NODES), key=lambda name: int(name) if name.isdigit() else -1)
    except OSError:
        raise NotDetected(f"no KFD topology at {KFD_NODES} (the amdgpu driver is not loaded)") from None
    accelerators = []
    for node in nodes:
        properties = _properties(read_optional(host, f"{KFD_NODES}/{node}/properties") or "")
        if not properties.get("gfx_target_version") or not properties.get("simd_count"):
            continue  # a CPU node
        device = f"/sys/class/drm/renderD{properties.get('drm_render_minor', -1)}/device"
        total = _kfd_memory(host, f"{KFD_NODES}/{node}")
        used = read_optional(host, f"{device}/mem_info_vram_used")
        accelerators.append(
            amd_accelerator(
                index=len(accelerators),
                name=read_optional(host, f"{device}/product_name") or None,
                gfx=gfx_target(properties["gfx_target_version"]),
                memory_total_bytes=total,
                memory_free_bytes=total - int(used) if total and used and used.isdigit() else None,
                driver_version=read_optional(host, "/sys/module/amdgpu/version") or None,
                source="kfd",
            )
        )
    if not accelerators:
        raise NotDetected(f"the KFD topology at {KFD_NODES} has no GPU node")
    return accelerators


def _parsed(tool: str, parse: Callable[..., list[Accelerator]], *texts: str | None) -> list[Accelerator]:
    try:
        found = parse(*texts)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise NotDetected(f"could not parse {tool} output: {type(error).__name__}: {error}") from None
    if not found:
        raise NotDetected(f"{tool} ran but listed no GPU")
    return found


def _from_amd_smi(host: Host) -> list[Accelerator]:
    static = run_tool(host, AMD_SMI_STATIC, _AMD_SMI_TIMEOUT_S)
    try:
        metric: str | None = run_tool(host, AMD_SMI_METRIC, _AMD_SMI_TIMEOUT_S)
    except NotDetected:
        metric = None  # free memory is a nicety; the GPUs are known without it
    return _parsed("amd-smi", parse_amd_smi, static, metric)


def _from_rocm_smi(host: Host) -> list[Accelerator]:
    return _parsed("rocm-smi", parse_rocm_smi, run_tool(host, ROCM_SMI))


def detect_amd(host: Host) -> list[Accelerator]:
    """The AMD GPUs this process can see (`ROCR/HIP_VISIBLE_DEVICES` applied); `NotDetected` says why none."""
    reasons = []
    for source in (_from_amd_smi, _from_rocm_smi, read_kfd):
        try:
            found = source(host)
        except NotDetected as error:
            reasons.append(str(error))
            continue
        return select_visible(found, host.env, _VISIBILITY, "AMD")
    raise NotDetected("; ".join(reasons))
