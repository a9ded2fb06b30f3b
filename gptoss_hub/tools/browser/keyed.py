"""Hosted search with an API key, as the reference browser offers: Exa and You.com.

Both search and fetch through the provider: a page is crawled by the provider, not by this machine, so the
model's addresses never reach this machine's network. Keys come from the environment (`EXA_API_KEY`,
`YDC_API_KEY`) or the constructor; without one the backend is not created. Answers are read within a
timeout and up to a size cap; an error status, a malformed answer or an empty one is a `BrowserBackendError`
the model reads.
"""

from __future__ import annotations

import json
import os
from typing import Any

from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.tools.browser.display import SearchResult
from gptoss_hub.tools.browser.html import html_to_page
from gptoss_hub.tools.browser.http_json import TITLE_CHARS, exchange, provider_results, provider_text
from gptoss_hub.tools.browser.pages import BrowserBackendError, Page

__all__ = ["ExaSearch", "YouSearch"]

_MAX_ANSWER_BYTES = 5_000_000
_USER_AGENT = "gptoss-hub-browser/1"


class _KeyedApi:
    """One provider's HTTP API: its name, address, key and limits."""

    name: str
    environment_variable: str

    def __init__(self, *, api_key: str | None, base_url: str, timeout: float):
        key = api_key or os.environ.get(self.environment_variable)
        if not key:
            raise InvalidRequestError(f"{self.name} needs an API key: set {self.environment_variable}.")
        self.api_key, self.base_url, self.timeout = key, base_url.rstrip("/"), timeout

    def _request(self, method: str, path: str, **arguments: Any) -> Any:
        headers = {"x-api-key": self.api_key, "user-agent": _USER_AGENT}
        url = f"{self.base_url}{path}"
        status, body = exchange(
            self.name, method, url, timeout=self.timeout, max_bytes=_MAX_ANSWER_BYTES, headers=headers, **arguments
        )
        if status != 200:
            raise BrowserBackendError(f"{self.name} error {status}: {body[:200].decode('utf-8', errors='replace')}")
        try:
            return json.loads(body)
        except ValueError as error:
            raise BrowserBackendError(f"{self.name}'s answer is not JSON") from error


class ExaSearch(_KeyedApi):
    """Exa's search (`POST /search`, its summaries as snippets) and contents (`POST /contents`) APIs."""

    name = "Exa"
    environment_variable = "EXA_API_KEY"

    def __init__(self, api_key: str | None = None, *, base_url: str = "https://api.exa.ai", timeout: float = 15.0):
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout)

    def search(self, query: str, topn: int) -> list[SearchResult]:
        answer = self._request(
            "POST", "/search", json={"query": query, "numResults": topn, "contents": {"summary": True}}
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
            raise BrowserBackendError("Exa's answer has no list of results")
        return provider_results(answer["results"], "summary")[:topn]

    def fetch(self, url: str) -> Page:
        answer = self._request("POST", "/contents", json={"urls": [url], "text": {"includeHtmlTags": True}})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not results or not isinstance(results[0], dict):
            raise BrowserBackendError(f"No contents returned for {url}")
        return html_to_page(
            str(results[0].get("text") or ""), url, provider_text(results[0].get("title"), TITLE_CHARS) or None
        )


class YouSearch(_KeyedApi):
    """You.com's search (`GET /v1/search`: web results, then news) and contents (`POST /v1/contents`) APIs."""

    name = "You.com"
    environment_variable = "YDC_API_KEY"

    def __init__(
        self, api_key: str | None = None, *, base_url: str = "https://api.ydc-index.io", timeout: float = 15.0
    ):
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout)

    def search(self, query: str, topn: int) -> list[SearchResult]:
        answer = self._request("GET", "/v1/search", params={"query": query, "count": topn})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, dict):
            raise BrowserBackendError("You.com's answer has no results")
        found = provider_results(results.get("web"), "snippets") + provider_results(results.get("news"), "description")
        return found[:topn]

    def fetch(self, url: str) -> Page:
        answer = self._request("POST", "/v1/contents", json={"urls": [url], "formats": ["html"]})
        if not isinstance(answer, list) or not answer or not isinstance(answer[0], dict):
            raise BrowserBackendError(f"No contents returned for {url}")
        html = answer[0].get("html")
        if not isinstance(html, str) or not html:
            raise BrowserBackendError(f"No HTML returned for {url}")
        return html_to_page(html, url, provider_text(answer[0].get("title"), TITLE_CHARS) or None)
