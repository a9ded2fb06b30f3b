"""Citations: the `【cursor†Lx-Ly】` markers gpt-oss writes after what it read, turned into links.

The browser's system message tells the model to cite as `【{cursor}†L{start}(-L{end})?】`. A marker whose
cursor is a page with an address becomes a Markdown link to it, `([domain](url))`, and a `Citation` giving
the link's span in the new text, the address and the page's title; a marker whose cursor is unknown, or a
page of search results (no address), stays as written. `CitationStream` does the same to text arriving in
pieces, holding back what may be the start of a marker so a reader never sees half of one.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from gptoss_hub.reply import Citation
from gptoss_hub.tools.browser.display import MARKER, PARTIAL_MARKER_AT_END

__all__ = ["CitationStream", "Source", "cite"]

#: A cited page: (address, title), or `None` when the cursor names no page with an address.
Source = Callable[[int], "tuple[str, str] | None"]

#: Characters held back at most: a "marker" longer than this is text, and is shown.
_LONGEST_MARKER = 256


def _link(url: str) -> str:
    return f"([{urlparse(url).netloc or url}]({url}))"


def cite(text: str, source: Source, offset: int = 0) -> tuple[str, list[Citation]]:
    """`text` with each marker of a known page replaced by a link to it, and the citations (their spans
    counted from `offset`, where `text` starts in the whole content)."""
    pieces: list[str] = []
    citations: list[Citation] = []
    length = offset
    last = 0
    for match in MARKER.finditer(text):
        pieces.append(text[last : match.start()])
        length += match.start() - last
        last = match.end()
        found = source(int(match.group("number")))
        if found is None:
            pieces.append(match.group(0))
            length += len(match.group(0))
            continue
        url, title = found
        link = _link(url)
        citations.append(Citation(start_index=length, end_index=length + len(link), url=url, title=title))
        pieces.append(link)
        length += len(link)
    pieces.append(text[last:])
    return "".join(pieces), citations


class CitationStream:
    """Citations for text that arrives in deltas: `feed` returns what may be shown now (markers already
    turned into links) and the citations in it; `finish` returns what was held back."""

    def __init__(self, source: Source):
        self.source = source
        self.shown = 0  # characters given out so far: where the next citation's span is counted from
        self._pending = ""

    def feed(self, delta: str) -> tuple[str, list[Citation]]:
        """The text that can be shown after `delta`, and its citations."""
        self._pending += delta
        partial = PARTIAL_MARKER_AT_END.search(self._pending)
        cut = len(self._pending)
        if partial and len(self._pending) - partial.start() <= _LONGEST_MARKER:
            cut = partial.start()
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._emit(ready)

    def finish(self) -> tuple[str, list[Citation]]:
        """Whatever was held back (an unfinished marker is shown as written)."""
        ready, self._pending = self._pending, ""
        return self._emit(ready)

    def _emit(self, ready: str) -> tuple[str, list[Citation]]:
        text, citations = cite(ready, self.source, self.shown)
        self.shown += len(text)
        return text, citations
