"""`PythonSession`: one sandboxed, stateful python kernel, and the results of the cells it runs.

A session starts its kernel in the sandbox on first use and keeps it between calls, so names defined by one
call exist in the next (the notebook gpt-oss was trained with). A cell that outlives the timeout, or a
kernel that dies (its CPU time spent, killed by the kernel's OOM killer), ends that kernel: the result says
so, and the next call starts a fresh one, with `/mnt/data` kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.tools.python.drive import empty, over_limit
from gptoss_hub.tools.python.launcher import launch
from gptoss_hub.tools.python.sandbox import DATA_DIR, PythonLimits, bwrap_command, interpreter, probe_sandbox

__all__ = ["DEFAULT_OUTPUT_BYTES", "DEFAULT_TIMEOUT", "PythonResult", "PythonSession"]

#: Seconds a cell may run: what the python tool's description promises the model.
DEFAULT_TIMEOUT = 120.0
#: Output bytes a result keeps (its head and its tail); the model reads every one of them as tokens.
DEFAULT_OUTPUT_BYTES = 20_000
#: Seconds a kernel may take to start before the session gives up on it.
START_TIMEOUT = 30.0
_KERNEL = Path(__file__).with_name("kernel.py")


#: Seconds between two measurements of `/mnt/data` while a cell runs.
DRIVE_CHECK_SECONDS = 0.5


class _DriveFull(Exception):
    """`/mnt/data` holds more than the session's limits allow."""


