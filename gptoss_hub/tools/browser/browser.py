"""`Browser`: the page stack behind gpt-oss's `browser.search`, `browser.open` and `browser.find`.

Every call that shows something pushes a page and gets the next cursor (0, 1, 2, ...): a search's results,
a page opened by link id or address, the same page scrolled, the matches of a find. `open` and `find` act
on the page at `cursor`, the latest by default. What a call returns is always text for the model: the view
of the new page, or a sentence saying what was wrong with the call (a usage error never raises).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from gptoss_hub.tools.browser.display import page_view, strip_links, wrap_lines
from gptoss_hub.tools.browser.pages import BrowserBackendError, Page, PageFetcher, SearchBackend, search_page

__all__ = ["MAX_PAGES", "MAX_PATTERN_CHARS", "MAX_QUERY_CHARS", "Browser"]

#: The longest query a search accepts, in characters.
MAX_QUERY_CHARS = 2_000
#: The longest `find` pattern, in characters.
MAX_PATTERN_CHARS = 500
#: Pages one browser holds: a conversation that pushes more is told to start over.
MAX_PAGES = 256
#: Matches a find shows, and the lines shown with each.
_FIND_MATCHES, _FIND_LINES = 50, 4
#: Characters of an address or error message quoted back to the model.
_QUOTED_CHARS = 1024

#: Each function's arguments and their types (the harmony tool description's, in Python).
_SIGNATURES: dict[str, dict[str, tuple[type, ...]]] = {
    "search": {"query": (str,), "topn": (int,), "top_n": (int,), "source": (str,)},
    "open": {
        "id": (int, str),
        "cursor": (int,),
        "loc": (int,),
        "num_lines": (int,),
        "view_source": (bool,),
        "source": (str,),
    },
    "find": {"pattern": (str,), "cursor": (int,)},
}


class _UsageError(Exception):
    """A call the browser cannot carry out; its message is the call's result."""


def _quoted(text: str) -> str:
    return text if len(text) <= _QUOTED_CHARS else text[: _QUOTED_CHARS - 3] + "..."


