"""The environment's say in what loads where, read in one place.

`gptoss_hub.load()` and the command line resolve it here and pass the result on; `gptoss_hub.dispatch.plan()`
never reads the environment, so a plan is a function of the model, the hardware and the preferences alone.
"""

from __future__ import annotations

import os

from gptoss_hub.sources import ModelSpec

__all__ = ["BACKEND_ENV_VAR", "BASE_URL_ENV_VAR", "requested_backend", "where_served"]

#: Names the backend when the caller passes none (or "auto").
BACKEND_ENV_VAR = "GPTOSS_HUB_BACKEND"
#: The OpenAI SDK's variable for a server's base URL; `backend="openai"` reads it for a model that is not a URL.
BASE_URL_ENV_VAR = "OPENAI_BASE_URL"


def requested_backend(backend: str | None) -> str:
    """The backend asked for: `backend`, or `$GPTOSS_HUB_BACKEND` when it is `None` or "auto"."""
    if backend in (None, "auto"):
        return os.environ.get(BACKEND_ENV_VAR) or "auto"
    return backend


def where_served(spec: ModelSpec, backend: str, base_url: str | None = None) -> ModelSpec:
    """`spec`, or the same model served by the server at `base_url`.

    Without `base_url`, a model asked for with `backend="openai"` that is not a URL itself is served at
    `$OPENAI_BASE_URL` (the server named the way the openai SDK reads it), when that is set.
    """
    if base_url is not None:
        return spec.served_at(base_url)
    remote_url = os.environ.get(BASE_URL_ENV_VAR)
    if backend == "openai" and spec.kind != "endpoint" and remote_url:
        return spec.served_at(remote_url)
    return spec
