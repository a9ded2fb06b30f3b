"""`ConformanceSuite`: every check the kit runs, as test methods on one class.

A backend is conformant when, on the tiny-harmony reference checkpoint, it produces the reference token
ids and behaves like every other backend in the ways the hub relies on. The reference is the corpus the
checkpoint was trained on: its build refuses to save unless transformers, in float32, reproduces every
corpus completion greedily, so "the reference ids" are transformers' fp32 greedy ids.

Subclass it in a test module and provide a `gptoss_engine` fixture (or let the kit's pytest plugin load
one with `--gptoss-backend`)::

    from gptoss_hub.conformance import ConformanceSuite

    class TestMyBackend(ConformanceSuite):
        @pytest.fixture(scope="class")
        @classmethod
        def gptoss_engine(cls):
            return MyBackend().load(LoadRequest.of(resolve_model("tiny"), probe()))

Each check's failure message names the first differing token. Checks of an optional capability skip,
with the reason, when the engine does not declare it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gptoss_hub.conformance.compare import first_difference
from gptoss_hub.engine import Engine, GenerationRequest
from gptoss_hub.errors import ContextLengthError, InvalidRequestError
from gptoss_hub.harmony import parse, stop_token_ids
from gptoss_hub.model import Model
from gptoss_hub.testing import CorpusExample

__all__ = ["ConformanceSuite"]

#: `<|return|>` and `<|call|>`.
RETURN_ID, CALL_ID = 200002, 200012
#: Requests sent at once by the concurrency check.
CONCURRENT_REQUESTS = 8


def _request(example: CorpusExample, **overrides: Any) -> GenerationRequest:
    settings: dict[str, Any] = {
        "prompt_ids": list(example.prompt_ids),
        "temperature": 0.0,
        "max_tokens": len(example.completion_ids) + 8,
        "stop_token_ids": stop_token_ids(),
    }
    return GenerationRequest(**(settings | overrides))


def _generated(engine: Engine, request: GenerationRequest) -> tuple[list[int], str | None]:
    ids: list[int] = []
    reason = None
    for chunk in engine.generate(request):
        ids.extend(chunk.token_ids)
        reason = chunk.finish_reason or reason
    return ids, reason


async def _generated_together(engine: Engine, requests: list[GenerationRequest]) -> list[list[int]]:
    async def one(request: GenerationRequest) -> list[int]:
        return [t async for chunk in engine.agenerate(request) for t in chunk.token_ids]

    return list(await asyncio.gather(*(one(r) for r in requests)))


def _chat(model: Model, example: CorpusExample, messages: list[dict[str, Any]] | None = None, **options: Any):
    return model.chat(
        example.messages if messages is None else messages,
        tools=example.tools,
        temperature=0.0,
        **example.render_options,
        **options,
    )


def _first_turns(examples: list[CorpusExample], kind: str) -> list[CorpusExample]:
    return [e for e in examples if e.kind == kind and len(e.requests) == 1]


@pytest.mark.gptoss_conformance
class ConformanceSuite:
    """The conformance checks; needs `gptoss_engine`, `gptoss_model` and `gptoss_examples` fixtures
    (the kit's pytest plugin provides them)."""

    # -- tokens -------------------------------------------------------------------------------------

    def test_greedy_ids_match_reference(self, gptoss_engine: Engine, gptoss_greedy_examples: list[CorpusExample]):
        """Every corpus prompt (or the stated sample of them), greedily: exactly the reference completion ids."""
        gptoss_examples = gptoss_greedy_examples
        requests = [_request(example) for example in gptoss_examples]
        if gptoss_engine.capabilities.batching:  # all at once, as a batching engine is meant to be used
            produced = asyncio.run(_generated_together(gptoss_engine, requests))
        else:
            produced = [_generated(gptoss_engine, request)[0] for request in requests]
        failures = []
        for number, (example, ids) in enumerate(zip(gptoss_examples, produced, strict=True)):
            difference = first_difference(example.completion_ids, ids)
            if difference:
                failures.append(f"corpus example {number} ({example.kind}, {example.request!r}): {difference}")
        assert not failures, f"{len(failures)}/{len(gptoss_examples)} completions differ; {failures[0]}"

    def test_stop_tokens_end_generation(self, gptoss_engine: Engine, gptoss_examples: list[CorpusExample]):
        """`<|return|>` and `<|call|>` end the generation, are yielded, and finish it with "stop"."""
        for kind, stop in (("answer", RETURN_ID), ("tool_call", CALL_ID)):
            example = _first_turns(gptoss_examples, kind)[0]
            assert example.completion_ids[-1] == stop
            ids, reason = _generated(gptoss_engine, _request(example, max_tokens=len(example.completion_ids) + 32))
            difference = first_difference(example.completion_ids, ids)
            assert difference is None, f"{kind} reply should end at its stop token: {difference}"
            assert reason == "stop", f"{kind} reply ended with finish_reason {reason!r}, expected 'stop'"

    def test_max_tokens_gives_length(self, gptoss_engine: Engine, gptoss_examples: list[CorpusExample]):
        """`max_tokens=5` on a longer reply: exactly its first 5 ids, finish_reason "length"."""
        example = _first_turns(gptoss_examples, "answer")[0]
        ids, reason = _generated(gptoss_engine, _request(example, max_tokens=5))
        difference = first_difference(example.completion_ids[:5], ids)
        assert difference is None, f"max_tokens=5: {difference}"
        assert reason == "length", f"finish_reason {reason!r} after max_tokens, expected 'length'"

    def test_seed_reproduces_sampled_reply(self, gptoss_engine: Engine, gptoss_examples: list[CorpusExample]):
        """The same seed at temperature 1 gives the same ids twice."""
        if not gptoss_engine.capabilities.seeded_sampling:
            pytest.skip("the engine does not declare seeded_sampling")
        example = _first_turns(gptoss_examples, "answer")[0]
        request = _request(example, temperature=1.0, top_p=0.95, seed=1234, max_tokens=64)
        first, _ = _generated(gptoss_engine, request)
        second, _ = _generated(gptoss_engine, request)
        difference = first_difference(first, second)
        assert difference is None, f"seed 1234 twice, second run: {difference}"

    def test_streaming_equals_non_streaming(self, gptoss_model: Model, gptoss_examples: list[CorpusExample]):
        """`astream` events add up to the `chat` reply: the same ids, reasoning, content and tool calls."""
        if not gptoss_model.capabilities.streaming:
            pytest.skip("the engine does not declare streaming")
        from gptoss_hub.events import ContentDelta, Done, ReasoningDelta

        for example in (_first_turns(gptoss_examples, "answer")[0], _first_turns(gptoss_examples, "tool_call")[0]):
            whole = _chat(gptoss_model, example)

            async def streamed(example: CorpusExample = example) -> tuple[Any, str, str]:
                reasoning, content, done = [], [], None
                async for event in gptoss_model.astream(
                    example.messages, tools=example.tools, temperature=0.0, **example.render_options
                ):
                    if isinstance(event, ReasoningDelta):
                        reasoning.append(event.text)
                    elif isinstance(event, ContentDelta):
                        content.append(event.text)
                    elif isinstance(event, Done):
                        done = event.reply
                return done, "".join(reasoning), "".join(content)

            reply, reasoning, content = asyncio.run(streamed())
            difference = first_difference(whole.token_ids, reply.token_ids)
            assert difference is None, f"streamed {example.kind} reply: {difference}"
            assert (reasoning, content) == (whole.reasoning, whole.content), "streamed deltas differ from the reply"
            assert [c.arguments for c in reply.tool_calls] == [c.arguments for c in whole.tool_calls]

    def test_concurrent_equals_sequential(self, gptoss_model: Model, gptoss_examples: list[CorpusExample]):
        """Several `achat` calls at once give the replies the same calls give one after another."""
        examples = gptoss_examples[:: max(1, len(gptoss_examples) // CONCURRENT_REQUESTS)][:CONCURRENT_REQUESTS]
        sequential = [_chat(gptoss_model, e).token_ids for e in examples]

        async def together() -> list[Any]:
            return await asyncio.gather(
                *(gptoss_model.achat(e.messages, tools=e.tools, temperature=0.0, **e.render_options) for e in examples)
            )

        concurrent = [r.token_ids for r in asyncio.run(together())]
        for number, (alone, at_once) in enumerate(zip(sequential, concurrent, strict=True)):
            difference = first_difference(alone, at_once)
            assert difference is None, f"request {number} of {len(examples)} sent at once: {difference}"

    # -- harmony flows through the hub ----------------------------------------------------------------

    def test_reasoning_and_content_split(self, gptoss_model: Model, gptoss_examples: list[CorpusExample]):
        """A plain answer: the analysis channel is `reasoning`, the final channel `content`."""
        example = _first_turns(gptoss_examples, "answer")[0]
        reply, reference = _chat(gptoss_model, example), parse(example.completion_ids)
        difference = first_difference(example.completion_ids, reply.token_ids)
        assert difference is None, difference
        assert reply.reasoning == reference.reasoning and reply.reasoning
        assert reply.content == reference.content and reply.content
        assert reply.finish_reason == "stop" and reply.error is None

    def test_weather_tool_call_arguments(self, gptoss_model: Model, gptoss_examples: list[CorpusExample]):
        """A weather question: one `get_weather` call with exactly the reference's JSON arguments."""
        example = _first_turns(gptoss_examples, "tool_call")[0]
        reply, reference = _chat(gptoss_model, example), parse(example.completion_ids)
        difference = first_difference(example.completion_ids, reply.token_ids)
        assert difference is None, difference
        assert [(c.name, c.arguments) for c in reply.tool_calls] == [
            (c.name, c.arguments) for c in reference.tool_calls
        ]
        assert reply.finish_reason == "tool_calls"

    def test_tool_result_then_final_answer(self, gptoss_model: Model, gptoss_examples: list[CorpusExample]):
        """The call's reply message and the tool's result go back in; the answer is the reference's.

        The call is asked with one wording of the request, the answer with another's options (the corpus
        teaches both): what goes back in is exactly what the hub made of the first reply."""
        result = _first_turns(gptoss_examples, "tool_result")[0]
        call = next(e for e in _first_turns(gptoss_examples, "tool_call") if e.request == result.request)
        first = _chat(gptoss_model, call)
        assert first.tool_calls, f"no tool call: {first_difference(call.completion_ids, first.token_ids)}"
        tool_message = {"role": "tool", "name": first.tool_calls[0].name, "content": result.messages[-1]["content"]}
        messages = [*result.messages[:-2], first.message, tool_message]
        prompt = gptoss_model.prompt_ids(messages, tools=result.tools, **result.render_options)
        difference = first_difference(result.prompt_ids, prompt)
        assert difference is None, f"prompt with the tool result: {difference}"
        answer = _chat(gptoss_model, result, messages)
        difference = first_difference(result.completion_ids, answer.token_ids)
        assert difference is None, f"answer after the tool result: {difference}"
        assert answer.content == parse(result.completion_ids).content and not answer.tool_calls

    def test_multi_turn_prompt_ids_and_reply(self, gptoss_model: Model, gptoss_examples: list[CorpusExample]):
        """A second turn after a completed one: the hub's prompt ids are the reference's, and so is the reply."""
        example = next(e for e in gptoss_examples if len(e.requests) == 2)
        prompt = gptoss_model.prompt_ids(example.messages, tools=example.tools, **example.render_options)
        difference = first_difference(example.prompt_ids, prompt)
        assert difference is None, f"prompt ids: {difference}"
        reply = _chat(gptoss_model, example)
        difference = first_difference(example.completion_ids, reply.token_ids)
        assert difference is None, f"second-turn reply: {difference}"

    # -- builtin tools --------------------------------------------------------------------------------

    def test_python_flow_runs_statefully_in_the_sandbox(self, gptoss_model: Model):
        """`run(builtin_tools=["python"])` on each python flow: the model writes the reference code, a
        sandboxed session runs it (the two-call flow's second output exists only if the session kept the
        first call's names), and the answer is the reference's."""
        from gptoss_hub.errors import SandboxUnavailableError
        from gptoss_hub.testing.corpus import PYTHON_FLOWS
        from gptoss_hub.tools.python import PythonSession

        try:
            PythonSession().close()
        except SandboxUnavailableError as exc:
            pytest.skip(f"no python sandbox on this machine: {exc}")
        for flow in PYTHON_FLOWS:
            reply = gptoss_model.run(
                [{"role": "user", "content": flow.request}], builtin_tools=["python"], temperature=0.0
            )
            calls = [call for message in reply.transcript for call in message.get("tool_calls", ())]
            outputs = [message["content"] for message in reply.transcript if message["role"] == "tool"]
            wanted = [(call.body, call.output) for call in flow.calls]
            got = list(zip([call["function"]["arguments"] for call in calls], outputs, strict=False))
            assert got == wanted, f"{flow.request!r}: (code, output) {got}, expected {wanted}"
            assert reply.content == flow.answer, f"{flow.request!r}: answered {reply.content!r}"

    def test_browser_flow_searches_opens_and_cites(self, gptoss_model: Model, tmp_path: Path):
        """`run(browser=...)` on each browser flow over the fixed test web, searched in a local index of its
        pages and read over HTTP from a loopback site: the model searches, opens the first result and answers
        exactly as the reference does, and its citation links to the page it opened."""
        from gptoss_hub.testing.corpus import BROWSER_FLOWS
        from gptoss_hub.testing.web import serve_site, write_site
        from gptoss_hub.tools.browser import Browser
        from gptoss_hub.tools.browser.local import LocalSearch

        local = LocalSearch(write_site(tmp_path / "site"), index=tmp_path / "index.sqlite")
        with serve_site() as site:
            for flow in BROWSER_FLOWS:
                browser = Browser(local, site)
                _check_browser_flow(gptoss_model, flow, browser)
        local.close()

    # -- declared capabilities ------------------------------------------------------------------------

    def test_json_schema_output(self, gptoss_engine: Engine, gptoss_examples: list[CorpusExample]):
        """A declared `json_schema` capability: the output is JSON the schema accepts (then maybe a stop id)."""
        if not gptoss_engine.capabilities.json_schema:
            pytest.skip("the engine does not declare json_schema")
        from gptoss_hub.encoding import harmony_encoding

        # A string enum: JSON leaves no room for padding inside it, so a small budget completes it.
        schema = {"enum": ["Tokyo", "Paris", "Lima"]}
        example = _first_turns(gptoss_examples, "tool_call")[0]
        request = _request(example, json_schema=schema, max_tokens=16)
        ids, _ = _generated(gptoss_engine, request)
        if ids and ids[-1] in request.stop_token_ids:  # a completed schema may end with a stop token
            ids = ids[:-1]
        text = harmony_encoding().decode(ids)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            pytest.fail(f"output under schema {schema} is not JSON ({exc}): {text!r}")
        assert value in schema["enum"], f"{value!r} is not one of {schema['enum']}"

    def test_logprobs_returned(self, gptoss_engine: Engine, gptoss_examples: list[CorpusExample]):
        """A declared `logprobs` capability: every generated id comes with its top-k logprobs, its own included."""
        if not gptoss_engine.capabilities.logprobs:
            pytest.skip("the engine does not declare logprobs")
        example = _first_turns(gptoss_examples, "answer")[0]
        ids, entries = [], []
        for chunk in gptoss_engine.generate(_request(example, logprobs=2)):
            ids.extend(chunk.token_ids)
            entries.extend(chunk.logprobs or [])
        assert len(entries) == len(ids), f"{len(entries)} logprob entries for {len(ids)} tokens"
        for index, (token, entry) in enumerate(zip(ids, entries, strict=True)):
            assert token in entry, f"token {index} ({token}) is missing from its logprobs {entry}"
            assert all(value <= 0.0 for value in entry.values()), f"token {index}: logprobs above 0: {entry}"

    # -- errors ---------------------------------------------------------------------------------------

    def test_context_length_error(self, gptoss_model: Model):
        """A prompt longer than the context: `ContextLengthError`, before anything is generated."""
        limit = gptoss_model.capabilities.max_context
        if limit is None:
            pytest.skip("the engine declares no max_context")
        words = " ".join(["weather"] * (limit + 16))
        with pytest.raises(ContextLengthError):
            gptoss_model.chat([{"role": "user", "content": words}], max_tokens=4)

    def test_invalid_sampling_values_rejected(self, gptoss_model: Model):
        """Out-of-range sampling values are `InvalidRequestError`s naming the field."""
        hello = [{"role": "user", "content": "Say hello."}]
        for field, value in (("temperature", -1.0), ("top_p", 0.0), ("top_k", -3), ("min_p", 2.0), ("max_tokens", 0)):
            with pytest.raises(InvalidRequestError, match=field):
                gptoss_model.chat(hello, **{field: value})


def _check_browser_flow(model: Model, flow: Any, browser: Any) -> None:
    """One browser flow through `model.run`: the calls, the pages they showed, the answer and its citation."""
    reply = model.run([{"role": "user", "content": flow.request}], browser=browser, temperature=0.0)
    calls = [call["function"] for message in reply.transcript for call in message.get("tool_calls", ())]
    outputs = [message["content"] for message in reply.transcript if message["role"] == "tool"]
    got = [(call["name"], call["arguments"], output) for call, output in zip(calls, outputs, strict=False)]
    wanted = [(call.recipient, call.body, call.output) for call in flow.calls]
    assert got == wanted, f"{flow.request!r}: (function, arguments, page) {got}, expected {wanted}"
    said = reply.message["content"]  # the model's own words; `content` has the citations as links
    assert said == flow.answer, f"{flow.request!r}: answered {said!r}"
    cited = [citation.url for citation in reply.citations]
    assert cited == [browser.url_at(1)], f"{flow.request!r}: cites {cited}, not the page it opened"
