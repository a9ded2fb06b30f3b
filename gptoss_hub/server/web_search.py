"""The browser on the server: the model's `browser.*` calls run server-side over the search source the server
was started with (`gptoss-hub serve --search SOURCE`).

A Responses request offers it with a `web_search` (or `web_search_preview`) tool, a Chat Completions request
with `web_search_options`. Each call shows as a `web_search_call` with OpenAI's action shapes (`search`,
`open_page`, `find_in_page`), and the answer's `【cursor†Lx-Ly】` citations become links with `url_citation`
annotations. A conversation's page stack lives along its `previous_response_id` chain, like the python
tool's sessions, so a later turn can still open or cite what an earlier one read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gptoss_hub.reply import Citation, ToolCall
from gptoss_hub.server.errors import APIError
from gptoss_hub.server.sessions import SessionPool
from gptoss_hub.tools.browser import Browser, PageFetcher, SearchBackend

__all__ = [
    "SEARCH_CONTEXT_RESULTS",
    "BrowserRan",
    "BrowserRunning",
    "Browsers",
    "Cited",
    "WebSearch",
    "action_after",
    "action_before",
    "web_search_request",
]

#: Search results a browser shows at most, by OpenAI's `search_context_size` ("medium" is the default).
SEARCH_CONTEXT_RESULTS = {"low": 5, "medium": 10, "high": 20}
#: Seconds a page stack may sit unused before it is freed.
IDLE_SECONDS = 20 * 60
#: Page stacks kept at once; opening one more frees the least recently used.
MOST_BROWSERS = 64


@dataclass(frozen=True)
class WebSearch:
    """What a request asked of the browser: how many search results it may see."""

    results: int = SEARCH_CONTEXT_RESULTS["medium"]


@dataclass(frozen=True)
class BrowserRunning:
    """Browser call `call` is about to run; `action` is its `web_search_call` action as known so far."""

    call: ToolCall
    action: dict[str, Any]


@dataclass(frozen=True)
class BrowserRan:
    """Browser call `call` ran: `action` as it turned out (the page opened, the sources found), `result` the
    text the model reads."""

    call: ToolCall
    action: dict[str, Any]
    result: str


@dataclass(frozen=True)
class Cited:
    """The content just streamed holds these citations (their spans counted in the turn's content)."""

    citations: list[Citation]


class Browsers(SessionPool[Browser]):
    """The server's page stacks by id, each a `Browser` over the server's one search source."""

    def __init__(
        self,
        search: SearchBackend,
        fetcher: PageFetcher,
        *,
        idle_seconds: float = IDLE_SECONDS,
        most: int = MOST_BROWSERS,
    ):
        super().__init__(lambda: Browser(search, fetcher), prefix="brws_", idle_seconds=idle_seconds, most=most)


def web_search_request(options: dict[str, Any] | None, where: str) -> WebSearch:
    """The `WebSearch` of a request's web search settings (the Responses tool, or Chat Completions'
    `web_search_options`); a 400 naming `where` for a setting that is not OpenAI's."""
    options = options or {}
    size = options.get("search_context_size") or "medium"
    if size not in SEARCH_CONTEXT_RESULTS:
        raise APIError(
            400,
            f"{where}.search_context_size must be one of {', '.join(SEARCH_CONTEXT_RESULTS)}, got {size!r}.",
            "invalid_request_error",
            None,
            f"{where}.search_context_size",
        )
    return WebSearch(results=SEARCH_CONTEXT_RESULTS[size])


def _function(call: ToolCall) -> str:
    return call.name.removeprefix("browser.")


def _page_url(browser: Browser, cursor: Any) -> str:
    index = cursor if isinstance(cursor, int) and not isinstance(cursor, bool) else -1
    if index == -1 and browser.stack:
        index = len(browser.stack) - 1
    return browser.url_at(index) or ""


def action_before(browser: Browser, call: ToolCall) -> dict[str, Any]:
    """The `web_search_call` action of `call` before it runs: the query, the address to open or the page to
    search, as far as the arguments tell."""
    arguments = call.arguments or {}
    function = _function(call)
    if function == "search":
        return {"type": "search", "query": str(arguments.get("query", ""))}
    if function == "find":
        pattern = str(arguments.get("pattern", ""))
        return {"type": "find_in_page", "pattern": pattern, "url": _page_url(browser, arguments.get("cursor"))}
    target = arguments.get("id")
    return {"type": "open_page", "url": target if isinstance(target, str) else None}


def action_after(browser: Browser, call: ToolCall, before: dict[str, Any], pages_before: int) -> dict[str, Any]:
    """The action once `call` ran: a search lists the results' addresses as its sources, an open names the
    page it showed. A call that showed no page (a usage error) keeps the action it had."""
    if len(browser.stack) <= pages_before:
        return before
    shown = browser.stack[-1]
    if before["type"] == "search":
        return before | {"sources": [{"type": "url", "url": url} for url in shown.links.values()]}
    if before["type"] == "open_page":
        return before | {"url": shown.url or before["url"]}
    return before
