"""Exa and You.com search backends against loopback fakes of their documented APIs."""

from __future__ import annotations

import json
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
from loopback import QuietHandler, serving

from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.tools.browser import Browser, BrowserBackendError
from gptoss_hub.tools.browser.keyed import ExaSearch, YouSearch
from gptoss_hub.tools.browser.sources import search_source

KEY = "test-key"


class _Provider(QuietHandler):
    """Exa's /search and /contents, You.com's /v1/search and /v1/contents; 401 without the key."""

    requests: ClassVar[list[tuple[str, str, dict]]] = []

    def _answer(self, status: int, body) -> None:
        self.reply(status, body if isinstance(body, bytes) else json.dumps(body).encode())

    def _route(self, method: str) -> None:
        path = urlparse(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else dict(parse_qs(urlparse(self.path).query))
        _Provider.requests.append((method, path, body))
        if self.headers.get("x-api-key") != KEY:
            return self._answer(401, {"error": "invalid api key"})
        query = body.get("query")
        query = query[0] if isinstance(query, list) else query
        if query == "garbage":
            return self._answer(200, b"<html>oops</html>")
        if query == "broken":
            return self._answer(500, {"error": "internal"})
        if path == "/search":
            return self._answer(200, {"results": [
                {"title": "Everest", "url": "https://peaks.example.org/everest", "summary": "The tallest.", "text": "..."},
                {"title": "No address", "summary": "dropped"},
            ]})  # fmt: skip
        if path == "/contents":
            if body["urls"] == ["https://gone.example/"]:
                return self._answer(
                    200, {"results": [], "statuses": [{"id": "https://gone.example/", "status": "error"}]}
                )
            return self._answer(
                200,
                {"results": [{"title": "Everest", "url": body["urls"][0], "text": "<p>High <a href='/k2'>K2</a></p>"}]},
            )
        if path == "/v1/search":
            return self._answer(200, {"results": {
                "web": [{"title": "Everest", "url": "https://peaks.example.org/everest", "snippets": ["Tallest.", "Of all."]}],
                "news": [{"title": "Climbers", "url": "https://news.example.com/c", "description": "A record year."}],
            }})  # fmt: skip
        if path == "/v1/contents":
            if body["urls"] == ["https://gone.example/"]:
                return self._answer(200, [{"url": body["urls"][0], "title": "x"}])
            return self._answer(
                200, [{"url": body["urls"][0], "title": "Everest", "html": "<h1>Everest</h1><p>High.</p>"}]
            )
        return self._answer(404, {"error": "no route"})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")


@pytest.fixture(scope="module")
def provider():
    with serving(_Provider) as port:
        yield f"http://127.0.0.1:{port}"


def test_exa_searches_with_summaries_and_fetches_through_its_contents_api(provider):
    exa = ExaSearch(KEY, base_url=provider)
    results = exa.search("everest", 5)
    assert [(r.url, r.title, r.snippet) for r in results] == [
        ("https://peaks.example.org/everest", "Everest", "The tallest.")
    ]
    assert _Provider.requests[-1] == (
        "POST",
        "/search",
        {"query": "everest", "numResults": 5, "contents": {"summary": True}},
    )
    page = exa.fetch("https://peaks.example.org/everest")
    assert (
        page.title == "Everest" and "High 【0†K2】" in page.text and page.links == {0: "https://peaks.example.org/k2"}
    )
    with pytest.raises(BrowserBackendError, match=r"No contents returned for https://gone\.example/"):
        exa.fetch("https://gone.example/")


def test_youcom_lists_web_then_news_results_and_fetches_html(provider):
    you = YouSearch(KEY, base_url=provider)
    results = you.search("everest", 10)
    assert [(r.title, r.snippet) for r in results] == [("Everest", "Tallest. Of all."), ("Climbers", "A record year.")]
    assert _Provider.requests[-1][:2] == ("GET", "/v1/search") and _Provider.requests[-1][2]["count"] == ["10"]
    assert you.fetch("https://peaks.example.org/everest").text.endswith("# Everest\n\nHigh.")
    with pytest.raises(BrowserBackendError, match="No HTML returned"):
        you.fetch("https://gone.example/")


@pytest.mark.parametrize("backend", [ExaSearch, YouSearch])
def test_provider_failures_are_errors_the_model_reads(provider, backend):
    with pytest.raises(BrowserBackendError, match=r"error 401: .*invalid api key"):
        backend("wrong", base_url=provider).search("everest", 3)
    with pytest.raises(BrowserBackendError, match="error 500"):
        backend(KEY, base_url=provider).search("broken", 3)
    with pytest.raises(BrowserBackendError, match="not JSON"):
        backend(KEY, base_url=provider).search("garbage", 3)
    browser = Browser(backend(KEY, base_url=provider), backend(KEY, base_url=provider))
    assert browser.call("browser.search", {"query": "broken"}).startswith("Error during search for `broken`: ")


def test_a_missing_key_is_refused_when_the_backend_is_made(monkeypatch):
    monkeypatch.delenv("EXA_API_KEY", raising=False)
    monkeypatch.delenv("YDC_API_KEY", raising=False)
    with pytest.raises(InvalidRequestError, match="Exa needs an API key: set EXA_API_KEY"):
        search_source("exa")
    with pytest.raises(InvalidRequestError, match=r"You\.com needs an API key: set YDC_API_KEY"):
        search_source("youcom")
    monkeypatch.setenv("YDC_API_KEY", "from-the-environment")
    search, fetcher = search_source("youcom")
    assert isinstance(search, YouSearch) and search is fetcher and search.api_key == "from-the-environment"
