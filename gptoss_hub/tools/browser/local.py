"""`LocalSearch`: a folder of documents as the browser's search engine and page source, fully offline.

Documents are HTML (`.html`, `.htm`), Markdown (`.md`, `.markdown`) and text (`.txt`) files anywhere under
the folder. They are indexed with SQLite's FTS5 (in the standard library): titles and text, Porter-stemmed,
ranked by BM25 with the title counting five times as much as the text. The index lives in the hub's cache
and is brought up to date by modification time (new and changed files are read again, removed ones
dropped), when opened and then at most once a minute as searches come in.

A document's address is its canonical address (HTML's `<link rel="canonical">`, or `url:` in a Markdown
document's front matter) if it has one, else `base_url` joined with its path in the folder (by default the
folder's `file://` address); opening that address reads the file again. Its title is HTML's `<title>`, else
a front matter `title:`, else its first heading, else its file name. A search result's snippet is the
document's description (HTML's `<meta name="description">`, a front matter `description:`), else its first
line of text. Query words are matched with common English words left out, any of them matching.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urljoin

from gptoss_hub.tools.browser.display import MARKER, SearchResult, page_text
from gptoss_hub.tools.browser.pages import BrowserBackendError, Page

__all__ = ["DOCUMENT_SUFFIXES", "IndexUpdate", "LocalSearch"]

#: File suffixes indexed, and how each is read.
DOCUMENT_SUFFIXES = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".txt": "text"}
#: Files larger than this are left out of the index.
_MAX_FILE_BYTES = 5_000_000
#: Words of a query used at most (each one a term; any of them matches).
_MAX_TERMS = 32
#: The index's layout; part of its file name, so an index of another layout is never opened.
_SCHEMA_VERSION = 1
# `files.doc` is the row of the document's text in `docs`: rows are found, and deleted, by it.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, url TEXT, title TEXT, snippet TEXT, doc INTEGER
);
CREATE INDEX IF NOT EXISTS files_by_doc ON files (doc);
CREATE INDEX IF NOT EXISTS files_by_url ON files (url);
CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(title, body, tokenize='porter unicode61');
"""


@dataclass(frozen=True)
class IndexUpdate:
    """What one refresh of the index did."""

    added: int
    updated: int
    removed: int
    unchanged: int
    seconds: float


_COMMON_WORDS = (
    "a an and are as at be by for from has have how in is it its of on or that the this to was were what when "
    "where which who whom why will with"
)
#: Words too common to search by (a query of nothing but these searches by all of them).
_STOP_WORDS = frozenset(_COMMON_WORDS.split())
_FRONT_MATTER = re.compile(r"\A---\n(?P<fields>.*?)\n---\n", re.DOTALL)
#: Characters of a snippet taken from a document's first line.
_SNIPPET_CHARS = 200


@dataclass(frozen=True)
class _Document:
    """A document as the index sees it."""

    page: Page
    #: The address the document declares for itself, if any.
    canonical: str | None
    description: str | None


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """A Markdown document's `key: value` front matter, and the text after it."""
    found = _FRONT_MATTER.match(text)
    if not found:
        return {}, text
    fields = {}
    for line in found.group("fields").splitlines():
        key, _, value = line.partition(":")
        if value:
            fields[key.strip().lower()] = value.strip().strip("'\"")
    return fields, text[found.end() :]


def _html_field(html: str, pattern: str) -> str | None:
    tag = re.search(pattern, html[:20_000], re.IGNORECASE)
    value = re.search(r"""\b(?:href|content)=["']([^"']*)["']""", tag.group(0), re.IGNORECASE) if tag else None
    return value.group(1).strip() if value else None


def _document(path: Path, url: str) -> _Document:
    """The document at `path`, shown at its canonical address or else `url`."""
    text = path.read_text(encoding="utf-8", errors="replace")
    kind = DOCUMENT_SUFFIXES[path.suffix.lower()]
    if kind == "html":
        from gptoss_hub.tools.browser.html import html_to_page

        canonical = _html_field(text, r"""<link\b[^>]*\brel=["']?canonical["']?[^>]*>""")
        canonical = canonical if canonical and canonical.startswith(("http://", "https://")) else None
        description = _html_field(text, r"""<meta\b[^>]*\bname=["']?description["']?[^>]*>""")
        return _Document(html_to_page(text, canonical or url), canonical, description)
    fields, body = _front_matter(text) if kind == "markdown" else ({}, text)
    canonical = fields.get("url") if fields.get("url", "").startswith(("http://", "https://")) else None
    heading = re.search(r"^#\s+(.+)$", body, re.MULTILINE) if kind == "markdown" else None
    title = fields.get("title") or (heading.group(1).strip() if heading else path.stem)
    address = canonical or url
    return _Document(Page(address, title, page_text(address, body)), canonical, fields.get("description"))


