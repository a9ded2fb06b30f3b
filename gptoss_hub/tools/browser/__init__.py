"""The builtin browser tool: pages shown as gpt-oss was trained to read them (`display`)."""

from gptoss_hub.tools.browser.display import (
    SearchResult,
    link_marker,
    page_text,
    page_view,
    search_results_text,
    wrap_lines,
)

__all__ = ["SearchResult", "link_marker", "page_text", "page_view", "search_results_text", "wrap_lines"]
