"""`gptoss-hub serve` in a process of its own on a free loopback port: for tests, benchmarks and the scripts
that drive the server (its chat page included) from outside, as a user's client would."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["free_port", "serving_hub"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving_hub(arguments: list[str], log: Path, *, start_seconds: float) -> Iterator[tuple[subprocess.Popen, str]]:
    """`gptoss-hub serve ARGUMENTS` on a free loopback port, its output in `log`, for the length of the block;
    yields the process and its base URL once `/health` answers 200. Raises `RuntimeError` with the end of the
    log when it exits or does not answer within `start_seconds`."""
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "serve", *arguments, "--port", str(port)]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                why = "exited" if server.poll() is not None else f"did not answer within {start_seconds:.0f} s"
                raise RuntimeError(f"gptoss-hub serve {why}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield server, base
    finally:
        server.terminate()
        server.wait(120)
