"""Start sandboxes from one thread that lives as long as the process.

bubblewrap's `--die-with-parent` asks the kernel to kill the sandbox when its parent dies, and for Linux the
parent is the *thread* that started it, not the process. A session started from a short-lived thread (a
worker that exits when idle, a `with ThreadPoolExecutor()` block, a request handler's thread) would lose its
kernel, and every name defined in it, the moment that thread ended. Starting every kernel from one daemon
thread keeps the guarantee that matters (the sandbox dies with the process) without that surprise.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from concurrent.futures import Future
from typing import Any

__all__ = ["launch"]

_requests: queue.SimpleQueue[tuple[list[str], dict[str, Any], Future[subprocess.Popen[bytes]]]] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()


def _serve() -> None:
    while True:
        command, options, future = _requests.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(subprocess.Popen(command, **options))
        except BaseException as exc:  # handed to the caller, who raises it in its own thread
            future.set_exception(exc)


def launch(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(command, **options)`, run on the process-wide launcher thread; raises what Popen
    raises. File descriptors are the process's, so `pass_fds` works as it does from the calling thread."""
    global _thread
    with _thread_lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_serve, name="gptoss-hub-sandbox-launcher", daemon=True)
            _thread.start()
    future: Future[subprocess.Popen[bytes]] = Future()
    _requests.put((command, options, future))
    return future.result()
