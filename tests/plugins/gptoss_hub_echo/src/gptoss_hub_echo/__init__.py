"""A minimal third-party backend plugin: the `echo` backend.

It proves the entry-point path and gives tests a backend with no runtime behind it: the engine decodes
the prompt, finds the last user message and answers it as harmony (analysis, then a final message
repeating the text), one token at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from gptoss_hub import Backend, Capabilities, Engine, EngineInfo, GenerationChunk, GenerationRequest, hookimpl
from gptoss_hub.encoding import harmony_encoding


class EchoEngine(Engine):
    """Answers every prompt with the last user message, honouring max_tokens and stop ids."""

    capabilities = Capabilities(streaming=True, max_context=8192)
    info = EngineInfo(device="cpu", dtype="none")

    def completion_for(self, prompt_ids: list[int]) -> list[int]:
        """The harmony completion this engine produces for a prompt."""
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
            if token in request.stop_token_ids:
                yield GenerationChunk([token], "stop")
                return
            yield GenerationChunk([token], "length" if produced == budget else None)


class EchoBackend(Backend):
    """Runs the tiny reference models anywhere, never preferred: tests ask for it by name."""

    name: ClassVar[str] = "echo"
    rank: ClassVar[int] = -1000
    description: ClassVar[str] = "test backend that repeats the last user message"

    def check(self, report: Any, spec: Any) -> list[str]:
        # Echoing is only an honest stand-in for the tiny test models, never for a real checkpoint.
        return [] if spec.kind == "reference" else ["echo only stands in for the tiny reference models"]

    def load(self, spec: Any, report: Any, **options: Any) -> Engine:
        return EchoEngine()


@hookimpl
def gptoss_hub_register_backends(registry: Any) -> None:
    registry.add(EchoBackend)
