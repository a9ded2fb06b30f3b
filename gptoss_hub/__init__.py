"""gptoss_hub: run OpenAI's gpt-oss models on any hardware, behind one harmony-aware chat API.

    import gptoss_hub as gh
    model = gh.load("tiny")
    reply = model.chat([{"role": "user", "content": "Say hello."}])

Importing the package is cheap: no plugin is loaded, nothing is probed and no runtime (torch,
transformers, vllm, llama_cpp) is imported until it is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gptoss_hub._version import __version__
from gptoss_hub.errors import GptOssHubError
from gptoss_hub.hookspecs import hookimpl

if TYPE_CHECKING:
    from gptoss_hub import hardware, harmony
    from gptoss_hub.dispatch import Plan, plan
    from gptoss_hub.engine import (
        Backend,
        Capabilities,
        Engine,
        EngineInfo,
        GenerationChunk,
        GenerationRequest,
        LoadRequest,
        MessageEngine,
        validate_options,
    )
    from gptoss_hub.loading import load
    from gptoss_hub.model import Model, ModelInfo
    from gptoss_hub.reply import Reply, ToolCall, Usage
    from gptoss_hub.sources import ModelSpec

__all__ = [
    "Backend",
    "Capabilities",
    "Engine",
    "EngineInfo",
    "GenerationChunk",
    "GenerationRequest",
    "GptOssHubError",
    "LoadRequest",
    "MessageEngine",
    "Model",
    "ModelInfo",
    "ModelSpec",
    "Plan",
    "Reply",
    "ToolCall",
    "Usage",
    "__version__",
    "hardware",
    "harmony",
    "hookimpl",
    "load",
    "plan",
    "validate_options",
]

# name -> module that defines it; resolved on first access so `import gptoss_hub` stays light.
_LAZY = {
    "Backend": "gptoss_hub.engine",
    "Capabilities": "gptoss_hub.engine",
    "Engine": "gptoss_hub.engine",
    "EngineInfo": "gptoss_hub.engine",
    "GenerationChunk": "gptoss_hub.engine",
    "GenerationRequest": "gptoss_hub.engine",
    "LoadRequest": "gptoss_hub.engine",
    "MessageEngine": "gptoss_hub.engine",
    "validate_options": "gptoss_hub.engine",
    "Model": "gptoss_hub.model",
    "ModelInfo": "gptoss_hub.model",
    "ModelSpec": "gptoss_hub.sources",
    "Plan": "gptoss_hub.dispatch",
    "plan": "gptoss_hub.dispatch",
    "Reply": "gptoss_hub.reply",
    "ToolCall": "gptoss_hub.reply",
    "Usage": "gptoss_hub.reply",
    "load": "gptoss_hub.loading",
}
_SUBMODULES = {"harmony", "hardware"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"gptoss_hub.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gptoss_hub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
