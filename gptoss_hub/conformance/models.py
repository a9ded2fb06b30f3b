"""A `Model` around any engine, so the kit runs the hub's rendering and parsing on an engine under test."""

from __future__ import annotations

from typing import Any

from gptoss_hub.engine import Engine
from gptoss_hub.model import Model, ModelInfo
from gptoss_hub.sources import resolve_model

__all__ = ["model_for"]


def model_for(engine: Engine, model: str = "tiny", label: str | None = None) -> Model:
    """`engine` behind the hub's `Model` API, as `gptoss_hub.load` would return it for `model`."""
    spec = resolve_model(model)
    info = ModelInfo(
        model=spec.name,
        source=str(spec.source),
        backend=label or type(engine).__name__,
        plugin="conformance",
        device=engine.info.device,
        dtype=engine.info.dtype,
        capabilities=_capabilities(engine),
    )
    model_object = Model(engine, spec, info)
    # The tiny checkpoints are taught to be decoded greedily, whatever the model's name.
    model_object.default_temperature = 0.0
    return model_object


def _capabilities(engine: Engine) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(engine.capabilities)
