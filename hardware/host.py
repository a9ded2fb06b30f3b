"""How detectors see a machine: commands, files, CPU counts and installed packages, behind one interface.

`probe()` runs the detectors against `LocalHost` (this machine). `gptoss_hub.hardware.recorded` runs the same
detectors against outputs recorded from other machines, so every parser is exercised without the hardware.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

__all__ = [
    "TOOL_TIMEOUT_S",
    "CommandResult",
    "Host",
    "InstalledDistribution",
    "LocalHost",
    "NotDetected",
    "read_optional",
    "run_tool",
]

#: Seconds an external tool (nvidia-smi, amd-smi, sysctl) may take before the detector gives up on it.
TOOL_TIMEOUT_S = 5.0
_MESSAGE_CHARS = 300


class NotDetected(Exception):
    """A detector found nothing; the message says why and becomes `HardwareReport.rejections[detector]`."""


@dataclass(frozen=True)
class CommandResult:
    """What a finished command printed and returned."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


class InstalledDistribution(Protocol):
    """An installed Python distribution, seen through its metadata (never imported)."""

    name: str
    version: str

    def files(self) -> list[str]:
        """Paths of the installed files, relative to site-packages (empty when not recorded)."""
        ...

    def read_text(self, path: str) -> str | None:
        """The text of one installed file, or `None` when it is missing."""
        ...


class Host(Protocol):
    """The machine a detector inspects."""

    #: `platform.system()`: "Linux", "Darwin", "Windows".
    system: str
    #: `platform.machine()`: "x86_64", "arm64", "aarch64".
    machine: str
    #: The C library runtimes' wheels are built against ("glibc 2.36"); `None` where there is none to tell.
    libc: str | None
    env: Mapping[str, str]

    def which(self, tool: str) -> str | None:
        """The tool's path, or `None` when it is not on PATH."""
        ...

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run a command; raises `OSError` if it cannot start, `subprocess.TimeoutExpired` if it hangs."""
        ...

    def read_text(self, path: str) -> str:
        """A file's text; raises `OSError` when it cannot be read."""
        ...

    def list_dir(self, path: str) -> list[str]:
        """Names in a directory; raises `OSError` when it is not one."""
        ...

    def usable_cpus(self) -> int:
        """CPUs this process may run on (scheduler affinity)."""
        ...

    def logical_cpus(self) -> int | None:
        """Logical CPUs of the machine."""
        ...

    def physical_memory_bytes(self) -> int | None:
        """RAM from `sysconf`, where `/proc/meminfo` is missing."""
        ...

    def nvml(self) -> Any | None:
        """The `pynvml` module (package nvidia-ml-py), or `None` when it is not installed."""
        ...

    def distribution(self, name: str) -> InstalledDistribution | None:
        """An installed distribution by name, or `None`."""
        ...


class _LocalDistribution:
    def __init__(self, distribution: metadata.Distribution) -> None:
        self._distribution = distribution
        self.name = distribution.metadata["Name"] or ""
        self.version = distribution.version

    def files(self) -> list[str]:
        return [str(path) for path in self._distribution.files or ()]

    def read_text(self, path: str) -> str | None:
        try:
            return self._distribution.locate_file(path).read_text(encoding="utf-8")  # type: ignore[union-attr]
        except (OSError, UnicodeDecodeError, AttributeError):
            return None


def _libc() -> str | None:
    """This process's C library and version ("glibc 2.36"), from `platform.libc_ver()`; `None` off Linux."""
    if platform.system() != "Linux":
        return None
    name, version = platform.libc_ver()
    return f"{name} {version}" if name and version else None


class LocalHost:
    """This machine."""

    def __init__(self) -> None:
        self.system = platform.system()
        self.machine = platform.machine()
        self.libc = _libc()
        self.env: Mapping[str, str] = os.environ

    def which(self, tool: str) -> str | None:
        """See `Host.which`."""
        return shutil.which(tool)

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """See `Host.run`."""
        # LC_ALL=C: the parsers read English messages and '.' decimal points.
        env = {**os.environ, "LC_ALL": "C"}
        done = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=timeout, env=env, check=False
        )
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def read_text(self, path: str) -> str:
        """See `Host.read_text`."""
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def list_dir(self, path: str) -> list[str]:
        """See `Host.list_dir`."""
        return os.listdir(path)

    def usable_cpus(self) -> int:
        """See `Host.usable_cpus`."""
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1

    def logical_cpus(self) -> int | None:
        """See `Host.logical_cpus`."""
        return os.cpu_count()

    def physical_memory_bytes(self) -> int | None:
        """See `Host.physical_memory_bytes`."""
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            return None

    def nvml(self) -> Any | None:
        """See `Host.nvml`."""
        try:
            import pynvml  # type: ignore[import-not-found]  # optional: nvidia-ml-py
        except ImportError:
            return None
        return pynvml

    def distribution(self, name: str) -> InstalledDistribution | None:
        """See `Host.distribution`."""
        try:
            return _LocalDistribution(metadata.distribution(name))
        except metadata.PackageNotFoundError:
            return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def run_tool(host: Host, argv: Sequence[str], timeout: float = TOOL_TIMEOUT_S) -> str:
    """Run a vendor tool and return its stdout; every way it can fail becomes `NotDetected` with the reason."""
    tool = argv[0]
    if host.which(tool) is None:
        raise NotDetected(f"{tool} not found on PATH")
    try:
        result = host.run(argv, timeout)
    except subprocess.TimeoutExpired:
        raise NotDetected(f"{tool} did not answer within {timeout:g} s") from None
    except OSError as error:
        raise NotDetected(f"{tool} could not be started: {error}") from None
    if result.returncode != 0:
        said = _short(result.stderr) or _short(result.stdout) or "no output"
        raise NotDetected(f"`{' '.join(argv)}` exited with code {result.returncode}: {said}")
    return result.stdout


def read_optional(host: Host, path: str) -> str | None:
    """A file's stripped text, or `None` when it cannot be read (sysfs files come and go with drivers)."""
    try:
        return host.read_text(path).strip()
    except OSError:
        return None
