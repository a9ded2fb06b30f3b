"""Search sources by name, as the command line and the server take them: `local:DIR`, `searxng:URL`, `exa`,
`youcom` or `fixture`."""

from __future__ import annotations

from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.tools.browser.browser import Browser
from gptoss_hub.tools.browser.pages import BrowserBackendError, PageFetcher, SearchBackend

__all__ = ["SEARCH_SOURCES", "browser_for", "search_source"]

#: What `search_source` understands.
SEARCH_SOURCES = {
    "local:DIR": "the documents (HTML, Markdown, text) under DIR, indexed offline; opens those documents",
    "searxng:URL": "the SearXNG instance at URL (its JSON API, no key); opens public pages over HTTP(S)",
    "exa": "Exa's hosted search and crawling (EXA_API_KEY)",
    "youcom": "You.com's hosted search and crawling (YDC_API_KEY)",
    "fixture": "the small fixed web the tests and the tiny model use",
}


def search_source(spec: str) -> tuple[SearchBackend, PageFetcher]:
    """The search backend and page fetcher `spec` names (see `SEARCH_SOURCES`)."""
    kind, _, argument = spec.partition(":")
    if kind == "local" and argument:
        from gptoss_hub.tools.browser.local import LocalSearch

        try:
            local = LocalSearch(argument)
        except BrowserBackendError as error:
            raise InvalidRequestError(f"--search {spec}: {error}.") from error
        return local, local
    if kind == "searxng" and argument:
        from gptoss_hub.tools.browser.fetch import HttpFetcher
        from gptoss_hub.tools.browser.searxng import SearxngSearch

        return SearxngSearch(argument), HttpFetcher()
    if spec in ("exa", "youcom"):
        from gptoss_hub.tools.browser.keyed import ExaSearch, YouSearch

        hosted = ExaSearch() if spec == "exa" else YouSearch()
        return hosted, hosted
    if spec == "fixture":
        from gptoss_hub.testing.web import fixture_web

        web = fixture_web()
        return web, web
    choices = "; ".join(f"{name} ({what})" for name, what in SEARCH_SOURCES.items())
    raise InvalidRequestError(f"Unknown search source {spec!r}; use one of: {choices}.")


def browser_for(spec: str) -> Browser:
    """A new `Browser` over the source `spec` names."""
    search, fetcher = search_source(spec)
    return Browser(search, fetcher)
