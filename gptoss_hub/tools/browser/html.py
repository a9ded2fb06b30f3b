"""HTML to a `Page`: the page's text as Markdown-like lines, its links as numbered markers.

BeautifulSoup parses (it takes broken HTML as browsers do) and markdownify writes the text (`#` headings,
`*` lists), both MIT-licensed and maintained; the reference implementation uses html2text, which is GPL.
Before converting, every link becomes a marker `【id†text】` (`【id†text†domain】` when it leaves the page's
domain) numbered in document order, one id per address; images become `[Image n: alt]`; scripts, styles and
other invisible parts are dropped. Brackets `【】` in the page's own text are swapped for `〖〗`, so a page
cannot forge a link or a citation marker.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlparse

from gptoss_hub.tools.browser.display import link_marker, page_text
from gptoss_hub.tools.browser.pages import Page

if TYPE_CHECKING:
    from bs4 import BeautifulSoup

__all__ = ["html_to_page"]

_INVISIBLE = ("script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed", "head")
_SKIPPED_SCHEMES = ("mailto:", "javascript:", "tel:", "data:")


def _title(soup: BeautifulSoup, url: str) -> str:
    if soup.title is not None and soup.title.get_text(strip=True):
        return " ".join(soup.title.get_text().split())
    return urlparse(url).netloc


def html_to_page(html: str, url: str, title: str | None = None) -> Page:
    """The page `html` shows at `url` (titled `title`, else by its `<title>`, else by its domain)."""
    from bs4 import BeautifulSoup, NavigableString
    from markdownify import markdownify

    soup = BeautifulSoup(html, "html.parser")
    title = title or _title(soup, url)
    for tag in soup.find_all(_INVISIBLE):
        tag.decompose()
    for string in soup.find_all(string=True):
        if "【" in string or "】" in string:
            string.replace_with(NavigableString(str(string).replace("【", "〖").replace("】", "〗")))
    for count, image in enumerate(soup.find_all("img"), start=1):
        alt = " ".join(str(image.get("alt") or image.get("title") or "").split())
        image.replace_with(f"[Image {count}: {alt}]" if alt else f"[Image {count}]")
    links: dict[int, str] = {}
    ids: dict[str, int] = {}
    for anchor in soup.find_all("a"):
        text = " ".join(anchor.get_text().split())
        href = str(anchor.get("href") or "").strip()
        if not href or href.startswith("#") or href.lower().startswith(_SKIPPED_SCHEMES) or not text:
            anchor.replace_with(text)
            continue
        target = urljoin(url, href)
        if urlparse(target).scheme not in ("http", "https") or not urlparse(target).netloc:
            anchor.replace_with(text)
            continue
        link_id = ids.setdefault(target, len(ids))
        links[link_id] = target
        anchor.replace_with(link_marker(link_id, text, target, url))
    body = markdownify(
        str(soup),
        heading_style="ATX",
        bullets="*",
        escape_asterisks=False,
        escape_underscores=False,
        escape_misc=False,
        strip=["b", "strong", "i", "em", "u"],  # emphasis marks are noise to the model
    )
    body = "\n".join(line.rstrip() for line in body.splitlines())
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    return Page(url, title, page_text(url, body), links)
