"""An httpx transport whose every connect, read and write ends by one deadline.

httpx's timeouts bound each socket operation, not an exchange: a server that sends one byte of its headers
every few seconds keeps a request open for days while no single read times out. The page fetcher opens
whatever a model (and so anyone who can prompt it) asks for, so it gives each page one deadline, enforced
here on the network streams themselves, headers, TLS handshake and body alike.
"""

from __future__ import annotations

import ssl
import time
import typing

import httpcore
import httpx

__all__ = ["transport_with_deadline"]


def _time_left(deadline: float, timeout: float | None) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the deadline for this page has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: float):
        self.stream, self.deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, _time_left(self.deadline, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, _time_left(self.deadline, timeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        secured = self.stream.start_tls(ssl_context, server_hostname, _time_left(self.deadline, timeout))
        return _DeadlineStream(secured, self.deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self.stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float):
        self.backend, self.deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.backend.connect_tcp(host, port, _time_left(self.deadline, timeout), local_address, socket_options)
        return _DeadlineStream(stream, self.deadline)

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


def transport_with_deadline(deadline: float) -> httpx.HTTPTransport:
    """An `httpx.HTTPTransport` (no proxy, the environment ignored) whose network operations all end by
    `deadline` (a `time.monotonic()` value); past it they raise `httpx.ReadTimeout`."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx has no argument for a network backend; its pool does, and is rebuilt here with the same TLS
    # settings (the pinned behaviour is tested: a header sent one byte at a time ends at the deadline).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=_DeadlineBackend(deadline)
    )
    return transport
