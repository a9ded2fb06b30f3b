"""The SearXNG search backend against a loopback server speaking SearXNG's JSON format, and its failures."""

from __future__ import annotations

import json
import time
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
from loopback import QuietHandler, serving

from gptoss_hub.tools.browser import Browser, BrowserBackendError, StaticWeb
from gptoss_hub.tools.browser.searxng import SearxngSearch
from gptoss_hub.tools.browser.sources import search_source

ANSWER = {
    "query": "everest",
    "number_of_results": 4,
    "results": [
        {
            "url": "https://peaks.example.org/everest",
            "title": "Mount  Everest",
            "content": "The tallest\nmountain.",
            "engine": "x",
        },
        {"url": "javascript:alert(1)", "title": "bad", "content": "no"},
        "not a result",
        {"url": "https://news.example.com/k2", "content": "K2 is second."},
        {"url": "https://third.example.net/", "title": "Third", "content": "x" * 1000},
    ],
    "answers": [],
    "suggestions": [],
}


class _Searx(QuietHandler):
    seen: ClassVar[list[dict]] = []

    def do_GET(self):
        query = parse_qs(urlparse(self.path).query)
        _Searx.seen.append(query)
        mode = query["q"][0]
        if mode == "forbidden":
            return self.reply(403)
        if mode == "slow":
            time.sleep(3)
        if mode == "drip":  # each byte well within a read timeout, the answer far beyond the exchange's
            self.send_response(200)
            self.send_header("Content-Length", "50")
            self.end_headers()
            return self.drip(b" " * 50)
        bodies = {
            "garbage": b"<html>not json</html>",
            "no results": json.dumps({"query": "x"}).encode(),
            "huge": b'{"results": [' + b'{"url": "https://a.example/", "title": "a"},' * 100_000,
        }
        return self.reply(200, bodies.get(mode, json.dumps(ANSWER).encode()))


@pytest.fixture(scope="module")
def searx():
    with serving(_Searx) as port:
        yield f"http://127.0.0.1:{port}/"


def test_results_keep_url_title_and_snippet_and_drop_what_cannot_be_opened(searx):
    results = SearxngSearch(searx, language="en").search("everest", 10)
    assert [(r.url, r.title) for r in results] == [
        ("https://peaks.example.org/everest", "Mount Everest"),
        ("https://news.example.com/k2", "https://news.example.com/k2"),  # no title: its address
        ("https://third.example.net/", "Third"),
    ]
    assert results[0].snippet == "The tallest mountain." and len(results[2].snippet) == 300
    assert _Searx.seen[-1] == {"q": ["everest"], "format": ["json"], "language": ["en"]}
    assert len(SearxngSearch(searx).search("everest", 2)) == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("forbidden", r"HTTP 403 \(is format=json enabled"),
        ("garbage", "not JSON"),
        ("no results", "no list of results"),
        ("huge", "larger than 2,000,000 bytes"),
        ("slow", "did not answer within 1 s"),
        ("drip", "did not answer within 1 s"),
    ],
)
def test_a_broken_instance_is_an_error_the_model_reads(searx, query, message):
    with pytest.raises(BrowserBackendError, match=message):
        SearxngSearch(searx, timeout=1).search(query, 5)
    browser = Browser(SearxngSearch(searx, timeout=1), StaticWeb({}, {}))
    assert browser.call("browser.search", {"query": query}).startswith(f"Error during search for `{query}`: ")


def test_an_instance_that_is_not_there():
    with pytest.raises(BrowserBackendError, match="cannot reach SearXNG"):
        SearxngSearch("http://127.0.0.1:9", timeout=2).search("x", 3)


def test_the_source_name_gives_searxng_and_a_guarded_fetcher(searx):
    from gptoss_hub.tools.browser.fetch import HttpFetcher

    search, fetcher = search_source(f"searxng:{searx}")
    assert isinstance(search, SearxngSearch) and isinstance(fetcher, HttpFetcher) and fetcher.allowed == []
