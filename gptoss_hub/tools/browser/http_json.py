"""Talking to a search provider the operator chose: one HTTP exchange bounded in time and size (errors as
text), and its results read without trusting their shape."""

from __future__ import annotations

import time
from typing import Any

from gptoss_hub.tools.browser.display import SearchResult
from gptoss_hub.tools.browser.pages import BrowserBackendError

__all__ = ["SNIPPET_CHARS", "TITLE_CHARS", "exchange", "provider_results", "provider_text"]

#: Characters of a result's snippet and title kept.
SNIPPET_CHARS, TITLE_CHARS = 300, 200


def exchange(
    name: str, method: str, url: str, *, timeout: float, max_bytes: int, **arguments: Any
) -> tuple[int, bytes]:
    """The status and body of `method url` (httpx `arguments`: headers, params, json), read within `timeout`
    (the whole exchange) and up to `max_bytes`; `name` (the provider) is in every error."""
    import httpx

    from gptoss_hub.tools.browser.deadline import transport_with_deadline

    transport = transport_with_deadline(time.monotonic() + timeout)
    try:
        with (
            httpx.Client(transport=transport, timeout=timeout, trust_env=False) as client,
            client.stream(method, url, **arguments) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise BrowserBackendError(f"{name}'s answer is larger than {max_bytes:,} bytes")
            return response.status_code, body
    except httpx.TimeoutException as error:
        raise BrowserBackendError(f"{name} did not answer within {timeout:g} s") from error
    except httpx.HTTPError as error:
        raise BrowserBackendError(f"cannot reach {name}: {error}") from error


def provider_text(value: Any, limit: int = SNIPPET_CHARS) -> str:
    """A provider's string (or list of strings, as You.com's snippets), its whitespace collapsed, cut to
    `limit`; "" for anything else."""
    if isinstance(value, list):
        value = " ".join(str(item) for item in value)
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def provider_results(items: Any, snippet_key: str) -> list[SearchResult]:
    """The results in a provider's list `items` that the browser can open (an http(s) `url`), titled by their
    `title` (else their address) with `snippet_key` as the snippet; anything else in the list is skipped."""
    found = []
    for item in items if isinstance(items, list) else ():
        url = item.get("url") if isinstance(item, dict) else None
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            title = provider_text(item.get("title"), TITLE_CHARS) or url
            found.append(SearchResult(url, title, provider_text(item.get(snippet_key))))
    return found
