"""One scripted engine for the tests: it answers each request with the next harmony completion it was given."""

from __future__ import annotations

from gptoss_hub.engine import Capabilities, Engine, EngineInfo, GenerationChunk
from gptoss_hub.harmony import harmony_encoding
from gptoss_hub.model import Model, ModelInfo
from gptoss_hub.sources import resolve_model


class ScriptedEngine(Engine):
    """Answers request N with completion N (the last one again after that), written in harmony text.

    It honours neither `max_tokens` nor stop ids (the hub must), yields the completion one token per chunk
    or, with `one_chunk`, all at once, and keeps every request it saw.
    """

    info = EngineInfo(device="cpu", dtype="none")

    def __init__(self, *completions: str, one_chunk: bool = False, max_context: int = 100_000):
        encoding = harmony_encoding()
        self.completions = [encoding.encode(text, allowed_special="all") for text in completions]
        self.one_chunk = one_chunk
        self.capabilities = Capabilities(streaming=True, max_context=max_context)
        self.requests: list = []

    @property
    def prompts(self) -> list[list[int]]:
        """The prompt ids of every request, in order."""
        return [request.prompt_ids for request in self.requests]

    def generate(self, request):
        self.requests.append(request)
        ids = self.completions[min(len(self.requests), len(self.completions)) - 1]
        if self.one_chunk:
            yield GenerationChunk(list(ids), "stop")
            return
        for index, token in enumerate(ids):
            yield GenerationChunk([token], "stop" if index == len(ids) - 1 else None)


def scripted_model(engine: Engine) -> Model:
    """A `Model` over `engine`, as `gh.load` would return it."""
    info = ModelInfo(
        model="scripted", source="scripted", backend="scripted", plugin="tests", device="cpu", dtype="none"
    )
    return Model(engine, resolve_model("tiny"), info)
