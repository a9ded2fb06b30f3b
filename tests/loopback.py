"""A plain HTTP server on a free loopback port, for tests that stand in for a web site or an API."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve `handler` on 127.0.0.1 for the length of the block; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and shrugs off clients that hang up."""

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes = b"", content_type: str = "application/json", headers=()) -> None:
        """Send `status`, the headers and `body`; a client that has gone is not an error."""
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if body:
                self.wfile.write(body)


@contextlib.contextmanager
def serving_hub(arguments: list[str], log: Path, *, start_seconds: float) -> Iterator[tuple[subprocess.Popen, str]]:
    """`gptoss-hub serve ARGUMENTS` on a free loopback port, its output in `log`, for the length of the block;
    yields the process and its base URL once `/health` answers 200 (within `start_seconds`)."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "serve", *arguments, "--port", str(port)]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            assert server.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield server, base
    finally:
        server.terminate()
        server.wait(120)
