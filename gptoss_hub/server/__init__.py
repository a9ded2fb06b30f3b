"""An OpenAI-compatible HTTP server over any backend (`gptoss-hub serve`).

`create_app(model)` returns a FastAPI application: `POST /v1/chat/completions` and `POST /v1/responses`
(streamed or not, with reasoning, tool calls and usage; responses chained by `previous_response_id`), `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus). Errors
use OpenAI's error shape.
Needs the `server` extra (`pip install 'gptoss-hub[server]'`).
"""

from __future__ import annotations

from gptoss_hub.server.app import create_app

__all__ = ["create_app"]
