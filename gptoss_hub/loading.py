"""`gptoss_hub.load()`: resolve the model, probe the machine, pick a backend, load it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from gptoss_hub.dispatch import Candidate, Plan, plan
from gptoss_hub.engine import LoadRequest
from gptoss_hub.environment import requested_backend, where_served
from gptoss_hub.errors import BackendUnavailableError
from gptoss_hub.hardware import probe
from gptoss_hub.model import Model, ModelInfo
from gptoss_hub.plugins import backend_registry
from gptoss_hub.sources import resolve_model

__all__ = ["load"]

_log = logging.getLogger(__name__)


def load(
    model: str | os.PathLike[str] = "tiny",
    *,
    backend: str | None = "auto",
    device: str | None = None,
    serving: bool = False,
    **options: Any,
) -> Model:
    """Load a gpt-oss model on the best backend for this machine.

    `model`: an alias (`"20b"`, `"120b"`, `"tiny"`), a Hugging Face repo id, a local folder, a `.gguf`
    file or an `http(s)://…/v1` endpoint. `backend`: `"auto"` (or `$GPTOSS_HUB_BACKEND`), a family
    (`"transformers"`) or a full backend name (`"transformers/cpu"`); `serving=True` prefers backends that
    batch many requests. `base_url="http://host/v1"` (or `backend="openai"` with `$OPENAI_BASE_URL` set)
    reaches the model on an OpenAI-compatible server instead. `gptoss-hub plan MODEL` shows the choice and every rejection, and
    `Model.info.plan` records it. `device` and `options` are passed to the backend's `load()`; unknown
    options are an error.
    """
    backend = requested_backend(backend)
    # A model served elsewhere (base_url, or $OPENAI_BASE_URL with backend="openai") is an endpoint: only a
    # remote backend can take one, so dispatch picks it.
    spec = where_served(resolve_model(model), backend, options.pop("base_url", None))
    report = probe()
    request = LoadRequest.of(spec, report, device=device, **options)
    the_plan = plan(
        spec, report, backend=backend, serving=serving, context=request.context, device=device, options=request.options
    )
    chosen = _chosen(the_plan, request.options)
    # The plan's spec: it carries the context budget, and the server when the model is served elsewhere.
    spec = the_plan.spec
    registry = backend_registry()
    chosen_backend = registry.get(chosen.backend)
    if chosen.viable:
        reasons = [f"{chosen.backend}: the highest-ranked backend that can run {spec.name} here"]
    else:
        reasons = [f"{chosen.backend} was asked for with fallback=True: {'; '.join(chosen.reasons)}"]
    for candidate in the_plan.candidates:
        if candidate is chosen:
            break
        reasons.append(f"{candidate.backend} passed over: {'; '.join(candidate.reasons)}")
    _log.info("loading %s with %s", spec.name, chosen.backend)
    engine = chosen_backend.load(replace(request, spec=spec))
    fallback = engine.info.details.get("fallback")
    info = ModelInfo(
        model=spec.name,
        source=spec.source,
        backend=fallback["running"] if fallback else chosen.backend,
        plugin=registry.owner(fallback["running"] if fallback else chosen.backend),
        device=engine.info.device,
        dtype=engine.info.dtype,
        quantization=engine.info.quantization,
        attention=engine.info.attention,
        capabilities=asdict(engine.capabilities),
        reasons=reasons,
        fallbacks=[f"{fallback['wanted']} -> {fallback['running']}"] if fallback else [],
        plan=the_plan.to_dict(),
        details=dict(engine.info.details),
    )
    return Model(engine, spec, info)


def _chosen(the_plan: Plan, options: Mapping[str, Any]) -> Candidate:
    """The candidate to load: the plan's choice, or, with `fallback=True`, the one backend asked for by name
    even though it cannot run as asked: its `load()` then continues on the next variant that can (and says
    so in `EngineInfo.details["fallback"]`), rather than the plan refusing before it is tried."""
    try:
        return the_plan.require()
    except BackendUnavailableError:
        named = [c for c in the_plan.candidates if c.backend == the_plan.requested]
        if not options.get("fallback") or not named:
            raise
        return named[0]
