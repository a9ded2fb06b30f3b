"""A small fixed web for the tiny model's browser flows: pages, and what a search for each query finds.

The corpus renders these through the browser's own display (`gptoss_hub.tools.browser`), so what the model
learns to read is exactly what the browser shows. Three ways to serve it replay the flows exactly:
`fixture_web()` in memory; `write_site(folder)` as Markdown documents for `LocalSearch`, whose ranking and
snippets give `SEARCHES`; and the same pages over HTTP (`html_of`, served on loopback by `serve_site()`,
whose `HttpFetcher` sends each page's host there).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from gptoss_hub.tools.browser.display import SearchResult
from gptoss_hub.tools.browser.fetch import HttpFetcher
from gptoss_hub.tools.browser.pages import StaticWeb

__all__ = [
    "PAGES",
    "SEARCHES",
    "WebPage",
    "fixture_web",
    "html_of",
    "search_results",
    "serve_site",
    "write_site",
]


@dataclass(frozen=True)
class WebPage:
    """A page: its address, title, and its text as a fetch backend returns it (before the `URL:` line)."""

    url: str
    title: str
    body: str
    #: What a search result shows of it.
    snippet: str


PAGES = {
    page.url: page
    for page in (
        WebPage(
            "http://peaks.example.org/everest",
            "Mount Everest - Peaks of the World",
            "# Mount Everest\n\nMount Everest is the tallest mountain on Earth above sea level.\n"
            "Its summit is 8,849 metres high, on the border of Nepal and China.\n\n"
            "## Climbing\n\nThe first recorded ascent was in 1953.",
            "Mount Everest is the tallest mountain on Earth above sea level.",
        ),
        WebPage(
            "http://news.example.com/k2",
            "K2, the second highest mountain",
            "# K2\n\nK2 is the second highest mountain on Earth, at 8,611 metres.",
            "K2 is the second highest mountain on Earth.",
        ),
        WebPage(
            "http://books.example.org/pride-and-prejudice",
            "Pride and Prejudice - Book Notes",
            "# Pride and Prejudice\n\nPride and Prejudice is a novel by Jane Austen, who wrote it in 1796.\n"
            "It was first published in 1813.\n\n## Characters\n\nElizabeth Bennet and Mr Darcy.",
            "Pride and Prejudice is a novel by Jane Austen.",
        ),
        WebPage(
            "http://films.example.net/pride-and-prejudice-2005",
            "Pride & Prejudice (2005 film)",
            "# Pride & Prejudice (2005 film)\n\nA film based on the novel by Jane Austen.",
            "A 2005 film based on the novel.",
        ),
        WebPage(
            "http://science.example.edu/water",
            "Water - Science Facts",
            "# Water\n\nAt sea level, pure water boils at 100 degrees Celsius.\n"
            "It freezes at 0 degrees Celsius.\n\n## Density\n\nOne litre of water weighs about one kilogram.",
            "At sea level, pure water boils at 100 degrees Celsius.",
        ),
    )
}

#: Query -> the pages its search finds, best first.
SEARCHES = {
    "tallest mountain on Earth": ("http://peaks.example.org/everest", "http://news.example.com/k2"),
    "who wrote Pride and Prejudice": (
        "http://books.example.org/pride-and-prejudice",
        "http://films.example.net/pride-and-prejudice-2005",
    ),
    "boiling point of water": ("http://science.example.edu/water",),
}


def search_results(query: str) -> list[SearchResult]:
    """What a search for `query` finds in this web (nothing for a query it does not know)."""
    return [SearchResult(url, PAGES[url].title, PAGES[url].snippet) for url in SEARCHES.get(query, ())]


def fixture_web() -> StaticWeb:
    """This web as a search backend and page fetcher: `Browser(fixture_web(), fixture_web())` replays the
    corpus's browser flows exactly."""
    pages = {url: (page.title, page.body) for url, page in PAGES.items()}
    return StaticWeb(pages, {query: search_results(query) for query in SEARCHES})


def write_site(folder: Path) -> Path:
    """Write this web into `folder` as Markdown documents with front matter (title, address, description), one
    per page, for `LocalSearch`; returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for page in PAGES.values():
        name = urlparse(page.url).netloc.split(".")[0] + urlparse(page.url).path.replace("/", "-") + ".md"
        front = f"---\ntitle: {page.title}\nurl: {page.url}\ndescription: {page.snippet}\n---\n"
        (folder / name).write_text(front + page.body, encoding="utf-8")
    return folder


def html_of(page: WebPage) -> str:
    """`page` as the HTML a site would serve: the browser reads it back into exactly `page.body`."""
    blocks = []
    for block in page.body.split("\n\n"):
        level = len(block) - len(block.lstrip("#"))
        if level:
            blocks.append(f"<h{level}>{escape(block[level:].strip())}</h{level}>")
        else:
            blocks.append("<p>" + "<br>\n".join(escape(line) for line in block.splitlines()) + "</p>")
    description = f'<meta name="description" content="{escape(page.snippet)}">'
    head = f"<head><title>{escape(page.title)}</title>{description}</head>"
    return f"<!doctype html><html>{head}<body>{''.join(blocks)}</body></html>"


class _Site(BaseHTTPRequestHandler):
    """Serves each page of this web as HTML, whichever host it is asked for under; 404 for anything else."""

    def do_GET(self) -> None:
        page = PAGES.get(f"http://{self.headers['Host']}{self.path}")
        body = html_of(page).encode() if page else b"no such page"
        with contextlib.suppress(OSError):  # a client that hung up
            self.send_response(200 if page else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_site() -> Iterator[HttpFetcher]:
    """This web's pages served over HTTP on a free loopback port for the length of the block; yields an
    `HttpFetcher` that reaches them at their own addresses (loopback allowed, each page's host sent there)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    hosts = {urlparse(url).netloc for url in PAGES}
    try:
        yield HttpFetcher(allow=["127.0.0.1"], connect_to={f"{host}:80": f"127.0.0.1:{port}" for host in hosts})
    finally:
        server.shutdown()
        server.server_close()