class _BrokenReply(Exception):
    """What came from the kernel's reply pipe is no reply it sends: code in a cell wrote there."""


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the kernel's process group (the sandbox and all it started) unless the kernel was reaped: then its
    number may belong to another process group already."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # ended between the two calls
            os.killpg(process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class PythonResult:
    """What one call produced: the output a notebook shows, and how the call ended."""

    #: stdout and stderr as written, then the last expression's value or the traceback.
    output: str
    #: Output bytes not shown (the middle was cut: the head and the tail are kept).
    cut_bytes: int = 0
    #: How the call ended; all but "ok" mean the session's state is gone: the cell ran out of time, the
    #: kernel died, the code broke the kernel's reply pipe, the session was closed while the call ran, or
    #: the code wrote more to `/mnt/data` than `PythonLimits` allows.
    status: Literal["ok", "timeout", "died", "broken", "closed", "drive_full"] = "ok"

    @property
    def text(self) -> str:
        """The result as the model reads it (the python tool's message)."""
        text = self.output
        if self.cut_bytes:
            text += f"\n[output cut: {self.cut_bytes} bytes in the middle are not shown]"
        if self.status == "timeout":
            text += (
                "\n[timed out: the cell was stopped and the python session restarted; names defined before are gone]"
            )
        elif self.status == "died":
            text += "\n[the python kernel died (a resource limit was reached, or the code ended it); the session restarted and names defined before are gone]"
        elif self.status == "drive_full":
            text += (
                "\n[the code wrote more to /mnt/data than this session allows; the session restarted, names "
                "defined before are gone, and /mnt/data holds only the files it was given]"
            )
        elif self.status == "closed":
            text += "\n[the python session was closed while this call ran; names defined before are gone]"
        elif self.status == "broken":
            text += "\n[the code wrote into the python kernel's own reply pipe; the session restarted and names defined before are gone]"
        return text.strip("\n") or "[no output: print() what you want to see]"


def _count_processes(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as status:
                    for line in status:
                        if line.startswith("Uid:"):
                            count += int(line.split()[1]) == uid
                            break
            except OSError:  # the process ended while being read
                continue
    return count


class PythonSession:
    """A sandboxed python kernel that keeps its state between calls; `run(code)` returns a `PythonResult`.

    `timeout`: seconds per call (120 by default, as the tool's description tells the model). `limits`:
    memory, CPU, processes, file size, open files (`PythonLimits`). `files`: host paths copied into
    `/mnt/data` before the first call. `network=True` lets the code reach the network (off by default).
    `output_bytes`: output kept per call. `stateful=False` runs each call in a fresh kernel (render the
    prompt with `stateless_python=True` so the model knows). `sandbox="none"` runs the kernel as a plain subprocess of this
    process, with no isolation at all: only for code you would run yourself.
    Use it as a context manager, or call `close()`: it ends the kernel and deletes `/mnt/data`.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        limits: PythonLimits | None = None,
        files: list[str | os.PathLike[str]] | None = None,
        network: bool = False,
        output_bytes: int = DEFAULT_OUTPUT_BYTES,
        sandbox: Literal["bwrap", "none"] = "bwrap",
        stateful: bool = True,
    ):
        if timeout <= 0:
            raise InvalidRequestError(f"timeout must be a positive number of seconds, got {timeout}.")
        if sandbox not in ("bwrap", "none"):
            raise InvalidRequestError(f"sandbox must be 'bwrap' or 'none' (no isolation at all), got {sandbox!r}.")
        self.timeout, self.limits, self.network = timeout, limits or PythonLimits(), network
        self.output_bytes, self.sandbox, self.stateful = output_bytes, sandbox, stateful
        # The largest reply the kernel sends: its output as JSON escapes it (six characters for a byte at
        # worst, `\ufffd`) and the envelope around it.
        self._reply_limit = 6 * output_bytes + 4096
        self._bwrap = probe_sandbox() if sandbox == "bwrap" else None
        self._as_root = os.geteuid() == 0 and sandbox == "bwrap"
        #: Under root, the unprivileged user the kernel becomes (its own, so the process limit is its own).
        self._uid = random.randint(100_000, 999_999) if self._as_root else None
        self.data_dir = Path(tempfile.mkdtemp(prefix="gptoss-hub-python-"))
        self._files = [Path(file) for file in files or ()]
        if self._uid is not None:
            os.chown(self.data_dir, self._uid, self._uid)
        for file in self._files:
            self._place(file)  # a file that is not there is the caller's error
        self._process: subprocess.Popen[bytes] | None = None
        self._requests = self._replies = -1
        self._lock = threading.Lock()
        self._closed = False

    # -- the kernel ---------------------------------------------------------------------------------

    def _start(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        uid = self._uid if self._uid is not None else os.geteuid()
        config = {
            "limits": self.limits.rlimits(_count_processes(uid)),
            "uid": self._uid,
            "workdir": DATA_DIR if self._bwrap else str(self.data_dir),
            "output_cap": self.output_bytes,
            "fds": [request_read, reply_write],  # inherited through bwrap as they are
        }
        kernel = [interpreter(), "-I", "-c", _KERNEL.read_text(), json.dumps(config)]
        if self._bwrap is not None:
            prefix = bwrap_command(self._bwrap, data_dir=self.data_dir, as_root=self._as_root, network=self.network)
            command = [*prefix, *kernel]
        else:
            command = kernel
        try:
            self._process = launch(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(request_read, reply_write),
                start_new_session=True,  # one process group: a timeout kills the kernel and all it started
            )
        finally:
            os.close(request_read)
            os.close(reply_write)
        self._requests, self._replies = request_write, reply_read
        try:
            ready = self._receive(START_TIMEOUT)
        except _BrokenReply:  # no cell has run yet: the kernel itself misbehaved
            ready = None
        if ready is None:
            error = self._stop()
            raise RuntimeError(f"The python kernel did not start: {error or 'no reply'}")

    def _stop(self) -> str:
        """End the kernel and everything it started; returns what it wrote to stderr, if anything."""
        process, self._process = self._process, None
        for fd in (self._requests, self._replies):
            if fd >= 0:
                os.close(fd)
        self._requests = self._replies = -1
        if process is None:
            return ""
        _kill_group(process)
        process.wait()
        assert process.stderr is not None
        return process.stderr.read().decode("utf-8", "replace").strip()

    def _send(self, message: dict[str, object]) -> bool:
        data = json.dumps(message).encode()
        try:
            os.write(self._requests, struct.pack(">I", len(data)) + data)
        except OSError:  # the kernel is gone
            return False
        return True

    def _receive(self, timeout: float, *, watch_drive: bool = False) -> dict[str, object] | None:
        """The kernel's next reply, or `None` when it does not come within `timeout` or the kernel died.
        With `watch_drive`, `/mnt/data` is measured while waiting (`_DriveFull` when it is over its limits).

        Raises `_BrokenReply` when what arrives is not a reply the kernel could have sent: a cell can reach
        the kernel's pipes, and neither a forged length nor garbage may cost the host memory or an exception.
        """
        deadline = time.monotonic() + timeout
        data = bytearray()
        needed = 4
        while len(data) < needed:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not select.select([self._replies], [], [], min(left, DRIVE_CHECK_SECONDS))[0]:
                if watch_drive:
                    self._check_drive()
                continue
            chunk = os.read(self._replies, min(needed - len(data), 1 << 20))
            if not chunk:
                return None
            data += chunk
            if needed == 4 and len(data) == 4:
                (size,) = struct.unpack(">I", data)
                if size > self._reply_limit:
                    raise _BrokenReply(f"a reply of {size} bytes announced (at most {self._reply_limit})")
                needed = 4 + size
        try:
            reply = json.loads(bytes(data[4:]))
        except ValueError as exc:
            raise _BrokenReply(f"a reply that is not JSON ({exc})") from None
        if not isinstance(reply, dict):
            raise _BrokenReply("a reply that is not a JSON object")
        return reply

    # -- calls --------------------------------------------------------------------------------------

    def run(self, code: str) -> PythonResult:
        """Run `code` as the next cell and return what it produced."""
        with self._lock:
            if self._closed:
                raise InvalidRequestError("This python session is closed.")
            try:
                if self._process is None:
                    self._start()
            except RuntimeError:
                if not self._closed:
                    raise
            if self._closed:  # by `close()` from another thread, which could not take the lock
                self._stop()
                return PythonResult(output="", status="closed")
            started = time.monotonic()
            try:
                reply = self._receive(self.timeout, watch_drive=True) if self._send({"code": code}) else None
                self._check_drive()  # also what a quick cell wrote between two measurements
            except _BrokenReply:
                self._stop()  # its protocol state is unknown: the next call starts a fresh kernel
                return PythonResult(output="", status="broken")
            except _DriveFull:
                self._stop()
                self._refill_drive()
                return PythonResult(output="", status="drive_full")
            if reply is None and self._closed:  # killed by `close()` while it ran
                self._stop()
                return PythonResult(output="", status="closed")
            if reply is None:
                timed_out = time.monotonic() - started >= self.timeout
                self._stop()  # the next call starts a fresh kernel
                return PythonResult(output="", status="timeout" if timed_out else "died")
            cut = reply.get("cut", 0)
            if not self.stateful:
                self._stop()  # the next call starts from nothing, as the stateless description promises
            return PythonResult(output=str(reply.get("output", "")), cut_bytes=cut if isinstance(cut, int) else 0)

    def _check_drive(self) -> None:
        if over_limit(self.data_dir, self.limits.data_bytes, self.limits.data_entries):
            raise _DriveFull

    def _place(self, file: Path) -> None:
        """Copy `file` into `/mnt/data`, owned by the kernel's user."""
        target = self.data_dir / file.name
        shutil.copy(file, target)
        if self._uid is not None:
            os.chown(target, self._uid, self._uid)

    def _refill_drive(self) -> None:
        """`/mnt/data` holding only the files the session was given (those still on the host)."""
        empty(self.data_dir)
        for file in self._files:
            if file.is_file():
                self._place(file)

    def restart(self) -> None:
        """Forget every name defined so far: the next call starts a fresh kernel (`/mnt/data` is kept)."""
        with self._lock:
            self._stop()

    @property
    def running(self) -> bool:
        """Whether a kernel is running (a session starts one on its first call)."""
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        """End the kernel and delete the session's files; a call running in another thread ends at once,
        with status "closed". Safe to call twice."""
        self._closed = True
        # Killed before taking the lock, which a running call holds until its reply or its timeout: a
        # server freeing an idle or evicted session must not wait two minutes for a cell to finish.
        process = self._process
        if process is not None:
            _kill_group(process)
        with self._lock:
            self._stop()
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> PythonSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()
