"""`SearxngSearch`: search through a self-hosted SearXNG instance's JSON API, with no key and no outside service.

The instance is the operator's choice (its address comes from the command line or the code, never from the
model), so it may live on a private network. Its `format=json` answer lists results with `url`, `title` and
`content` (the snippet); the instance must allow the JSON format (`search.formats` in its settings).
"""

from __future__ import annotations

import json

from gptoss_hub.tools.browser.display import SearchResult
from gptoss_hub.tools.browser.http_json import exchange, provider_results
from gptoss_hub.tools.browser.pages import BrowserBackendError

__all__ = ["SearxngSearch"]

#: Bytes of an instance's answer read at most.
_MAX_ANSWER_BYTES = 2_000_000


class SearxngSearch:
    """Searches the SearXNG instance at `url` (e.g. "http://searx.internal:8888"), waiting `timeout` seconds."""

    def __init__(self, url: str, *, timeout: float = 10.0, language: str | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.language = language

    def search(self, query: str, topn: int) -> list[SearchResult]:
        """Up to `topn` results for `query`, as the instance ranks them."""
        params = {"q": query, "format": "json"}
        if self.language:
            params["language"] = self.language
        status, body = exchange(
            "SearXNG", "GET", f"{self.url}/search", timeout=self.timeout, max_bytes=_MAX_ANSWER_BYTES, params=params
        )
        if status != 200:
            hint = " (is format=json enabled in its settings?)" if status == 403 else ""
            raise BrowserBackendError(f"SearXNG answered HTTP {status}{hint}")
        try:
            answer = json.loads(body)
        except ValueError as error:
            raise BrowserBackendError("SearXNG's answer is not JSON") from error
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise BrowserBackendError("SearXNG's answer has no list of results")
        return provider_results(results, "content")[:topn]
