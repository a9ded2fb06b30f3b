"""`gptoss_hub.load()`: resolve the model, probe the machine, pick a backend, load it."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import Any

from gptoss_hub.dispatch import plan
from gptoss_hub.hardware import probe
from gptoss_hub.model import Model, ModelInfo
from gptoss_hub.plugins import backend_registry
from gptoss_hub.sources import resolve_model

__all__ = ["load"]

_log = logging.getLogger(__name__)


def load(
    model: str | os.PathLike[str] = "tiny",
    *,
    backend: str = "auto",
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
    spec = resolve_model(model)
    base_url = options.pop("base_url", None)
    if base_url is not None:
        # A model served elsewhere: only a remote backend can take an endpoint, so dispatch picks one.
        spec = spec.served_at(base_url)
    report = probe()
    the_plan = plan(spec, report, backend=backend, serving=serving, context=options.get("max_context"), device=device)
    chosen = the_plan.require()
    # The plan's spec: it carries the context budget, and the server when the model is served elsewhere.
    spec = the_plan.spec
    registry = backend_registry()
    chosen_backend = registry.get(chosen.backend)
    reasons = [f"{chosen.backend}: the highest-ranked backend that can run {spec.name} here"]
    for candidate in the_plan.candidates:
        if candidate is chosen:
            break
        reasons.append(f"{candidate.backend} passed over: {'; '.join(candidate.reasons)}")
    _log.info("loading %s with %s", spec.name, chosen.backend)
    engine = chosen_backend.load(spec, report, device=device, **options)
    info = ModelInfo(
        model=spec.name,
        source=spec.source,
        backend=chosen.backend,
        plugin=registry.owner(chosen.backend),
        device=engine.info.device,
        dtype=engine.info.dtype,
        quantization=engine.info.quantization,
        attention=engine.info.attention,
        capabilities=asdict(engine.capabilities),
        reasons=reasons,
        plan=the_plan.to_dict(),
        details=dict(engine.info.details),
    )
    return Model(engine, spec, info)
