"""Engines with planted faults, each run through the conformance kit by `test_conformance_kit.py`.

Not collected by the normal run (the name does not start with `test_`): that test runs this file in a
subprocess and reads which checks each class failed. Every engine wraps the `echo` plugin's engine,
which replays the reference completions, so without a fault each class would pass every check.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from gptoss_hub_echo import EchoEngine

from gptoss_hub.conformance import ConformanceSuite
from gptoss_hub.engine import Engine, GenerationChunk, GenerationRequest, token_chunk

START_ID = 200006


class Wrapper(Engine):
    """Delegates to the echo engine; subclasses plant one fault."""

    def __init__(self) -> None:
        self.inner = EchoEngine()
        self.capabilities = self.inner.capabilities
        self.info = self.inner.info

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        yield from self.inner.generate(request)


class IgnoresStop(Wrapper):
    """Goes on past `<|return|>` and `<|call|>` (16 more tokens, then it gives up as if out of budget)."""

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        budget = self.check_context(request)
        ids = [*self.inner.completion_for(request.prompt_ids), *[START_ID] * 16][:budget]
        for produced, token in enumerate(ids, start=1):
            yield token_chunk(token, produced, len(ids), stop=False)


class OffByOne(Wrapper):
    """Emits the middle token of every reply as the next id in the vocabulary."""

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        middle = len(self.inner.completion_for(request.prompt_ids)) // 2
        for index, chunk in enumerate(self.inner.generate(request)):
            yield replace(chunk, token_ids=[t + 1 for t in chunk.token_ids]) if index == middle else chunk


class StreamDropsLastToken(Wrapper):
    """Streams (`agenerate`) every token but the last."""

    async def agenerate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        chunks = list(self.inner.generate(request))
        for chunk in chunks[:-1]:
            yield chunk
        yield replace(chunks[-1], token_ids=chunks[-1].token_ids[:-1])


class ClaimsLogprobs(Wrapper):
    """Declares logprobs and never returns any."""

    def __init__(self) -> None:
        super().__init__()
        self.capabilities = replace(self.inner.capabilities, logprobs=True)


class ClaimsJsonSchema(Wrapper):
    """Declares JSON-schema output and ignores the schema."""

    def __init__(self) -> None:
        super().__init__()
        self.capabilities = replace(self.inner.capabilities, json_schema=True)


class HangsOnShortBudgets(Wrapper):
    """Never answers a request for fewer than 8 tokens."""

    def generate(self, request: GenerationRequest) -> Iterator[GenerationChunk]:
        if request.max_tokens is not None and request.max_tokens < 8:
            threading.Event().wait()
        yield from self.inner.generate(request)


def _suite(engine_class: type[Engine]) -> type[ConformanceSuite]:
    class Suite(ConformanceSuite):
        @pytest.fixture(scope="class")
        @classmethod
        def gptoss_engine(cls) -> Engine:
            return engine_class()

    return Suite


TestFaithful = _suite(Wrapper)
TestIgnoresStop = _suite(IgnoresStop)
TestOffByOne = _suite(OffByOne)
TestStreamDropsLastToken = _suite(StreamDropsLastToken)
TestClaimsLogprobs = _suite(ClaimsLogprobs)
TestClaimsJsonSchema = _suite(ClaimsJsonSchema)
TestHangsOnShortBudgets = _suite(HangsOnShortBudgets)
