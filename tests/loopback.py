"""A plain HTTP server on a free loopback port, for tests that stand in for a web site or an API; and
`gptoss-hub serve` in a process of its own (`serving_hub`)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gptoss_hub.testing.serving import serving_hub

__all__ = ["QuietHandler", "serving", "serving_hub"]


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

    def drip(self, data: bytes, *, every: float = 0.1) -> None:
        """Write `data` a byte at a time, `every` seconds apart: each read a client makes gets something
        quickly, the whole takes `len(data) * every` seconds. A client that has gone is not an error."""
        with contextlib.suppress(OSError):
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(every)