class Browser:
    """A page stack over a search backend and a page fetcher; one per conversation.

    `call(name, arguments)` runs one model call ("browser.search", "browser.open" or "browser.find" with
    its JSON arguments) and returns the text the model reads.
    """

    def __init__(self, search: SearchBackend, fetcher: PageFetcher, *, topn_limit: int = 20):
        self.search_backend = search
        self.fetcher = fetcher
        self.topn_limit = topn_limit
        #: The pages shown so far; a page's cursor is its index.
        self.stack: list[Page] = []
        self._fetched: dict[str, Page] = {}

    # -- the model's calls ----------------------------------------------------------------------------

    def call(self, name: str, arguments: str | dict[str, Any] | None) -> str:
        """The result of the model's call to `name` ("browser.search", ...) with `arguments` (JSON text or
        already parsed): a page view, or a sentence saying what went wrong."""
        function = name.removeprefix("browser.")
        if function not in _SIGNATURES:
            return json.dumps({"error": f"Unknown function: {name}"})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                arguments = None
        if not isinstance(arguments, dict):
            return json.dumps({"error": "Invalid function arguments"})
        signature = _SIGNATURES[function]
        unknown = sorted(set(arguments) - set(signature))
        if unknown:
            expected = ", ".join(signature)
            return f"Unknown argument(s) for browser.{function}: {', '.join(unknown)}. It takes: {expected}."
        for key, value in arguments.items():
            types = signature[key]
            # JSON has one number type: 3.0 is 3, but true is not 1.
            if isinstance(value, float) and value.is_integer() and int in types:
                arguments[key] = value = int(value)
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                wanted = " or ".join("an integer" if t is int else f"a {t.__name__}" for t in types)
                return f"`{key}` should be {wanted}, not `{type(value).__name__}`"
        methods: dict[str, Callable[..., str]] = {"search": self.search, "open": self.open, "find": self.find}
        try:
            return methods[function](**arguments)
        except _UsageError as error:
            return str(error)

    def search(self, query: str, topn: int = 10, top_n: int | None = None, source: str | None = None) -> str:
        """Search for `query` and show up to `topn` results as a page of links."""
        del source  # one search backend per browser
        if not query.strip():
            raise _UsageError("The query is empty: say what to search for.")
        if len(query) > MAX_QUERY_CHARS:
            raise _UsageError(f"The query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}.")
        count = max(1, min(top_n if top_n is not None else topn, self.topn_limit))
        try:
            results = self.search_backend.search(query, count)
        except BrowserBackendError as error:
            raise _UsageError(f"Error during search for `{_quoted(query)}`: {_quoted(str(error))}") from error
        return self._show(search_page(query, results[:count]))

    def open(
        self,
        id: int | str = -1,
        cursor: int = -1,
        loc: int = -1,
        num_lines: int = -1,
        view_source: bool = False,
        source: str | None = None,
    ) -> str:
        """Open link `id` of the page at `cursor`, or the address `id`, or (without `id`) scroll the page at
        `cursor` to line `loc`."""
        del source
        if view_source:
            raise _UsageError("`view_source` is not supported: open the page without it.")
        if isinstance(id, str):
            return self._show(self._fetch(id, fresh=True), loc, num_lines)
        page = self._page(cursor)
        if id < 0:  # scroll
            return self._show(page, loc, num_lines)
        if id not in page.links:
            raise _UsageError(f"Invalid link id `{id}`.")
        target = self._fetch(page.links[id], fresh=False)
        if loc < 0 and id in page.match_lines:  # a find match: show a few lines before it
            line = page.match_lines[id]
            loc = line - _FIND_LINES if line > _FIND_LINES else line
        return self._show(target, loc, num_lines)

    def find(self, pattern: str, cursor: int = -1) -> str:
        """Show the lines of the page at `cursor` that contain `pattern` (ignoring case), as a page of matches."""
        if not pattern:
            raise _UsageError("The pattern is empty: say what to find.")
        if len(pattern) > MAX_PATTERN_CHARS:
            raise _UsageError(f"The pattern is {len(pattern)} characters long; the limit is {MAX_PATTERN_CHARS}.")
        page = self._page(cursor)
        if page.kind == "find":
            raise _UsageError("Cannot run `find` on search results page or find results page")
        pattern = pattern.lower()
        lines = strip_links("\n".join(wrap_lines(page.text))).split("\n")
        chunks: list[str] = []
        match_lines: dict[int, int] = {}
        index = 0
        while index < len(lines) and len(chunks) < _FIND_MATCHES:
            if pattern not in lines[index].lower():
                index += 1
                continue
            match_lines[len(chunks)] = index
            shown = "\n".join(lines[index : index + _FIND_LINES])
            chunks.append(f"# 【{len(chunks)}†match at L{index}】\n{shown}")
            index += _FIND_LINES
        text = "\n\n".join(chunks) if chunks else f"No `find` results for pattern: `{pattern}`"
        found = Page(
            url=f"{page.url}/find?pattern={quote(pattern)}",
            title=f"Find results for text: `{pattern}` in `{page.title}`",
            text=text,
            links=dict.fromkeys(match_lines, page.url),
            kind="find",
            match_lines=match_lines,
        )
        self._fetched.setdefault(page.url, page)  # a match's link leads back to this very page
        return self._show(found)

    # -- the stack ------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every page shown and fetched: the next call starts at cursor 0 (a new conversation)."""
        self.stack.clear()
        self._fetched.clear()

    def url_at(self, cursor: int) -> str | None:
        """The address of the page at `cursor` (what a citation `【cursor†...】` points to), if it has one."""
        if 0 <= cursor < len(self.stack):
            return self.stack[cursor].url or None
        return None

    def source_at(self, cursor: int) -> tuple[str, str] | None:
        """The (address, title) a citation `【cursor†...】` points to, if that page has an address."""
        url = self.url_at(cursor)
        return None if url is None else (url, self.stack[cursor].title)

    def _page(self, cursor: int) -> Page:
        if not self.stack:
            raise _UsageError("No pages to access!")
        if cursor == -1:
            return self.stack[-1]
        if not 0 <= cursor < len(self.stack):
            raise _UsageError(
                f"Cursor `{cursor}` is out of range. Available cursor indices: [0 - {len(self.stack) - 1}]."
            )
        return self.stack[cursor]

    def _fetch(self, url: str, *, fresh: bool) -> Page:
        if not fresh and url in self._fetched:
            return self._fetched[url]
        try:
            page = self.fetcher.fetch(url)
        except BrowserBackendError as error:
            raise _UsageError(f"Error fetching URL `{_quoted(url)}`: {_quoted(str(error))}") from error
        self._fetched[url] = page
        return page

    def _show(self, page: Page, loc: int = -1, num_lines: int = -1) -> str:
        """Push `page` and return its view from line `loc` (the top when negative)."""
        if len(self.stack) >= MAX_PAGES:
            raise _UsageError(f"The browser holds {MAX_PAGES} pages, its limit: answer with what you have.")
        cursor = len(self.stack)
        try:
            view = page_view(cursor, page.title, page.url, page.text, max(loc, 0), num_lines)
        except ValueError as error:  # a line past the end: the page is not pushed
            raise _UsageError(str(error)) from error
        self.stack.append(page)
        return view
