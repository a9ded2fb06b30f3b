"""The program that runs inside the sandbox: a stateful interpreter that executes one cell at a time.

It imports nothing from gptoss_hub (the sandbox holds only the interpreter and its packages) and speaks to
the host over two pipes it inherits (their fds are in its configuration): requests and replies, each a
4-byte big-endian length and a JSON object. A request is `{"code": "..."}`; the reply is `{"output": "...", "cut": bytes not shown}`.

Before the first cell it offers itself to the OOM killer first, applies the resource limits it was started
with and, when started as root (with only the capabilities to change user), becomes the unprivileged user it
was given, for good. Each cell runs in one namespace kept between cells, like a notebook: its stdout and
stderr, at the file-descriptor level (so a subprocess's output is caught too), then the value of a last
expression, or the traceback of an exception, make its output. Output past the cap keeps its head and its
tail.
"""

import ast
import json
import os
import resource
import signal
import struct
import sys
import threading
import traceback
from typing import Any

#: The fds of the request and reply pipes (set from the configuration at start).
REQUESTS, REPLIES = -1, -1


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _receive() -> Any:
    (size,) = struct.unpack(">I", _read_exactly(REQUESTS, 4))
    return json.loads(_read_exactly(REQUESTS, size))


def _send(message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(REPLIES, view) :]


class OutputCapture:
    """Everything written to fds 1 and 2, kept up to `cap` bytes (head and tail), read by a thread so that a
    cell writing more than a pipe holds never blocks. A cell's output ends at a marker written after it."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.lock = threading.Condition()
        self.head, self.tail, self.dropped = bytearray(), bytearray(), 0
        self.pending = b""
        self.marker: bytes | None = None
        self.finished = False
        read_end, write_end = os.pipe()
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        self.read_end = read_end
        threading.Thread(target=self._drain, daemon=True).start()

    def _keep(self, data: bytes) -> None:
        room = self.cap // 2 - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        excess = len(self.tail) - (self.cap - self.cap // 2)
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def _drain(self) -> None:
        while True:
            chunk = os.read(self.read_end, 65536)
            if not chunk:
                return
            with self.lock:
                data = self.pending + chunk
                marker = self.marker
                at = data.find(marker) if marker else -1
                if marker and at >= 0:
                    self._keep(data[:at])
                    self.pending = data[at + len(marker) :]
                    self.finished = True
                    self.lock.notify_all()
                else:
                    keep = len(marker) - 1 if marker else 0
                    self._keep(data[: len(data) - keep] if keep else data)
                    self.pending = data[len(data) - keep :] if keep else b""

    def begin(self) -> None:
        with self.lock:
            self.head, self.tail, self.dropped = bytearray(), bytearray(), 0
            self.marker = b"\0cell-end-" + os.urandom(8).hex().encode() + b"\0"
            self.finished = False
            if self.pending:  # written after the previous cell ended (a thread, a subprocess): shown now
                data, self.pending = self.pending, b""
                self._keep(data)

    def end(self) -> tuple[str, int]:
        sys.stdout.flush()
        sys.stderr.flush()
        assert self.marker is not None  # begin() set it
        os.write(1, self.marker)
        with self.lock:
            while not self.finished:
                self.lock.wait()
            output = bytes(self.head) + bytes(self.tail)
            return output.decode("utf-8", "replace"), self.dropped


def _run_cell(code: str, namespace: dict[str, Any]) -> None:
    """Execute `code` in `namespace`; prints what a notebook shows (the last expression's value, or the
    traceback)."""
    try:
        tree = ast.parse(code, filename="<cell>", mode="exec")
    except SyntaxError:
        traceback.print_exc(limit=0)
        return
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):  # a notebook shows the value of a cell's last expression
        tree.body.pop()
        last = ast.Expression(final.value)
    try:
        exec(compile(tree, "<cell>", "exec"), namespace)
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), namespace)
            if value is not None:
                print(repr(value))
    except SystemExit as exc:
        print(f"SystemExit: {exc.code}", file=sys.stderr)
    except BaseException as exc:
        # The traceback from the cell's own frames on: the kernel's frame is not the user's business.
        cell_frames = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        traceback.print_exception(type(exc), exc, cell_frames)


def _apply_limits(config: dict[str, Any]) -> None:
    # The OOM killer's first choice, it and all it starts: when sandboxes together exhaust the machine's
    # memory, one of them is killed (its call says so), not the server running the model, which is the
    # largest process and so otherwise the one chosen. Raising one's own score needs no privilege.
    with open("/proc/self/oom_score_adj", "w") as score:
        score.write("1000")
    for name, value in config["limits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    # A write past the file size limit fails with an error the cell can catch, instead of killing the kernel.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    user = config.get("uid")
    if user is not None:
        os.setgroups([])
        os.setgid(user)
        os.setuid(user)  # from root to an unprivileged user: the capabilities go with it, for good


def main() -> None:
    global REQUESTS, REPLIES
    config = json.loads(sys.argv[1])
    REQUESTS, REPLIES = config["fds"]
    _apply_limits(config)
    os.chdir(config["workdir"])
    capture = OutputCapture(config["output_cap"])
    # Line-buffered text streams over fds 1 and 2, which the capture reads: prints and tracebacks interleave
    # in the order they were written. They stay open for the kernel's whole life.
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    _send({"ready": True})
    while True:
        try:
            request = _receive()
        except EOFError:
            return
        capture.begin()
        _run_cell(request["code"], namespace)
        output, dropped = capture.end()
        _send({"output": output, "cut": dropped})


if __name__ == "__main__":
    main()
