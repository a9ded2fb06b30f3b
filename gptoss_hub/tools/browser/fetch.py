"""`HttpFetcher`: pages over HTTP(S) for the browser, without becoming a proxy into the server's network.

The model chooses the addresses, and anyone can prompt the model, so every address is checked before any
byte is sent: its host must resolve only to public addresses (loopback, private, link-local, multicast and
reserved ranges are refused unless allow-listed), and the connection goes to the address that was checked,
not to a second lookup that could answer differently. Redirects are followed by hand, each hop checked the
same way. A response is read within a deadline, up to a size cap (the rest is cut, and the page says so),
and only as a web page or text: other content types and binary bodies are refused.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlparse

from gptoss_hub.tools.browser.html import html_to_page
from gptoss_hub.tools.browser.pages import BrowserBackendError, Page

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpFetcher"]

_TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
_MAX_REDIRECTS = 5
_USER_AGENT = "gptoss-hub-browser/1 (+https://github.com/openai/gpt-oss)"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(allow: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in allow]


class HttpFetcher:
    """Fetches pages over HTTP(S) for a `Browser`.

    `allow` lists addresses or networks ("127.0.0.1", "10.0.0.0/8") reachable even though they are not
    public; `timeout` bounds each page (connecting and reading all of it), `max_bytes` what is read of it.
    `connect_to` sends requests for one "host:port" to another, as curl's `--connect-to` does (the address
    policy applies to where the connection goes; the request keeps its own host).
    """

    def __init__(
        self,
        *,
        allow: Iterable[str] = (),
        timeout: float = 15.0,
        max_bytes: int = 2_000_000,
        connect_to: Mapping[str, str] | None = None,
    ):
        self.allowed = _networks(allow)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.connect_to = dict(connect_to or {})

    def fetch(self, url: str) -> Page:
        """The page at `url`, following redirects; raises `BrowserBackendError` saying why not."""
        import httpx

        from gptoss_hub.tools.browser.deadline import transport_with_deadline

        deadline = time.monotonic() + self.timeout
        transport = transport_with_deadline(deadline)  # the whole page, redirects included, by one deadline
        with httpx.Client(
            transport=transport, timeout=httpx.Timeout(self.timeout), follow_redirects=False, trust_env=False
        ) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                parsed = urlparse(url)
                if parsed.scheme not in ("http", "https") or not parsed.hostname:
                    raise BrowserBackendError("only http and https addresses can be opened")
                port = parsed.port or (443 if parsed.scheme == "https" else 80)
                host, _, rerouted = self.connect_to.get(f"{parsed.hostname}:{port}", "").rpartition(":")
                if host:
                    port = int(rerouted)
                address = self._checked_address(host or parsed.hostname, port)
                # Connect to the address just checked; the Host header and TLS name stay the URL's host.
                netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
                target = parsed._replace(netloc=netloc).geturl()
                headers = {"Host": parsed.netloc, "User-Agent": _USER_AGENT, "Accept": "text/html, text/plain;q=0.9"}
                request = client.build_request(
                    "GET", target, headers=headers, extensions={"sni_hostname": parsed.hostname or ""}
                )
                try:
                    response = client.send(request, stream=True)
                except httpx.TimeoutException as error:
                    raise BrowserBackendError(f"no answer within {self.timeout:g} s") from error
                except httpx.HTTPError as error:
                    raise BrowserBackendError(f"{type(error).__name__}: {error}") from error
                try:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    return self._page(url, response, deadline)
                finally:
                    response.close()
        raise BrowserBackendError(f"more than {_MAX_REDIRECTS} redirects")

    def _checked_address(self, host: str, port: int) -> str:
        """The address to connect to for `host`, after checking every address it resolves to."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, ValueError) as error:
            raise BrowserBackendError(f"cannot resolve {host}: {error}") from error
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        for address in addresses:
            if not address.is_global and not any(address in network for network in self.allowed):
                raise BrowserBackendError(
                    f"{host} is a private or local address ({address}); the browser does not open those"
                )
        return str(addresses[0])

    def _page(self, url: str, response: httpx.Response, deadline: float) -> Page:
        import httpx

        if response.status_code >= 400:
            raise BrowserBackendError(f"HTTP {response.status_code}")
        kind = response.headers.get("content-type", "text/html").split(";")[0].strip().lower()
        if kind not in _TEXT_TYPES:
            raise BrowserBackendError(f"not a web page or text (content type {kind})")
        body = bytearray()
        cut = False
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    del body[self.max_bytes :]
                    cut = True
                    break
                if time.monotonic() > deadline:
                    raise BrowserBackendError(f"the page took more than {self.timeout:g} s to arrive")
        except httpx.TimeoutException as error:
            raise BrowserBackendError(f"no answer within {self.timeout:g} s") from error
        if b"\x00" in body[:8192]:
            raise BrowserBackendError("the response is binary, not text")
        text = body.decode(response.encoding or "utf-8", errors="replace")
        if kind == "text/html" or kind == "application/xhtml+xml":
            page = html_to_page(text, url)
        else:
            from gptoss_hub.tools.browser.display import page_text

            page = Page(url, urlparse(url).path.rsplit("/", 1)[-1] or urlparse(url).netloc, page_text(url, text))
        if cut:
            note = f"\n\n[the page was cut at {self.max_bytes:,} bytes]"
            page = Page(page.url, page.title, page.text + note, page.links)
        return page
