"""One HTTP exchange with a search provider the operator chose: bounded in time and size, errors as text."""

from __future__ import annotations

from typing import Any

from gptoss_hub.tools.browser.pages import BrowserBackendError

__all__ = ["exchange"]


def exchange(
    name: str, method: str, url: str, *, timeout: float, max_bytes: int, **arguments: Any
) -> tuple[int, bytes]:
    """The status and body of `method url` (httpx `arguments`: headers, params, json), read within `timeout`
    and up to `max_bytes`; `name` (the provider) is in every error."""
    import httpx

    try:
        with (
            httpx.Client(timeout=timeout, trust_env=False) as client,
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
