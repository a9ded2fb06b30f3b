"""A small fixed web for the tiny model's browser flows: pages, and what a search for each query finds.

The corpus renders these through the browser's own display (`gptoss_hub.tools.browser`), so what the model
learns to read is exactly what the browser shows; a browser backend serving this web replays the flows.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptoss_hub.tools.browser.display import SearchResult
from gptoss_hub.tools.browser.pages import StaticWeb

__all__ = ["PAGES", "SEARCHES", "WebPage", "fixture_web", "search_results"]


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
            "https://peaks.example.org/everest",
            "Mount Everest - Peaks of the World",
            "# Mount Everest\n\nMount Everest is the highest mountain on Earth above sea level.\n"
            "Its summit is 8,849 metres high, on the border of Nepal and China.\n\n"
            "## Climbing\n\nThe first recorded ascent was in 1953.",
            "Mount Everest is the highest mountain on Earth above sea level.",
        ),
        WebPage(
            "https://news.example.com/k2",
            "K2, the second highest mountain",
            "# K2\n\nK2 is the second highest mountain on Earth, at 8,611 metres.",
            "K2 is the second highest mountain on Earth.",
        ),
        WebPage(
            "https://books.example.org/pride-and-prejudice",
            "Pride and Prejudice - Book Notes",
            "# Pride and Prejudice\n\nPride and Prejudice is a novel by Jane Austen.\n"
            "It was first published in 1813.\n\n## Characters\n\nElizabeth Bennet and Mr Darcy.",
            "Pride and Prejudice is a novel by Jane Austen.",
        ),
        WebPage(
            "https://films.example.net/pride-and-prejudice-2005",
            "Pride & Prejudice (2005 film)",
            "# Pride & Prejudice (2005 film)\n\nA film based on the novel by Jane Austen.",
            "A 2005 film based on the novel.",
        ),
        WebPage(
            "https://science.example.edu/water",
            "Water - Science Facts",
            "# Water\n\nAt sea level, pure water boils at 100 degrees Celsius.\n"
            "It freezes at 0 degrees Celsius.\n\n## Density\n\nOne litre of water weighs about one kilogram.",
            "At sea level, pure water boils at 100 degrees Celsius.",
        ),
    )
}

#: Query -> the pages its search finds, best first.
SEARCHES = {
    "tallest mountain on Earth": ("https://peaks.example.org/everest", "https://news.example.com/k2"),
    "who wrote Pride and Prejudice": (
        "https://books.example.org/pride-and-prejudice",
        "https://films.example.net/pride-and-prejudice-2005",
    ),
    "boiling point of water": ("https://science.example.edu/water",),
}


def search_results(query: str) -> list[SearchResult]:
    """What a search for `query` finds in this web (nothing for a query it does not know)."""
    return [SearchResult(url, PAGES[url].title, PAGES[url].snippet) for url in SEARCHES.get(query, ())]


def fixture_web() -> StaticWeb:
    """This web as a search backend and page fetcher: `Browser(fixture_web(), fixture_web())` replays the
    corpus's browser flows exactly."""
    pages = {url: (page.title, page.body) for url, page in PAGES.items()}
    return StaticWeb(pages, {query: search_results(query) for query in SEARCHES})
