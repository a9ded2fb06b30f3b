"""Pages the browser holds, and the backends that find and fetch them.

A `Page` is what the model can scroll, search in and follow links from: its text (link markers included)
and the address behind each link id. A search backend turns a query into `SearchResult`s; a page fetcher
turns an address into a `Page`. Both raise `BrowserBackendError` with a message the model can read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gptoss_hub.tools.browser.display import SearchResult, page_text, search_results_text

__all__ = ["BrowserBackendError", "Page", "PageFetcher", "SearchBackend", "StaticWeb", "search_page"]


class BrowserBackendError(Exception):
    """A search or fetch failed; the message goes back to the model as the call's result."""


@dataclass(frozen=True)
class Page:
    """A page on the browser's stack."""

    url: str
    title: str
    #: The text lines are cut from (for a fetched page it starts with an empty line and a `URL:` line).
    text: str
    #: Link id -> address, for the `【id†...】` markers in `text`.
    links: Mapping[int, str] = field(default_factory=dict)
    #: "page" (fetched), "search" (results of a search) or "find" (matches of a `find`).
    kind: Literal["page", "search", "find"] = "page"
    #: For a find page: link id -> the line of the searched page the match is on.
    match_lines: Mapping[int, int] = field(default_factory=dict)


class SearchBackend(Protocol):
    """Finds pages for a query."""

    def search(self, query: str, topn: int) -> list[SearchResult]:
        """Up to `topn` results for `query`, best first; raises `BrowserBackendError`."""
        ...


class PageFetcher(Protocol):
    """Fetches a page by its address."""

    def fetch(self, url: str) -> Page:
        """The page at `url`; raises `BrowserBackendError`."""
        ...


def search_page(query: str, results: list[SearchResult]) -> Page:
    """The page of `results` for `query`: titled by the query, with no address of its own."""
    links = {rank: result.url for rank, result in enumerate(results)}
    return Page("", query, search_results_text(results), links, kind="search")


class StaticWeb:
    """A fixed set of pages in memory, searchable and fetchable: for tests, demos and offline fixtures.

    `pages` maps an address to `(title, body)`; `searches` maps a query to the addresses it finds (with
    their snippets), best first. A query it does not know finds nothing.
    """

    def __init__(self, pages: Mapping[str, tuple[str, str]], searches: Mapping[str, list[SearchResult]]):
        self.pages = dict(pages)
        self.searches = dict(searches)

    def search(self, query: str, topn: int) -> list[SearchResult]:
        return list(self.searches.get(query, ()))[:topn]

    def fetch(self, url: str) -> Page:
        if url not in self.pages:
            raise BrowserBackendError(f"No page at {url}")
        title, body = self.pages[url]
        return Page(url, title, page_text(url, body))
