"""Search sources by name, as the command line and the server take them: `local:DIR`, `searxng:URL`, `exa`,
`youcom`, `fixture`, and those plugins register (`gptoss_hub_register_search_sources`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.tools.browser.browser import Browser
from gptoss_hub.tools.browser.pages import BrowserBackendError, PageFetcher, SearchBackend

if TYPE_CHECKING:
    from gptoss_hub.plugins import SearchSourceRegistry

__all__ = ["browser_for", "register_builtin_sources", "search_source"]


def _local(folder: str) -> tuple[Any, Any]:
    from gptoss_hub.tools.browser.local import LocalSearch

    if not folder:
        raise InvalidRequestError("local needs a folder: local:DIR.")
    local = LocalSearch(folder)
    return local, local


def _searxng(url: str) -> tuple[Any, Any]:
    from gptoss_hub.tools.browser.fetch import HttpFetcher
    from gptoss_hub.tools.browser.searxng import SearxngSearch

    if not url:
        raise InvalidRequestError("searxng needs the instance's address: searxng:URL.")
    return SearxngSearch(url), HttpFetcher()


def _hosted(name: str) -> Any:
    def open_source(argument: str) -> tuple[Any, Any]:
        from gptoss_hub.tools.browser.keyed import ExaSearch, YouSearch

        hosted = ExaSearch() if name == "exa" else YouSearch()
        return hosted, hosted

    return open_source


def _fixture(argument: str) -> tuple[Any, Any]:
    from gptoss_hub.testing.web import fixture_web

    web = fixture_web()
    return web, web


def register_builtin_sources(registry: SearchSourceRegistry) -> None:
    """The hub's own search sources, registered before any plugin's."""
    registry.add("local", _local, "local:DIR, the documents (HTML, Markdown, text) under DIR, indexed offline")
    registry.add("searxng", _searxng, "searxng:URL, a SearXNG instance (its JSON API, no key); opens public pages")
    registry.add("exa", _hosted("exa"), "exa, Exa's hosted search and crawling (EXA_API_KEY)")
    registry.add("youcom", _hosted("youcom"), "youcom, You.com's hosted search and crawling (YDC_API_KEY)")
    registry.add("fixture", _fixture, "fixture, the small fixed web the tests and the tiny model use")


def search_source(spec: str) -> tuple[SearchBackend, PageFetcher]:
    """The search backend and page fetcher `spec` ("NAME" or "NAME:ARGUMENT") names."""
    from gptoss_hub.plugins import search_sources

    sources = search_sources()
    name, _, argument = spec.partition(":")
    if name not in sources.names():
        choices = "; ".join(sources.describe().values())
        raise InvalidRequestError(f"Unknown search source {spec!r}; use one of: {choices}.")
    try:
        search, fetcher = sources.open(name, argument)
    except BrowserBackendError as error:
        raise InvalidRequestError(f"--search {spec}: {error}.") from error
    return search, fetcher


def browser_for(spec: str) -> Browser:
    """A new `Browser` over the source `spec` names."""
    search, fetcher = search_source(spec)
    return Browser(search, fetcher)
