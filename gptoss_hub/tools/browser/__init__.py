"""The builtin browser tool: a page stack over pluggable search and fetch backends (`Browser`), showing pages
as gpt-oss was trained to read them (`display`)."""

from gptoss_hub.tools.browser.browser import MAX_PAGES, MAX_PATTERN_CHARS, MAX_QUERY_CHARS, Browser
from gptoss_hub.tools.browser.display import (
    SearchResult,
    link_marker,
    page_text,
    page_view,
    search_results_text,
    wrap_lines,
)
from gptoss_hub.tools.browser.pages import (
    BrowserBackendError,
    Page,
    PageFetcher,
    SearchBackend,
    StaticWeb,
    search_page,
)

__all__ = [
    "MAX_PAGES",
    "MAX_PATTERN_CHARS",
    "MAX_QUERY_CHARS",
    "Browser",
    "BrowserBackendError",
    "Page",
    "PageFetcher",
    "SearchBackend",
    "SearchResult",
    "StaticWeb",
    "link_marker",
    "page_text",
    "page_view",
    "search_page",
    "search_results_text",
    "wrap_lines",
]
