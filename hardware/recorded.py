"""Machines recorded as data: what their tools printed and their files said, replayed through the real detectors.

Each fixture (`fixtures/NAME.json`) holds the raw output of the commands the detectors run (nvidia-smi,
amd-smi, rocm-smi, sysctl), the files they read (`/proc/cpuinfo`, KFD topology), the installed distributions,
and the report fields a test expects. Shared pieces (a host CPU, a software stack) live in
`fixtures/parts/NAME.json` and are pulled in with `"include"`. `load_fixture("h100")` runs every detector on
the recording, so a fixture tests the parsers, and `gptoss-hub plan --hardware h100` can plan for a machine
that is not here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from gptoss_hub.hardware.collect import probe_host
from gptoss_hub.hardware.host import CommandResult
from gptoss_hub.hardware.report import HardwareReport
from pydantic import BaseModel, ConfigDict, Field

from gptoss_hub.errors import InvalidRequestError

__all__ = ["RecordedHost", "RecordedMachine", "fixture_names", "load_fixture", "recorded_machine"]

#: Text, or its lines (joined with newlines, with a final newline, as tools print them).
Text = str | list[str]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordedCommand(_Strict):
    """One command's recorded result."""

    returncode: int = 0
    stdout: Text = ""
    #: JSON output, stored as JSON for readability and printed indented as the tools print it.
    stdout_json: Any = None
    stderr: Text = ""


class RecordedDistribution(_Strict):
    """One installed distribution: its version and the installed files that matter (content or `None`)."""

    version: str
    files: dict[str, Text | None] = Field(default_factory=dict)


class RecordedMachine(_Strict):
    """A recorded machine (or, under `parts/`, a piece of one)."""

    description: str = ""
    #: Parts merged in first, in order (`parts/NAME.json`); this file's own values win.
    include: list[str] = Field(default_factory=list)
    system: str | None = None
    machine: str | None = None
    #: "glibc 2.35"; `None` where it was not recorded.
    libc: str | None = None
    usable_cpus: int | None = None
    logical_cpus: int | None = None
    physical_memory_bytes: int | None = None
    env: dict[str, str] = Field(default_factory=dict)
    #: Command line (argv joined by single spaces) -> result. A tool is on PATH when a command of it is recorded.
    commands: dict[str, RecordedCommand] = Field(default_factory=dict)
    #: Absolute path -> content. Directories exist where recorded files are under them.
    files: dict[str, Text] = Field(default_factory=dict)
    #: Distribution name -> what is installed.
    distributions: dict[str, RecordedDistribution] = Field(default_factory=dict)
    #: Fields of the report this machine must produce (a subset of `model_dump(mode="json")`, plus `capabilities`).
    expected: dict[str, Any] = Field(default_factory=dict)

    def merged_over(self, base: RecordedMachine) -> RecordedMachine:
        """This fixture with `base`'s values where it has none."""
        data = base.model_dump(exclude_unset=True)
        for key, value in self.model_dump(exclude_unset=True).items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) and key != "expected" else value
        return RecordedMachine.model_validate(data)


def _text(value: Text | None) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return "\n".join(value) + "\n"


class _RecordedDistribution:
    def __init__(self, name: str, recorded: RecordedDistribution) -> None:
        self.name, self.version, self._files = name, recorded.version, recorded.files

    def files(self) -> list[str]:
        return list(self._files)

    def read_text(self, path: str) -> str | None:
        content = self._files.get(path)
        return None if content is None else _text(content)


class RecordedHost:
    """A `Host` that answers from a `RecordedMachine` instead of this machine."""

    def __init__(self, recorded: RecordedMachine, name: str = "fixture") -> None:
        self.recorded, self.name = recorded, name
        self.system = recorded.system or "Linux"
        self.machine = recorded.machine or "x86_64"
        self.libc = recorded.libc
        self.env: Mapping[str, str] = dict(recorded.env)
        self._tools = {command.split(" ", 1)[0] for command in recorded.commands}

    def which(self, tool: str) -> str | None:
        """See `Host.which`."""
        return f"/usr/bin/{tool}" if tool in self._tools else None

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """See `Host.run`; a command of a present tool that was not recorded is a fixture bug."""
        command = " ".join(argv)
        if argv[0] not in self._tools:
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        if command not in self.recorded.commands:
            raise LookupError(f"fixture {self.name!r} has no recording of `{command}`")
        result = self.recorded.commands[command]
        stdout = json.dumps(result.stdout_json, indent=4) + "\n" if result.stdout_json is not None else result.stdout
        return CommandResult(result.returncode, _text(stdout), _text(result.stderr))

    def read_text(self, path: str) -> str:
        """See `Host.read_text`."""
        if path not in self.recorded.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return _text(self.recorded.files[path])

    def list_dir(self, path: str) -> list[str]:
        """See `Host.list_dir`."""
        prefix = path.rstrip("/") + "/"
        names = {key[len(prefix) :].split("/", 1)[0] for key in self.recorded.files if key.startswith(prefix)}
        if not names:
            raise FileNotFoundError(2, "No such file or directory", path)
        return sorted(names)

    def usable_cpus(self) -> int:
        """See `Host.usable_cpus`."""
        return self.recorded.usable_cpus or 1

    def logical_cpus(self) -> int | None:
        """See `Host.logical_cpus`."""
        return self.recorded.logical_cpus or self.recorded.usable_cpus

    def physical_memory_bytes(self) -> int | None:
        """See `Host.physical_memory_bytes`."""
        return self.recorded.physical_memory_bytes

    def nvml(self) -> Any | None:
        """See `Host.nvml`: recordings hold tool output, so NVML is never there."""
        return None

    def distribution(self, name: str) -> _RecordedDistribution | None:
        """See `Host.distribution` (names compare as pip normalizes them)."""
        wanted = _normalized(name)
        for recorded_name, recorded in self.recorded.distributions.items():
            if _normalized(recorded_name) == wanted:
                return _RecordedDistribution(recorded_name, recorded)
        return None


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _directory() -> Any:
    return resources.files("gptoss_hub.hardware") / "fixtures"


def _read(path: Any) -> RecordedMachine:
    return RecordedMachine.model_validate_json(path.read_text(encoding="utf-8"))


def fixture_names() -> tuple[str, ...]:
    """The names of the recorded machines, sorted ("h100", "mi300x", "m3-max", …)."""
    return tuple(sorted(p.name[: -len(".json")] for p in _directory().iterdir() if p.name.endswith(".json")))


def recorded_machine(name: str) -> RecordedMachine:
    """The recording called `name`, with its parts merged in."""
    path = _directory() / f"{name}.json"
    if name not in fixture_names():
        raise InvalidRequestError(
            f"No recorded machine named {name!r}. Known: {', '.join(fixture_names())}; "
            "or pass a report saved with `HardwareReport.model_dump_json()`."
        )
    recorded = _read(path)
    merged = RecordedMachine()
    for part in recorded.include:
        merged = _read(_directory() / "parts" / f"{part}.json").merged_over(merged)
    return recorded.merged_over(merged)


def load_fixture(name: str) -> HardwareReport:
    """The report the probe produces on the recorded machine `name`, by running the real detectors on it."""
    return probe_host(RecordedHost(recorded_machine(name), name))
