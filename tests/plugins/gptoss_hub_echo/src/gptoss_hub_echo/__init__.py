"""A minimal third-party backend plugin: the `echo` backend.

It proves the entry-point path and gives tests a backend with no runtime behind it. For a prompt of the
tiny-harmony reference corpus (or a step of its builtin tool flows, sent today) it replays that prompt's
reference completion, so it passes the
conformance kit the way a correct runtime would; any other prompt it answers by repeating the last user
message as harmony (analysis, then a final message). Either way one token at a time.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gptoss_hub import (
    Backend,
    Capabilities,
    Engine,
    EngineInfo,
    GenerationChunk,
    GenerationRequest,
    LoadRequest,
    hookimpl,
    validate_options,
)
from gptoss_hub.harmony import harmony_encoding

_corpus_lock = threading.Lock()


def _reference_completions() -> dict[tuple[int, ...], tuple[int, ...]]:
    # Built once (it renders the whole corpus), even when many requests arrive together.
    with _corpus_lock:
        return _build_reference_completions()


@functools.lru_cache(maxsize=1)
def _build_reference_completions() -> dict[tuple[int, ...], tuple[int, ...]]:
    from gptoss_hub.testing import corpus_examples
    from gptoss_hub.testing.corpus import builtin_examples

    # The corpus, and the builtin tool flows as `Model.run` sends them today (the checkpoint's build checks
    # those too, so a correct runtime replays them).
    examples = corpus_examples() + builtin_examples(with_tools=False)
    return {example.prompt_ids: example.completion_ids for example in examples}


class EchoEngine(Engine):
    """Replays reference completions, else repeats the last user message; honours max_tokens and stop ids."""

    capabilities = Capabilities(streaming=True, max_context=8192)
    info = EngineInfo(device="cpu", dtype="none")

    def __init__(self, token_delay: float = 0.0):
        #: Seconds to wait before each token: a long reply that takes a while, for tests that stop one.
        self.token_delay = token_delay

    def completion_for(self, prompt_ids: list[int]) -> list[int]:
        """The harmony completion this engine produces for a prompt."""
        reference = _reference_completions().get(tuple(prompt_ids))
        if reference is not None:
            return list(reference)
        encoding = harmony_encoding()
        text = encoding.decode(prompt_ids)
        last_user = text.rsplit("<|start|>user<|message|>", 1)[-1].split("<|end|>", 1)[0]
        completion = (
            "<|channel|>analysis<|message|>The user said something; repeat it.<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>{last_user}<|return|>"
        )
        return encoding.encode(completion, allowed_special="all")

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        budget = self.check_context(request)
        completion = self.completion_for(request.prompt_ids)
        for produced, token in enumerate(completion[:budget], start=1):
            if self.token_delay:
                time.sleep(self.token_delay)
            if token in request.stop_token_ids:
                yield GenerationChunk([token], "stop")
                return
            yield GenerationChunk([token], "length" if produced == budget else None)


class EchoOptions(BaseModel):
    """The echo backend's one option: `token_delay`, seconds before each token (default none)."""

    model_config = ConfigDict(extra="forbid")

    token_delay: float = Field(default=0.0, ge=0.0, le=10.0)


class EchoBackend(Backend):
    """Runs the tiny reference models anywhere, never preferred: tests ask for it by name."""

    name: ClassVar[str] = "echo"
    rank: ClassVar[int] = -1000
    description: ClassVar[str] = "test backend that repeats the last user message"

    def check(self, report: Any, spec: Any) -> list[str]:
        # Echoing is only an honest stand-in for the tiny test models, never for a real checkpoint.
        return [] if spec.kind == "reference" else ["echo only stands in for the tiny reference models"]

    def load(self, request: LoadRequest) -> Engine:
        options = validate_options(EchoOptions, dict(request.options), self.name)  # an unknown one is an error
        return EchoEngine(token_delay=options.token_delay)


@hookimpl
def gptoss_hub_register_backends(registry: Any) -> None:
    registry.add(EchoBackend)
