"""Recording this machine as a fixture: the probe runs here while every command, file and package it reads is kept.

`record_machine()` returns a `RecordedMachine` that `gptoss_hub.hardware.recorded` replays through the same
detectors, so a machine seen once (a user's bug report, a GPU lent for an hour) becomes a test of the parsers
and a target for `gptoss-hub plan --hardware FILE`. `gptoss-hub doctor --record FILE` writes one.

NVML is left out on purpose: a recording holds what tools printed and files said, and NVML is a library
call, so the NVIDIA detector answers from nvidia-smi while recording (`RecordedHost` does the same).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from gptoss_hub.hardware.collect import probe_host
from gptoss_hub.hardware.host import CommandResult, Host, InstalledDistribution, LocalHost
from gptoss_hub.hardware.recorded import (
    RecordedCommand,
    RecordedDistribution,
    RecordedHost,
    RecordedMachine,
    Text,
)
from gptoss_hub.hardware.report import HardwareReport

__all__ = ["RecordingHost", "expected_fields", "record_machine"]


def _as_text(text: str) -> Text:
    """Text as a recording stores it: the list of its lines when it ends with a newline (readable JSON)."""
    return text[:-1].split("\n") if text.endswith("\n") else text


class _RecordingEnv(Mapping[str, str]):
    """The environment, keeping each variable a detector looked up and found."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env, self.seen = env, {}

    def __getitem__(self, key: str) -> str:
        value = self._env[key]
        self.seen[key] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


class _RecordingDistribution:
    def __init__(self, distribution: InstalledDistribution, record: dict[str, Any]) -> None:
        self._distribution, self._record = distribution, record
        self.name, self.version = distribution.name, distribution.version

    def files(self) -> list[str]:
        listed = self._distribution.files()
        for path in listed:
            self._record["files"].setdefault(path, None)
        return listed

    def read_text(self, path: str) -> str | None:
        text = self._distribution.read_text(path)
        self._record["files"][path] = None if text is None else _as_text(text)
        return text


class RecordingHost:
    """A `Host` that answers from another one (this machine by default) and writes down what was asked."""

    def __init__(self, host: Host | None = None) -> None:
        self._host = host or LocalHost()
        self.system, self.machine, self.libc = self._host.system, self._host.machine, self._host.libc
        self._env = _RecordingEnv(self._host.env)
        self.env: Mapping[str, str] = self._env
        self._commands: dict[str, RecordedCommand] = {}
        self._files: dict[str, Text] = {}
        self._distributions: dict[str, dict[str, Any]] = {}
        self._numbers: dict[str, int | None] = {}

    def which(self, tool: str) -> str | None:
        """See `Host.which` (a tool counts as present in the recording once one of its commands is kept)."""
        return self._host.which(tool)

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """See `Host.run`."""
        result = self._host.run(argv, timeout)
        self._commands[" ".join(argv)] = RecordedCommand(
            returncode=result.returncode, stdout=_as_text(result.stdout), stderr=_as_text(result.stderr)
        )
        return result

    def read_text(self, path: str) -> str:
        """See `Host.read_text`."""
        text = self._host.read_text(path)
        self._files[path] = _as_text(text)
        return text

    def list_dir(self, path: str) -> list[str]:
        """See `Host.list_dir` (a recording knows a folder by the files kept under it)."""
        return self._host.list_dir(path)

    def usable_cpus(self) -> int:
        """See `Host.usable_cpus`."""
        count = self._host.usable_cpus()
        self._numbers["usable_cpus"] = count
        return count

    def logical_cpus(self) -> int | None:
        """See `Host.logical_cpus`."""
        count = self._host.logical_cpus()
        self._numbers["logical_cpus"] = count
        return count

    def physical_memory_bytes(self) -> int | None:
        """See `Host.physical_memory_bytes`."""
        size = self._host.physical_memory_bytes()
        self._numbers["physical_memory_bytes"] = size
        return size

    def nvml(self) -> Any | None:
        """Never NVML while recording: see the module's docstring."""
        return None

    def distribution(self, name: str) -> InstalledDistribution | None:
        """See `Host.distribution`."""
        found = self._host.distribution(name)
        if found is None:
            return None
        record = self._distributions.setdefault(found.name or name, {"version": found.version, "files": {}})
        return _RecordingDistribution(found, record)

    def recording(self, description: str = "", expected: Mapping[str, Any] | None = None) -> RecordedMachine:
        """Everything read so far, as a fixture."""
        return RecordedMachine(
            description=description,
            system=self.system,
            machine=self.machine,
            libc=self.libc,
            env=dict(self._env.seen),
            commands=dict(self._commands),
            files=dict(self._files),
            distributions={
                name: RecordedDistribution(version=record["version"], files=record["files"])
                for name, record in self._distributions.items()
            },
            expected=dict(expected or {}),
            **{key: value for key, value in self._numbers.items() if value is not None},
        )


def expected_fields(report: HardwareReport) -> dict[str, Any]:
    """The report as a fixture's `expected` states it: every field, plus the derived capabilities."""
    return {**report.model_dump(mode="json"), "capabilities": report.capabilities.model_dump(mode="json")}


def record_machine(description: str = "", host: Host | None = None) -> RecordedMachine:
    """Probe this machine (or `host`) and return the recording, its `expected` set to what the probe found.

    The recording is replayed at once; if the replay does not give the same report (a detector read
    something a recording cannot hold), `RuntimeError` says which fields differ rather than saving a fixture
    that lies.
    """
    recorder = RecordingHost(host)
    report = probe_host(recorder)
    recorded = recorder.recording(description or _describe(report), expected_fields(report))
    replayed = probe_host(RecordedHost(recorded, "recording"))
    if replayed != report:
        differ = [key for key, value in report.model_dump().items() if replayed.model_dump()[key] != value]
        raise RuntimeError(f"the recording does not replay to the same report (fields: {', '.join(differ)})")
    return recorded


def _describe(report: HardwareReport) -> str:
    gpus = ", ".join(sorted({a.name for a in report.accelerators})) or "no GPU"
    cpu = report.cpu.model or "an unknown CPU"
    return f"{gpus}; {cpu}, {report.cpu.cores} usable cores ({report.os} {report.machine})"
