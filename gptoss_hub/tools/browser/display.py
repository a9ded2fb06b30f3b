"""How the browser shows a page to the model: the text format gpt-oss was trained to read.

A page is its text, with a first empty line and a `URL:` line (`page_text`). A view of it (`page_view`) is a
header, `[cursor] title (url)`, then `**viewing lines [a - b] of n**` (both line indices, `n` the last
line's), a blank line, and the lines from `a` to `b`, each numbered `L{i}: `. Lines are the page's text
wrapped at 80 characters, whitespace kept; a view holds about 1,024 o200k tokens unless a number of lines is
asked for. Links in a page read `【id†text】`, or `【id†text†domain】` when they lead to another domain; a page
of search results lists each result as a link followed by its snippet.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

__all__ = [
    "MARKER",
    "PARTIAL_MARKER_AT_END",
    "URL_CHARS_SHOWN",
    "VIEW_TOKENS",
    "WRAP_WIDTH",
    "SearchResult",
    "link_marker",
    "page_text",
    "page_view",
    "search_results_text",
    "strip_links",
    "view_end",
    "wrap_lines",
]

#: Characters per wrapped line.
WRAP_WIDTH = 80
#: o200k tokens a view shows when no number of lines is asked for (the view ends with the line holding the
#: token past this many).
VIEW_TOKENS = 1024
#: A URL in a view's header is cut to this many characters.
URL_CHARS_SHOWN = 1024
#: A marker: a link in a page, `【id†text】` or `【id†text†domain】`, or a citation the model writes,
#: `【cursor†Lx-Ly】` (`number` is the link id or the cursor, `content` the text or the lines).
MARKER = re.compile(r"【(?P<number>\d+)†(?P<content>[^†】]+)(?:†[^†】]+)?】")
#: What may still grow into a marker at the end of the text seen so far.
PARTIAL_MARKER_AT_END = re.compile(r"【\d*(?:†(?P<content>[^†】]*)(?:†[^†】]*)?)?$")
# The end of a marker cut by line wrapping, at the start of the text.
_PARTIAL_MARKER_AT_START = re.compile(r"^[^【】]*】")


@dataclass(frozen=True)
class SearchResult:
    """One search hit: where it leads, its title and a snippet of its text."""

    url: str
    title: str
    snippet: str


def wrap_lines(text: str, width: int = WRAP_WIDTH) -> list[str]:
    """The page's lines: each line of `text` wrapped at `width`, whitespace kept, empty lines kept."""
    return list(
        itertools.chain.from_iterable(
            textwrap.wrap(line, width=width, replace_whitespace=False, drop_whitespace=False) if line else [""]
            for line in text.split("\n")
        )
    )


def _numbered(lines: Sequence[str], first: int) -> str:
    return "\n".join(f"L{first + index}: {line}" for index, line in enumerate(lines))


def view_end(lines: Sequence[str], loc: int, num_lines: int = -1, view_tokens: int = VIEW_TOKENS) -> int:
    """The index after the last line a view starting at line `loc` shows.

    `num_lines` > 0 shows that many lines; otherwise the view ends with the line that holds the o200k token
    numbered `view_tokens` of the numbered text from `loc` (all of it when it is shorter).
    """
    if num_lines <= 0:
        from gptoss_hub.encoding import harmony_encoding

        text = _numbered(lines[loc:], loc)
        num_lines = len(lines)
        if len(text) > view_tokens:  # a token holds at least one character: shorter text fits whole
            # o200k's longest token is 128 bytes: more text than this cannot change where the window ends.
            tokens = harmony_encoding().encode(text[: (view_tokens + 1) * 128], disallowed_special=())
            if len(tokens) > view_tokens:
                num_lines = harmony_encoding().decode(tokens[:view_tokens]).count("\n") + 1
    return min(loc + num_lines, len(lines))


def strip_links(text: str) -> str:
    """`text` with every link marker replaced by its text, a marker cut off at either end included."""
    text = _PARTIAL_MARKER_AT_START.sub("", text)
    text = PARTIAL_MARKER_AT_END.sub(lambda match: match.group("content") or "", text)
    return MARKER.sub(lambda match: match.group("content"), text)


def page_text(url: str, body: str) -> str:
    """A page's text as the browser keeps it: an empty line, a `URL:` line, then `body`."""
    return f"\nURL: {url}\n{body}"


def link_marker(link_id: int, text: str, url: str, page_url: str) -> str:
    """A link as a page shows it: `【id†text】`, with `†domain` added when it leaves the page's domain."""
    text = text.replace("†", "‡")  # the dagger separates the marker's fields
    domain = urlparse(url).netloc
    if domain == urlparse(page_url).netloc:
        return f"【{link_id}†{text}】"
    return f"【{link_id}†{text}†{domain}】"


def search_results_text(results: Sequence[SearchResult]) -> str:
    """The text of a page of search results: a heading, then each result's link (id = its rank) and snippet."""
    items = [
        f"  * {link_marker(rank, result.title, result.url, '')} {result.snippet}" for rank, result in enumerate(results)
    ]
    return page_text("", "# Search Results\n\n" + "\n".join(items))


def page_view(cursor: int, title: str, url: str, text: str, loc: int = 0, num_lines: int = -1) -> str:
    """The view of a page the model reads: header, scroll position, numbered lines from `loc`.

    Raises `ValueError` when `loc` is past the last line (the browser returns that as a usage error).
    """
    lines = wrap_lines(text)
    if loc >= len(lines):
        raise ValueError(f"Invalid location parameter: `{loc}`. Cannot exceed page maximum of {len(lines) - 1}.")
    end = view_end(lines, loc, num_lines)
    header = f"[{cursor}] {title}"
    if url:
        shown = unquote(url)
        if len(shown) > URL_CHARS_SHOWN:
            shown = shown[: URL_CHARS_SHOWN - 3] + "..."
        header += f" ({shown})"
    scroll = f"**viewing lines [{loc} - {end - 1}] of {len(lines) - 1}**"
    return f"{header}\n{scroll}\n\n{_numbered(lines[loc:end], loc)}"
