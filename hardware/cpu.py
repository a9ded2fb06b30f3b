"""CPU detector: model, usable cores, memory and instruction sets, from the OS without extra packages.

Linux: `/proc/cpuinfo`, `/proc/meminfo`, scheduler affinity and the cgroup's CPU quota and memory limit
(a container sees the host's cores and RAM but may use far less). macOS: `sysctl`.
"""

from __future__ import annotations

from gptoss_hub.hardware.host import Host, LocalHost, NotDetected, read_optional, run_tool
from gptoss_hub.hardware.report import CpuInfo

__all__ = ["CPU_FLAGS", "detect_cpu"]

#: Instruction-set extensions that matter to runtimes, in the order the report lists them.
CPU_FLAGS = (
    # x86 (`flags` in /proc/cpuinfo)
    "avx",
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
    "fma",
    "f16c",
    # Arm (`Features` in /proc/cpuinfo; `sysctl hw.optional` on macOS)
    "neon",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
    "sme",
)
_X86_FLAGS = frozenset(CPU_FLAGS[: CPU_FLAGS.index("neon")])
_ARM_FLAGS = frozenset(CPU_FLAGS[CPU_FLAGS.index("neon") :])
#: Other spellings: Linux on Arm says "asimd"; macOS `sysctl hw.optional` has its own keys.
_ALIASES = {
    "asimd": "neon",
    "hw.optional.neon": "neon",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_SME": "sme",
    "hw.optional.avx1_0": "avx",
    "hw.optional.avx2_0": "avx2",
    "hw.optional.avx512f": "avx512f",
    "hw.optional.fma": "fma",
}
#: A cgroup v1 memory limit this large means "no limit" (the kernel stores one just under 2**63).
_NO_LIMIT = 2**60


def _known_flags(found: set[str], arm: bool) -> tuple[str, ...]:
    # The families share names with other meanings: x86's "sme" is AMD's memory encryption, not Arm's SME.
    wanted = _ARM_FLAGS if arm else _X86_FLAGS
    found = {_ALIASES.get(flag, flag) for flag in found}
    return tuple(flag for flag in CPU_FLAGS if flag in found and flag in wanted)


def _cgroup_paths(host: Host) -> dict[str, str]:
    """Controller ("" for cgroup v2) -> this process's cgroup path, from `/proc/self/cgroup`."""
    paths = {}
    for line in (read_optional(host, "/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
    return paths


def _cgroup_value(host: Host, controller: str, v1_file: str, v2_file: str) -> str | None:
    paths = _cgroup_paths(host)
    v1, v2 = paths.get(controller, "").rstrip("/"), paths.get("", "").rstrip("/")
    # The process's own cgroup first; a container with its own cgroup namespace sees itself at the root.
    for path in (
        f"/sys/fs/cgroup{v2}/{v2_file}",
        f"/sys/fs/cgroup/{v2_file}",
        f"/sys/fs/cgroup/{controller}{v1}/{v1_file}",
        f"/sys/fs/cgroup/{controller}/{v1_file}",
    ):
        value = read_optional(host, path)
        if value:
            return value
    return None


def _cpu_quota(host: Host) -> int | None:
    value = _cgroup_value(host, "cpu", "cpu.cfs_quota_us", "cpu.max")
    if value is None:
        return None
    try:
        if " " in value:  # cgroup v2: "QUOTA PERIOD" or "max PERIOD"
            quota, period = value.split()[:2]
        else:
            quota = value
            period = _cgroup_value(host, "cpu", "cpu.cfs_period_us", "cpu.max") or "100000"
        if quota in ("max", "-1"):
            return None
        return max(1, int(int(quota) / int(period)))
    except ValueError:
        return None


def _memory_limit(host: Host, ram_total: int | None) -> int | None:
    value = _cgroup_value(host, "memory", "memory.limit_in_bytes", "memory.max")
    if value is None or not value.isdigit():
        return None  # "max" or unreadable: no limit
    limit = int(value)
    if limit >= _NO_LIMIT or (ram_total is not None and limit >= ram_total):
        return None
    return limit


def _meminfo(host: Host) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in (read_optional(host, "/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024
    return values


def _linux_cpu(host: Host) -> CpuInfo:
    model, flags, arm = "", set(), False
    for line in (read_optional(host, "/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags, arm = set(value.split()), key == "Features"
    meminfo = _meminfo(host)
    total = meminfo.get("MemTotal") or host.physical_memory_bytes()
    cores = host.usable_cpus()
    quota = _cpu_quota(host)
    return CpuInfo(
        model=model or host.machine or "unknown",
        cores=min(cores, quota) if quota else cores,
        logical_cpus=host.logical_cpus(),
        ram_total_bytes=total,
        ram_available_bytes=meminfo.get("MemAvailable"),
        ram_limit_bytes=_memory_limit(host, total),
        flags=_known_flags(flags, arm),
    )


def _sysctl_flags(host: Host) -> set[str]:
    try:
        listing = run_tool(host, ("sysctl", "hw.optional"))
    except NotDetected:
        return set()
    flags = set()
    for line in listing.splitlines():
        key, _, value = line.partition(":")
        if value.strip() == "1":
            flags.add(key.strip())
    return flags


def _macos_cpu(host: Host) -> CpuInfo:
    def value(name: str) -> str | None:
        try:
            return run_tool(host, ("sysctl", "-n", name)).strip() or None
        except NotDetected:
            return None

    memsize = value("hw.memsize")
    return CpuInfo(
        model=value("machdep.cpu.brand_string") or host.machine or "unknown",
        cores=host.usable_cpus(),
        logical_cpus=host.logical_cpus(),
        ram_total_bytes=int(memsize) if memsize and memsize.isdigit() else host.physical_memory_bytes(),
        flags=_known_flags(_sysctl_flags(host), host.machine == "arm64"),
    )


def detect_cpu(host: Host | None = None) -> CpuInfo:
    """The CPU, usable cores and memory of `host` (this machine by default)."""
    host = host or LocalHost()
    if host.system == "Darwin":
        return _macos_cpu(host)
    return _linux_cpu(host)
