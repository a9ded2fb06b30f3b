"""The chat page `gptoss-hub serve` shows at `/`: static files shipped in the package (no build step, no CDN),
which talk to the server's own Responses API."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

__all__ = ["PAGE_FILES", "page_file", "page_index"]

_FOLDER = Path(__file__).with_name("page")
#: The page's files and their media types: nothing else under `/page/` is served.
PAGE_FILES = {
    "index.html": "text/html; charset=utf-8",
    "chat.js": "text/javascript; charset=utf-8",
    "markdown.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
}
#: The page loads and talks to nothing but this server, and runs no inline script: a reply that slipped
#: markup past the Markdown renderer still could not run code or send anything elsewhere.
_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'"


def _file(name: str) -> Response:
    response = FileResponse(_FOLDER / name, media_type=PAGE_FILES[name])
    response.headers["Content-Security-Policy"] = _POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response


async def page_index(request: Request) -> Response:
    """`GET /`: the chat page."""
    return _file("index.html")


async def page_file(request: Request) -> Response:
    """`GET /page/NAME`: one of the page's files; 404 for any other name."""
    from gptoss_hub.server.errors import APIError

    name = request.path_params["name"]
    if name not in PAGE_FILES:
        raise APIError(404, f"No page file {name!r}.", "invalid_request_error", "not_found")
    return _file(name)
