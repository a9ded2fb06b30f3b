"""The `openai` backend: a remote OpenAI-compatible server behind the same `Model` API.

`gh.load("http://host:8000/v1")` (or `gh.load("20b", base_url=...)`, or `gh.load("20b", backend="openai")` with
`$OPENAI_BASE_URL` set) reaches a vLLM cluster, a `gptoss-hub serve`, a `llama-server` or a hosted
provider through its Chat Completions API. The server renders and parses harmony; its `reasoning_content`
(or `reasoning`) becomes `Reply.reasoning`, its tool calls `Reply.tool_calls`, its stream the hub's events,
its errors the hub's typed errors.

Options (`gh.load(url, **options)`): `api_key` (default `$OPENAI_API_KEY`, else none), `model_name`
(default: the repo id when a model was named, e.g. `openai/gpt-oss-20b`; for a bare URL, the first model the
server lists), `timeout` (seconds, default 600), `max_retries` (default 2).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, ClassVar

from gptoss_hub.engine import Backend
from gptoss_hub.plugins import hookimpl

if TYPE_CHECKING:
    from gptoss_hub.hardware import HardwareReport

    from gptoss_hub.engine import LoadRequest, MessageEngine, RepoFiles
    from gptoss_hub.plugins import BackendRegistry
    from gptoss_hub.sources import ModelSpec

__all__ = ["OpenAIBackend"]


class OpenAIBackend(Backend):
    """A remote OpenAI-compatible endpoint (`http(s)://…/v1`)."""

    name: ClassVar[str] = "openai"
    # The only backend that takes an endpoint, and it takes nothing else: its rank never competes.
    rank: ClassVar[int] = 0
    description: ClassVar[str] = "a remote OpenAI-compatible server (vLLM, gptoss-hub serve, llama-server, …)"
    batching: ClassVar[bool] = True

    def check(self, report: HardwareReport, spec: ModelSpec) -> list[str]:
        """Reasons it cannot serve `spec`: not an endpoint, or the openai SDK is missing."""
        reasons = []
        if spec.kind != "endpoint":
            reasons.append(
                "the openai backend reaches OpenAI-compatible servers; pass the http(s)://…/v1 URL as the model, "
                "or base_url='http(s)://…/v1', or set OPENAI_BASE_URL."
            )
        if importlib.util.find_spec("openai") is None:
            reasons.append("the openai SDK is not installed: pip install 'gptoss-hub[openai]'.")
        return reasons

    def repo_files(self, spec: ModelSpec) -> RepoFiles | None:
        """Nothing: the model lives on the server."""
        return None

    def load(self, request: LoadRequest) -> MessageEngine:
        """Connect to the endpoint (and ask it for its model when none is named)."""
        from gptoss_hub.backends.openai.engine import OpenAIEngine

        from gptoss_hub.errors import InvalidRequestError

        spec, options = request.spec, dict(request.options)
        # The server's hardware and context are its own: asking for either here would be silently ignored.
        for name, value in (("device", request.device), ("max_context", request.context)):
            if value is not None:
                raise InvalidRequestError(
                    f"{name} does not apply to a model on a remote server (it runs as the server loaded it); "
                    f"drop {name}=."
                )
        if spec.served_model is not None:
            options.setdefault("model_name", spec.served_model)
        return OpenAIEngine.connect(spec.url or spec.source, **options)


@hookimpl
def gptoss_hub_register_backends(registry: BackendRegistry) -> None:
    """Register the remote OpenAI-compatible backend."""
    registry.add(OpenAIBackend)
