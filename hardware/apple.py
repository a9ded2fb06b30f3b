"""Apple silicon: the GPU shares the chip and its memory, and runtimes reach it through Metal.

Everything comes from `sysctl`, which every Mac has; nothing is imported (no PyObjC, no torch.mps).
"""

from __future__ import annotations

from gptoss_hub.hardware.host import Host, NotDetected, run_tool
from gptoss_hub.hardware.report import Accelerator

__all__ = ["apple_accelerator", "detect_apple", "sysctl"]


def sysctl(host: Host, name: str) -> str:
    """One `sysctl -n NAME` value; `NotDetected` when it cannot be read."""
    return run_tool(host, ("sysctl", "-n", name)).strip()


def apple_accelerator(chip: str, memory_bytes: int | None) -> Accelerator:
    """The GPU of an Apple silicon chip ("Apple M3 Max") with the machine's unified memory."""
    return Accelerator(
        vendor="apple",
        name=chip,
        family="Apple",
        memory_total_bytes=memory_bytes,
        unified_memory=True,
        api="metal",
        source="sysctl",
        # Metal computes in bf16 on every M-series GPU (M1 emulates it, M2 and later have it in hardware).
        bf16=True,
    )


def _rosetta(host: Host) -> bool:
    try:
        return sysctl(host, "hw.optional.arm64") == "1"
    except NotDetected:
        return False  # the key does not exist on Intel Macs


def detect_apple(host: Host) -> list[Accelerator]:
    """The Apple silicon GPU, or `NotDetected` with why not (not macOS, an Intel Mac, Python under Rosetta)."""
    if host.system != "Darwin":
        raise NotDetected(f"not macOS ({host.system})")
    if host.machine != "arm64":
        if _rosetta(host):
            raise NotDetected(
                "this Python runs under Rosetta (x86_64) on Apple silicon, where Metal runtimes do not load; "
                "install an arm64 Python"
            )
        raise NotDetected(f"an Intel Mac ({host.machine}): no Apple silicon GPU")
    chip = sysctl(host, "machdep.cpu.brand_string")
    try:
        memory: int | None = int(sysctl(host, "hw.memsize"))
    except (NotDetected, ValueError):
        memory = None
    return [apple_accelerator(chip or "Apple silicon", memory)]
