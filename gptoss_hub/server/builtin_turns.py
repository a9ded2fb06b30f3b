"""The turns of one response whose builtin tool calls the server runs (python, the browser).

`start_turns_with_builtins` starts the first turn (a request the model refuses raises there) and returns
the model's events; whenever a turn ends in calls the server runs, it runs them
(python in the conversation's sandboxed session, browser calls in its page stack) and the model goes on with
their results, until a turn ends without one (or `MAX_ROUNDS` is reached). With a browser, the answer's
`【cursor†Lx-Ly】` citations become links as they stream, each followed by a `Cited` event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gptoss_hub.events import ContentDelta, Done, StreamEvent
from gptoss_hub.reply import Citation, Reply, ToolCall, Usage
from gptoss_hub.server.python_calls import PythonContainers, PythonRan, PythonRunning
from gptoss_hub.server.web_search import BrowserRan, BrowserRunning, Cited, action_after, action_before
from gptoss_hub.tools.browser import Browser
from gptoss_hub.tools.browser.citations import CitationStream, cite

__all__ = ["MAX_ROUNDS", "ServerEvent", "ServerTools", "TurnEnded", "start_turns_with_builtins"]

#: Model turns one response may take while the model keeps calling builtin tools.
MAX_ROUNDS = 8

#: Threads for the builtin tools' calls, apart from the event loop's default executor, which renders every
#: request's prompt: a few cells sleeping for their two minutes (or pages slow to load) must not leave the
#: other conversations' turns waiting for a thread. Created as needed, up to this bound.
_TOOL_THREADS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="gptoss-hub-tool")


async def _on_tool_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(_TOOL_THREADS, function, *args)


@dataclass(frozen=True)
class TurnEnded:
    """A turn ended in builtin calls, which run next; the response goes on after them."""

    reply: Reply


ServerEvent = StreamEvent | TurnEnded | PythonRunning | PythonRan | BrowserRunning | BrowserRan | Cited


@dataclass
class ServerTools:
    """The builtin tools the server runs for one request: python sessions from `containers` (continuing
    `container_id`'s), and the page stack `browser`."""

    containers: PythonContainers | None = None
    container_id: str | None = None
    browser: Browser | None = None

    def runs(self, call: ToolCall) -> bool:
        """Whether the server runs `call` (else it goes back to the client)."""
        if call.kind == "python":
            return self.containers is not None
        return call.kind == "browser" and self.browser is not None


async def _cited(events: AsyncIterator[StreamEvent], browser: Browser | None) -> AsyncIterator[ServerEvent]:
    """`events` with the content's citation markers turned into links (a marker is never split), each
    followed by `Cited`; without a browser, `events` as they are."""
    if browser is None:
        async for event in events:
            yield event
        return
    citing = CitationStream(browser.source_at)

    def shown(text: str, citations: list[Citation]) -> list[ServerEvent]:
        delta: list[ServerEvent] = [ContentDelta(text)] if text else []
        return [*delta, Cited(citations)] if citations else delta

    async for event in events:
        if isinstance(event, ContentDelta):
            for out in shown(*citing.feed(event.text)):
                yield out
            continue
        for out in shown(*citing.finish()):  # the content is over: what was held back is shown as written
            yield out
        yield event


async def start_turns_with_builtins(
    model: Any, messages: list[dict[str, Any]], options: dict[str, Any], tools: ServerTools
) -> AsyncIterator[ServerEvent]:
    """The model's events over as many turns as its builtin calls take, returned once the first turn has
    started (see `Model.astart`); `Done` last, whose reply is the last turn's with the usage of every turn
    added up (tool outputs count as the prompt tokens they become), `transcript` holding every message the
    response added, and the answer's citations as links."""
    first = await model.astart(messages, **options)
    return _turns(first, model, messages, options, tools)


async def _turns(
    first: AsyncIterator[StreamEvent],
    model: Any,
    messages: list[dict[str, Any]],
    options: dict[str, Any],
    tools: ServerTools,
) -> AsyncIterator[ServerEvent]:
    conversation = list(messages)
    added: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = 0
    container_id = tools.container_id
    turn: AsyncIterator[StreamEvent] | None = first
    for _ in range(MAX_ROUNDS):
        reply: Reply | None = None
        events = turn if turn is not None else model.astream(conversation, **options)
        turn = None
        async for event in _cited(events, tools.browser):
            if isinstance(event, Done):
                reply = event.reply
            else:
                yield event
        assert reply is not None, "a model's events end with Done"
        prompt_tokens += reply.usage.prompt_tokens
        completion_tokens += reply.usage.completion_tokens
        added.append(reply.message)  # the model's own words, markers and all: what it reads next turn
        if not reply.tool_calls or not all(tools.runs(call) for call in reply.tool_calls):
            break  # function calls go back to the client as they are
        yield TurnEnded(reply)
        conversation.append(reply.message)
        for call in reply.tool_calls:
            if call.kind == "python":
                assert tools.containers is not None  # tools.runs(call)
                container_id, session = tools.containers.get(container_id)
                yield PythonRunning(call, container_id)
                result = await _on_tool_thread(session.run, call.code or "")
                yield PythonRan(call, result, container_id)
                text = result.text
            else:
                browser = tools.browser
                assert browser is not None  # tools.runs(call)
                before, pages = action_before(browser, call), len(browser.stack)
                yield BrowserRunning(call, before)
                text = await _on_tool_thread(browser.call, call.name, call.raw_arguments)
                yield BrowserRan(call, action_after(browser, call, before, pages), text)
            tool_message = call.result_message(text)
            conversation.append(tool_message)
            added.append(tool_message)
    assert reply is not None  # MAX_ROUNDS is at least 1
    usage = Usage(
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens
    )
    update: dict[str, Any] = {"usage": usage, "transcript": added}
    if tools.browser is not None:
        content, citations = cite(reply.content, tools.browser.source_at)
        if citations:
            update |= {"content": content, "citations": citations, "uncited_content": reply.content}
    yield Done(reply.model_copy(update=update))
