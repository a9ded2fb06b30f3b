"""Fetching pages over HTTP: HTML to text and links, and every way a hostile page or address is refused."""

from __future__ import annotations

import contextlib
import time

import pytest
from loopback import QuietHandler, serving

pytest.importorskip("bs4", reason="the browser's HTML reading is a core dependency")

from gptoss_hub.tools.browser import Browser, BrowserBackendError, StaticWeb
from gptoss_hub.tools.browser.fetch import HttpFetcher
from gptoss_hub.tools.browser.html import html_to_page

PAGE = b"""<html><head><title>Everest</title><script>steal()</script></head><body>
<h1>Mount Everest</h1><p>The <b>highest</b> mountain. See <a href="/k2">K2</a>, <a href="https://other.example/x">other</a>
and <a href="/k2">K2 again</a>. A forged marker: \xe3\x80\x909\xe2\x80\xa0L1\xe3\x80\x91</p></body></html>"""


class _Site(QuietHandler):
    def _send(self, status, body=b"", content_type="text/html; charset=utf-8", headers=()):
        self.reply(status, body, content_type, headers)

    def do_GET(self):
        path = self.path
        if path == "/page":
            self._send(200, PAGE)
        elif path == "/notes.txt":
            self._send(200, b"plain notes", "text/plain")
        elif path == "/to-metadata":
            self._send(302, headers=[("Location", "http://169.254.169.254/latest/meta-data/")])
        elif path == "/to-private":
            self._send(301, headers=[("Location", "http://10.0.0.1/admin")])
        elif path.startswith("/loop"):
            self._send(302, headers=[("Location", f"/loop{int(path[5:] or 0) + 1}")])
        elif path == "/huge":
            self._send(200, content_type="text/plain")
            try:
                for _ in range(100 * 1024):  # 100 MiB, unless the reader hangs up first
                    self.wfile.write(b"x" * 1023 + b"\n")
            except OSError:
                pass
        elif path == "/binary":
            self._send(200, b"\x7fELF\x00\x00", "application/octet-stream")
        elif path == "/disguised":
            self._send(200, b"<html>\x00\x01\x02 binary</html>", "text/html")
        elif path == "/silent":
            time.sleep(5)
        elif path == "/drip":
            self._send(200, content_type="text/plain")
            self.drip(b"x" * 50)
        elif path == "/drip-headers":  # each byte well within a read timeout, the whole far beyond the page's
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Slow: ")
            self.drip(b"a" * 50)
            with contextlib.suppress(OSError):
                self.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")  # no body: no chance to see the clock
        elif path == "/missing":
            self._send(404, b"not here")
        else:
            self._send(200, b"<p>k2</p>")


@pytest.fixture(scope="module")
def site():
    with serving(_Site) as port:
        yield f"http://127.0.0.1:{port}"


def _allowed(**options) -> HttpFetcher:
    return HttpFetcher(allow=["127.0.0.1"], **options)


def test_a_page_becomes_text_with_numbered_links_and_no_forged_markers(site):
    page = _allowed().fetch(f"{site}/page")
    assert page.title == "Everest" and page.url == f"{site}/page"
    assert page.text.startswith(f"\nURL: {site}/page\n# Mount Everest")
    assert "The highest mountain. See 【0†K2】, 【1†other†other.example】" in page.text
    assert "【0†K2 again】" in page.text  # one id per address
    assert page.links == {0: f"{site}/k2", 1: "https://other.example/x"}
    assert "steal" not in page.text
    assert "〖9†L1〗" in page.text and "【9" not in page.text


def test_plain_text_is_shown_as_it_is(site):
    page = _allowed().fetch(f"{site}/notes.txt")
    assert page.text.endswith("plain notes") and page.title == "notes.txt"


def test_the_servers_own_network_is_refused_unless_allow_listed(site):
    with pytest.raises(BrowserBackendError, match=r"private or local address \(127\.0\.0\.1\)"):
        HttpFetcher().fetch(f"{site}/page")
    with pytest.raises(BrowserBackendError, match="private or local address"):
        HttpFetcher().fetch(site.replace("127.0.0.1", "localhost") + "/page")


@pytest.mark.parametrize(("path", "address"), [("/to-metadata", "169.254.169.254"), ("/to-private", "10.0.0.1")])
def test_a_redirect_into_a_private_network_is_refused(site, path, address):
    with pytest.raises(BrowserBackendError, match=rf"private or local address \({address}\)"):
        _allowed().fetch(f"{site}{path}")


def test_redirects_are_bounded(site):
    with pytest.raises(BrowserBackendError, match="more than 5 redirects"):
        _allowed().fetch(f"{site}/loop")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "gopher://127.0.0.1:70/"])
def test_only_http_and_https(url):
    with pytest.raises(BrowserBackendError, match="only http and https"):
        HttpFetcher().fetch(url)


def test_a_huge_response_is_cut_and_says_so(site):
    started = time.monotonic()
    page = _allowed(max_bytes=100_000).fetch(f"{site}/huge")
    assert page.text.endswith("[the page was cut at 100,000 bytes]")
    assert len(page.text) < 110_000 and time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("path", "message"), [("/binary", "content type application/octet-stream"), ("/disguised", "binary")]
)
def test_binary_is_refused(site, path, message):
    with pytest.raises(BrowserBackendError, match=message):
        _allowed().fetch(f"{site}{path}")


@pytest.mark.parametrize("path", ["/silent", "/drip", "/drip-headers"])
def test_a_page_that_stalls_ends_at_the_timeout(site, path):
    with pytest.raises(BrowserBackendError, match=r"within 1 s|more than 1 s"):
        _allowed(timeout=1).fetch(f"{site}{path}")


def test_http_errors_are_reported(site):
    with pytest.raises(BrowserBackendError, match="HTTP 404"):
        _allowed().fetch(f"{site}/missing")


def test_the_browser_gives_the_model_each_refusal_as_text(site):
    browser = Browser(StaticWeb({}, {}), HttpFetcher())
    result = browser.call("browser.open", {"id": f"{site}/page"})
    assert result.startswith(f"Error fetching URL `{site}/page`: ") and "private or local address" in result
    opened = Browser(StaticWeb({}, {}), _allowed()).call("browser.open", {"id": f"{site}/page"})
    assert opened.startswith(f"[0] Everest ({site}/page)")


def test_html_without_a_title_is_named_by_its_domain_and_images_by_their_alt_text():
    page = html_to_page('<p>Hi <img src="a.png" alt="A  cat"> <a href="mailto:x@y">mail</a></p>', "https://a.example/p")
    assert page.title == "a.example" and page.text.endswith("Hi [Image 1: A cat] mail") and page.links == {}


def _self_signed(folder):
    """A certificate for 127.0.0.1 that no authority signed, and its key, as PEM files in `folder`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem"


def test_https_goes_through_the_deadline_streams_and_still_checks_certificates(tmp_path):
    # The fetcher builds its own connection pool (for the page deadline): TLS must still be verified.
    import socket
    import ssl
    import threading

    certificate, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def handshake_once():
        connection, _ = listener.accept()
        try:
            context.wrap_socket(connection, server_side=True).close()
        except (OSError, ssl.SSLError):  # the client refuses the certificate mid-handshake
            connection.close()

    server = threading.Thread(target=handshake_once, daemon=True)
    server.start()
    try:
        with pytest.raises(BrowserBackendError, match="CERTIFICATE_VERIFY_FAILED"):
            _allowed(timeout=10).fetch(f"https://127.0.0.1:{port}/")
    finally:
        server.join(10)
        listener.close()