def _snippet(document: _Document) -> str:
    """The description, else the first line of text that is not a heading (cut at a word)."""
    if document.description:
        return document.description
    lines = _plain(document.page.text).splitlines()
    first = next((line.strip() for line in lines if line.strip() and not line.startswith("#")), "")
    if len(first) <= _SNIPPET_CHARS:
        return first
    return first[:_SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


def _fts_query(query: str) -> str:
    """`query`'s words as an FTS5 query any of them matches (quoted: FTS5's own syntax never applies)."""
    words = re.findall(r"\w+", query)[:_MAX_TERMS]
    telling = [word for word in words if word.lower() not in _STOP_WORDS] or words
    return " OR ".join(f'"{word}"' for word in telling)


def _plain(text: str) -> str:
    """Page text for the index: link markers reduced to their text, no `URL:` line."""
    text = MARKER.sub(lambda match: match.group("content"), text)
    return re.sub(r"^\nURL: [^\n]*\n", "", text)


class LocalSearch:
    """Search and open the documents under `folder` (see the module docstring).

    `index` is the SQLite file (default: in the hub's cache, one per folder); `refresh_every` how many
    seconds may pass before a search checks the folder for changes again.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        base_url: str | None = None,
        index: str | Path | None = None,
        refresh_every: float = 60.0,
    ):
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise BrowserBackendError(f"{folder} is not a folder of documents")
        self.base_url = base_url if base_url is not None else self.folder.as_uri() + "/"
        if index is None:
            from gptoss_hub.paths import cache_dir

            digest = hashlib.sha256(f"{self.folder}\n{self.base_url}".encode()).hexdigest()[:16]
            index = cache_dir() / "browser" / f"local-{digest}-v{_SCHEMA_VERSION}.sqlite"
        self.index_path = Path(index)
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        self.refresh_every = refresh_every
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.index_path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._refreshed_at = 0.0
        #: What the last refresh did.
        self.last_update = self.refresh()

    def refresh(self) -> IndexUpdate:
        """Bring the index up to date with the folder: read new and changed files, drop removed ones."""
        started = time.perf_counter()
        seen: dict[str, tuple[int, int]] = {}
        for path in self.folder.rglob("*"):
            if path.suffix.lower() in DOCUMENT_SUFFIXES and path.is_file():
                stat = path.stat()
                if stat.st_size <= _MAX_FILE_BYTES:
                    seen[path.relative_to(self.folder).as_posix()] = (stat.st_mtime_ns, stat.st_size)
        added = updated = unchanged = 0
        with self._lock, self._db:
            known = {row[0]: (row[1], row[2]) for row in self._db.execute("SELECT path, mtime_ns, size FROM files")}
            removed = [path for path in known if path not in seen]
            for path in removed:
                self._forget(path)
            for relative, stamp in seen.items():
                if known.get(relative) == stamp:
                    unchanged += 1
                    continue
                if relative in known:
                    self._forget(relative)
                    updated += 1
                else:
                    added += 1
                self._remember(relative, stamp)
        self._refreshed_at = time.monotonic()
        return IndexUpdate(added, updated, len(removed), unchanged, time.perf_counter() - started)

    def _forget(self, relative: str) -> None:
        self._db.execute("DELETE FROM docs WHERE rowid = (SELECT doc FROM files WHERE path = ?)", (relative,))
        self._db.execute("DELETE FROM files WHERE path = ?", (relative,))

    def _remember(self, relative: str, stamp: tuple[int, int]) -> None:
        document = _document(self.folder / relative, urljoin(self.base_url, quote(relative)))
        page = document.page
        doc = self._db.execute("INSERT INTO docs VALUES (?, ?)", (page.title, _plain(page.text))).lastrowid
        row = (relative, *stamp, page.url, page.title, _snippet(document), doc)
        self._db.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    def search(self, query: str, topn: int) -> list[SearchResult]:
        """The `topn` documents that best match `query`'s words, with a snippet around the match."""
        if time.monotonic() - self._refreshed_at > self.refresh_every:
            self.last_update = self.refresh()
        match = _fts_query(query)
        if not match:
            return []
        sql = (
            "SELECT files.url, files.title, files.snippet FROM docs JOIN files ON files.doc = docs.rowid "
            "WHERE docs MATCH ? ORDER BY bm25(docs, 5.0, 1.0) LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (match, topn)).fetchall()
        return [SearchResult(url, title, snippet) for url, title, snippet in rows]

    def fetch(self, url: str) -> Page:
        """The document at `url`, read again from its file."""
        with self._lock:
            row = self._db.execute("SELECT path FROM files WHERE url = ?", (url,)).fetchone()
        if row is None:
            raise BrowserBackendError(f"{url} is not a document of {self.folder}")
        path = self.folder / row[0]
        try:
            return _document(path, url).page
        except OSError as error:
            raise BrowserBackendError(f"cannot read {row[0]}: {error.strerror}") from error

    def close(self) -> None:
        """Close the index."""
        self._db.close()
