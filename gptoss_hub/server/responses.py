"""`POST /v1/responses`: OpenAI's Responses API over a `Model`.

Input items become Chat Completions messages for the hub (which renders harmony); the reply becomes
output items: a `reasoning` item (the analysis channel), a `message` item (the final channel) and a
`function_call` item per tool call; the builtin tools the server runs show as `code_interpreter_call` and
`web_search_call` items, and the browser's citations as `url_citation` annotations of the answer.
`previous_response_id` continues a stored conversation: responses are kept in a bounded in-memory store
unless the request says `store: false`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool

from gptoss_hub.builtin_tools import BROWSER_FUNCTIONS, PYTHON
from gptoss_hub.events import ContentDelta, Done, ReasoningDelta, ToolCallArgumentsDelta, ToolCallStarted
from gptoss_hub.reply import Citation, Reply
from gptoss_hub.server.builtin_turns import ServerEvent
from gptoss_hub.server.errors import APIError
from gptoss_hub.server.options import checked_choices, checked_stop, checked_tool_choice
from gptoss_hub.server.python_calls import PythonRan, PythonRunning
from gptoss_hub.server.sealed_reasoning import ReasoningSeal, UnsealError
from gptoss_hub.server.web_search import BrowserRan, BrowserRunning, Cited, WebSearch, web_search_request

__all__ = [
    "ResponseStore",
    "ResponseStream",
    "ResponsesRequest",
    "input_messages",
    "model_options",
    "response_object",
    "web_search_of",
]

#: Responses kept for `previous_response_id`; the oldest go first.
DEFAULT_STORE_SIZE = 1024
#: Bytes of stored conversations (their JSON) kept at most; the oldest go first, and one larger than this
#: alone is not kept.
DEFAULT_STORE_BYTES = 256 * 1024 * 1024
#: The Responses tools that offer the browser (the first is the current name, the second the older one).
WEB_SEARCH_TOOLS = ("web_search", "web_search_preview")
#: `include` values honoured: sealed reasoning is added on request; the others name what every response of
#: this server holds anyway (a web search's sources, a python call's outputs).
SEALED_REASONING = "reasoning.encrypted_content"
INCLUDES = (SEALED_REASONING, "web_search_call.action.sources", "code_interpreter_call.outputs")


class Reasoning(BaseModel):
    effort: Literal["low", "medium", "high"] | None = None


class ResponsesRequest(BaseModel):
    """The Responses fields this server reads; others a client may send are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning: Reasoning | None = None
    text: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    seed: int | None = None
    stream: StrictBool = False
    store: StrictBool = True
    #: Not in the Responses API: `n` is read only to refuse it rather than ignore it; `stop` strings are
    #: honoured as Chat Completions honours them.
    n: int | None = None
    stop: str | list[str] | None = None
    previous_response_id: str | None = None
    include: list[str] | None = None


class ResponseStore:
    """Conversations of earlier responses, by response id, each with the ids of the sessions its builtin
    tools ran in (`{"python": container id, "browser": page stack id}`, those it used): at most `size` of them
    and `max_bytes` of their JSON, the oldest going first."""

    def __init__(self, size: int = DEFAULT_STORE_SIZE, max_bytes: int = DEFAULT_STORE_BYTES):
        self.size, self.max_bytes = size, max_bytes
        self._conversations: OrderedDict[str, tuple[list[dict[str, Any]], int]] = OrderedDict()
        self._sessions: dict[str, dict[str, str]] = {}
        #: Bytes held now (the JSON size of every stored conversation).
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._conversations)

    def save(self, response_id: str, messages: list[dict[str, Any]], sessions: dict[str, str] | None = None) -> None:
        """Keep `messages` under `response_id`; a conversation larger than `max_bytes` alone is not kept (a
        request continuing it gets a 404 that says to send the whole conversation)."""
        size = len(json.dumps(messages, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if size > self.max_bytes:
            return
        self._conversations[response_id] = (messages, size)
        self.bytes += size
        if sessions:
            self._sessions[response_id] = dict(sessions)
        while len(self._conversations) > self.size or self.bytes > self.max_bytes:
            oldest, (_, freed) = self._conversations.popitem(last=False)
            self.bytes -= freed
            self._sessions.pop(oldest, None)

    def sessions(self, response_id: str | None) -> dict[str, str]:
        """The session ids of a stored response (`"python"`, `"browser"`), so the conversation's state lives on
        along its chain; empty when it used none, or is not stored."""
        return dict(self._sessions.get(response_id, {})) if response_id is not None else {}

    def conversation(self, response_id: str) -> list[dict[str, Any]]:
        if response_id not in self._conversations:
            raise APIError(
                404,
                f"No stored response {response_id!r}: it was made with store=false, expired from the store (it "
                "keeps the latest responses up to a count and a size), or never existed. Send the whole "
                "conversation as `input` instead.",
                "invalid_request_error",
                "previous_response_not_found",
                "previous_response_id",
            )
        return list(self._conversations[response_id][0])


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text"):
                parts.append(str(part.get("text", "")))
            else:
                raise APIError(
                    400, f"{where}: only text content parts are supported, got {part!r}.", "invalid_request_error"
                )
        return "".join(parts)
    raise APIError(400, f"{where}: content must be a string or a list of text parts.", "invalid_request_error")


def sealing(request: ResponsesRequest) -> bool:
    """Whether the request asks for its reasoning sealed (`include: ["reasoning.encrypted_content"]`); a 400
    naming `include` for a value this server cannot honour."""
    for value in request.include or ():
        if value not in INCLUDES:
            raise APIError(
                400,
                f"include: {value!r} is not supported; this server honours {', '.join(INCLUDES)}.",
                "invalid_request_error",
                None,
                "include",
            )
    return SEALED_REASONING in (request.include or ())


def _reasoning_text(item: dict[str, Any], seal: ReasoningSeal, where: str) -> str:
    """The text of an input `reasoning` item: unsealed from `encrypted_content`, else its content or summary."""
    sealed = item.get("encrypted_content")
    if sealed is not None:
        try:
            if not isinstance(sealed, str):
                raise UnsealError("it is not a string")
            return seal.unseal(sealed)
        except UnsealError as exc:
            raise APIError(
                400,
                f"{where}.encrypted_content cannot be unsealed: {exc}. Send the reasoning as this server "
                "returned it, or leave the item out.",
                "invalid_request_error",
                "invalid_encrypted_content",
                f"{where}.encrypted_content",
            ) from exc
    parts = item.get("content") or item.get("summary") or []
    return "".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))


def input_messages(request: ResponsesRequest, seal: ReasoningSeal) -> list[dict[str, Any]]:
    """The request's `input` as Chat Completions messages (what the hub renders); sealed reasoning is opened
    with `seal`."""
    if isinstance(request.input, str):
        return [{"role": "user", "content": request.input}]
    messages: list[dict[str, Any]] = []
    pending_reasoning: str | None = None
    for index, item in enumerate(request.input):
        where = f"input[{index}]"
        kind = item.get("type", "message")
        if kind == "message" or ("role" in item and kind not in ("function_call", "function_call_output")):
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise APIError(400, f"{where}: unknown role {role!r}.", "invalid_request_error", None, "input")
            message = {"role": role, "content": _text(item.get("content", ""), where)}
            if role == "assistant" and pending_reasoning:
                message["reasoning_content"], pending_reasoning = pending_reasoning, None
            messages.append(message)
        elif kind == "reasoning":
            pending_reasoning = _reasoning_text(item, seal, where)
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "type": "function"}
            call["function"] = {"name": item.get("name"), "arguments": item.get("arguments", "{}")}
            previous = messages[-1] if messages else None
            if previous is not None and previous["role"] == "assistant" and "tool_calls" in previous:
                previous["tool_calls"].append(call)
            else:
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
                if pending_reasoning:
                    message["reasoning_content"], pending_reasoning = pending_reasoning, None
                messages.append(message)
        elif kind == "function_call_output":
            output = item.get("output", "")
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": _text(output, where)})
        else:
            raise APIError(400, f"{where}: input items of type {kind!r} are not supported.", "invalid_request_error")
    return messages


def model_options(request: ResponsesRequest) -> dict[str, Any]:
    """The `Model.chat` keyword arguments a Responses request stands for."""
    checked_choices(request.n, most=1)  # the Responses API has one output
    tools = None
    builtins: list[str] = []  # run by this server
    if request.tools:
        tools = []
        for tool in request.tools:
            kind = tool.get("type")
            if kind == "code_interpreter" or kind in WEB_SEARCH_TOOLS:
                builtin = "python" if kind == "code_interpreter" else "browser"
                if builtin not in builtins:
                    builtins.append(builtin)
                continue
            if kind != "function":
                raise APIError(
                    400,
                    f"Only function, code_interpreter and web_search tools are supported, got {kind!r}.",
                    "invalid_request_error",
                    None,
                    "tools",
                )
            tools.append({key: value for key, value in tool.items() if key != "strict"})
    options: dict[str, Any] = {"tools": tools, "tool_choice": checked_tool_choice(request.tool_choice, tools)}
    if builtins:
        options["builtin_tools"] = builtins
    if request.instructions:
        options["instructions"] = request.instructions
    stop = checked_stop(request.stop)
    if stop:
        options["stop"] = stop
    if request.reasoning is not None and request.reasoning.effort:
        options["reasoning_effort"] = request.reasoning.effort
    text_format = (request.text or {}).get("format")
    if text_format is not None and not isinstance(text_format, dict):
        raise APIError(
            400,
            f"text.format must be an object such as {{'type': 'json_schema', 'schema': {{...}}}}; got {text_format!r}.",
            "invalid_request_error",
            None,
            "text.format",
        )
    if text_format and text_format.get("type") == "json_schema":
        options["response_format"] = {"type": "json_schema", "json_schema": {"schema": text_format.get("schema")}}
    elif text_format and text_format.get("type") == "json_object":
        options["response_format"] = {"type": "json_object"}
    for name, value in (
        ("temperature", request.temperature),
        ("top_p", request.top_p),
        ("seed", request.seed),
        ("max_tokens", request.max_output_tokens),
    ):
        if value is not None:
            options[name] = value
    return options


def web_search_of(request: ResponsesRequest) -> WebSearch | None:
    """The request's web search settings, when it offers the browser (a `web_search` tool)."""
    for index, tool in enumerate(request.tools or ()):
        if tool.get("type") in WEB_SEARCH_TOOLS:
            return web_search_request(tool, f"tools[{index}]")
    return None


def _url_citation(citation: Citation) -> dict[str, Any]:
    """A citation as a Responses `url_citation` annotation."""
    return citation.model_dump()


def _new_reasoning_item() -> dict[str, Any]:
    return {"type": "reasoning", "id": f"rs_{uuid.uuid4().hex}", "summary": [], "content": []}


def _new_message_item() -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"msg_{uuid.uuid4().hex}",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }


def _function_call_item(call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    """A `function_call` output item (the Responses API's shape of a tool call)."""
    return {
        "type": "function_call",
        "id": f"fc_{uuid.uuid4().hex}",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _code_interpreter_item() -> dict[str, Any]:
    """A `code_interpreter_call` output item (a python call the server runs), before its code is complete."""
    return {
        "type": "code_interpreter_call",
        "id": f"ci_{uuid.uuid4().hex}",
        "status": "in_progress",
        "code": "",
        "container_id": None,
        "outputs": None,
    }


def _web_search_item(function: str) -> dict[str, Any]:
    """A `web_search_call` output item (a browser call the server runs), before it ran: its action as far as
    the function tells (the arguments complete it once the call runs)."""
    action: dict[str, Any] = {
        "browser.search": {"type": "search", "query": ""},
        "browser.find": {"type": "find_in_page", "pattern": "", "url": ""},
    }.get(function, {"type": "open_page", "url": None})
    return {"type": "web_search_call", "id": f"ws_{uuid.uuid4().hex}", "status": "in_progress", "action": action}


def _reasoning_item(text: str, seal: ReasoningSeal | None) -> dict[str, Any]:
    """A finished `reasoning` item holding `text`, sealed into `encrypted_content` too when `seal` is given."""
    item = _new_reasoning_item() | {"content": [{"type": "reasoning_text", "text": text}]}
    if seal is not None:
        item["encrypted_content"] = seal.seal(text)
    return item


def _output_items(reply: Reply, seal: ReasoningSeal | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.reasoning:
        items.append(_reasoning_item(reply.reasoning, seal))
    if reply.content:
        annotations = [_url_citation(citation) for citation in reply.citations]
        part = {"type": "output_text", "text": reply.content, "annotations": annotations}
        items.append(_new_message_item() | {"status": "completed", "content": [part]})
    for call in reply.tool_calls:
        items.append(_function_call_item(call.id, call.name, call.raw_arguments, "completed"))
    return items


def response_object(
    request: ResponsesRequest,
    reply: Reply | None,
    model_name: str,
    response_id: str,
    created: int,
    seal: ReasoningSeal | None = None,
) -> dict[str, Any]:
    """A `response` object; `reply=None` is the in-progress response streaming starts with. With `seal`, the
    reasoning is sealed into `encrypted_content` too."""
    incomplete = reply is not None and reply.finish_reason == "length"
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": ("incomplete" if incomplete else "completed") if reply is not None else "in_progress",
        "model": model_name,
        "output": _output_items(reply, seal) if reply is not None else [],
        "instructions": request.instructions,
        "tools": request.tools or [],
        "tool_choice": request.tool_choice or "auto",
        "parallel_tool_calls": False,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": request.reasoning.effort if request.reasoning else None, "summary": None},
        "store": request.store,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_output_tokens,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "error": None,
        "usage": None,
        "metadata": {},
    }
    if reply is not None:
        body["usage"] = {
            "input_tokens": reply.usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": reply.usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": reply.usage.total_tokens,
        }
        if reply.error is not None:
            # The output broke harmony: what was parsed is in `output`, the damage is said here.
            body["error"] = {"code": reply.error.code, "message": reply.error.message}
    return body


class ResponseStream:
    """One response being made: `complete(reply)` for a plain request, `events(...)` for a streamed one.

    A stream is a sequence of output items, one open at a time: `open()` closes the previous item and adds the
    next, `delta()` streams text into the open item, `close()` finishes it with its whole text. Each returns
    the server-sent events it makes, numbered in order.
    """

    def __init__(self, request: ResponsesRequest, model_name: str, seal: ReasoningSeal | None = None):
        self.request, self.model_name = request, model_name
        #: Seals each reasoning item's text into `encrypted_content`, when the request asks for it.
        self.seal = seal
        self.id, self.created = f"resp_{uuid.uuid4().hex}", int(time.time())
        self.sequence = 0
        #: Every output item streamed, completed in place as it closes.
        self.items: list[dict[str, Any]] = []
        self.open_item: dict[str, Any] | None = None
        self.text: list[str] = []
        #: The python container the response's calls ran in (the last one, when a call restarted it).
        self.container_id: str | None = None
        #: The final `response` object, once `events()` has made it.
        self.final: dict[str, Any] | None = None
        #: The python call between its code's end and its result.
        self.python_item: dict[str, Any] | None = None
        #: The browser call between its arguments' end and its result.
        self.browser_item: dict[str, Any] | None = None
        #: The `url_citation` annotations of the open message item.
        self.annotations: list[dict[str, Any]] = []
        #: Whether the server runs the model's browser calls (else they go back as function calls).
        self.runs_browser = web_search_of(request) is not None

    def complete(self, reply: Reply) -> dict[str, Any]:
        """The whole `response` object for `reply`."""
        return response_object(self.request, reply, self.model_name, self.id, self.created, self.seal)

    def event(self, kind: str, **fields: Any) -> str:
        """One server-sent event, with the next sequence number."""
        body = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(body)}\n\n"

    @property
    def index(self) -> int:
        """The output index of the open item."""
        return len(self.items) - 1

    def open(self, item: dict[str, Any]) -> list[str]:
        """Close the open item, if any, and open `item`."""
        opening = self.close()
        self.items.append(item)
        self.open_item, self.text, self.annotations = item, [], []
        opening.append(self.event("response.output_item.added", output_index=self.index, item=item))
        if item["type"] == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            opening.append(
                self.event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=self.index,
                    content_index=0,
                    part=part,
                )
            )
        return opening

    def delta(self, text: str) -> str:
        """Stream `text` into the open item (reasoning, message text or a call's arguments)."""
        item = self.open_item
        assert item is not None, "a delta streams into an open item"
        self.text.append(text)
        if item["type"] == "function_call":
            return self.event(
                "response.function_call_arguments.delta", item_id=item["id"], output_index=self.index, delta=text
            )
        if item["type"] == "code_interpreter_call":
            return self.event(
                "response.code_interpreter_call_code.delta", item_id=item["id"], output_index=self.index, delta=text
            )
        kind = "response.reasoning_text.delta" if item["type"] == "reasoning" else "response.output_text.delta"
        return self.event(kind, item_id=item["id"], output_index=self.index, content_index=0, delta=text)

    def close(self) -> list[str]:
        """Finish the open item with its whole text; nothing when no item is open."""
        item, self.open_item = self.open_item, None
        if item is None:
            return []
        joined, where = "".join(self.text), {"item_id": item["id"], "output_index": self.index}
        closing = []
        if item["type"] == "reasoning":
            closing.append(self.event("response.reasoning_text.done", **where, content_index=0, text=joined))
            item.update({key: value for key, value in _reasoning_item(joined, self.seal).items() if key != "id"})
        elif item["type"] == "message":
            part = {"type": "output_text", "text": joined, "annotations": self.annotations}
            closing.append(self.event("response.output_text.done", **where, content_index=0, text=joined))
            closing.append(self.event("response.content_part.done", **where, content_index=0, part=part))
            item["content"], item["status"] = [part], "completed"
        elif item["type"] == "code_interpreter_call":
            # A python call closed before it ran (the response ended there): its code, not run.
            closing.append(self.event("response.code_interpreter_call_code.done", **where, code=joined))
            item["code"], item["status"] = joined, "incomplete"
        elif item["type"] == "web_search_call":
            item["status"] = "incomplete"  # a browser call closed before it ran (the response ended there)
        else:
            closing.append(self.event("response.function_call_arguments.done", **where, arguments=joined))
            item["arguments"], item["status"] = joined, "completed"
        closing.append(self.event("response.output_item.done", output_index=self.index, item=item))
        return closing

    async def events(self, events: AsyncIterator[ServerEvent], on_reply: Callable[[Reply], None]) -> AsyncIterator[str]:
        """The Responses streaming events for the model's `events`, `response.created` … `response.completed`;
        `on_reply` gets the reply before the last event."""
        started = response_object(self.request, None, self.model_name, self.id, self.created)
        yield self.event("response.created", response=started)
        yield self.event("response.in_progress", response=started)
        reply: Reply | None = None
        async for stream_event in events:
            if isinstance(stream_event, (ReasoningDelta, ContentDelta)):
                kind = "reasoning" if isinstance(stream_event, ReasoningDelta) else "message"
                if self.open_item is None or self.open_item["type"] != kind:
                    for chunk in self.open(_new_reasoning_item() if kind == "reasoning" else _new_message_item()):
                        yield chunk
                yield self.delta(stream_event.text)
            elif isinstance(stream_event, ToolCallStarted) and stream_event.name == PYTHON:
                for chunk in self.open(_code_interpreter_item()):
                    yield chunk
                yield self.event(
                    "response.code_interpreter_call.in_progress", item_id=self.items[-1]["id"], output_index=self.index
                )
            elif (
                isinstance(stream_event, ToolCallStarted)
                and self.runs_browser
                and stream_event.name in BROWSER_FUNCTIONS
            ):
                for chunk in self.open(_web_search_item(stream_event.name)):
                    yield chunk
                yield self.event(
                    "response.web_search_call.in_progress", item_id=self.items[-1]["id"], output_index=self.index
                )
            elif isinstance(stream_event, ToolCallStarted):
                for chunk in self.open(_function_call_item(stream_event.id, stream_event.name, "", "in_progress")):
                    yield chunk
            elif isinstance(stream_event, ToolCallArgumentsDelta):
                if self.open_item is not None and self.open_item["type"] == "web_search_call":
                    continue  # its arguments show as the action once it runs
                yield self.delta(stream_event.text)
            elif isinstance(stream_event, Cited):
                for chunk in self.cited(stream_event):
                    yield chunk
            elif isinstance(stream_event, BrowserRunning):
                for chunk in self.browser_running(stream_event.action):
                    yield chunk
            elif isinstance(stream_event, BrowserRan):
                for chunk in self.browser_ran(stream_event.action):
                    yield chunk
            elif isinstance(stream_event, PythonRunning):
                for chunk in self.python_running(stream_event.call.code or ""):
                    yield chunk
            elif isinstance(stream_event, PythonRan):
                for chunk in self.python_ran(stream_event.result.text, stream_event.container_id):
                    yield chunk
            elif isinstance(stream_event, Done):
                reply = stream_event.reply
        for chunk in self.close():
            yield chunk
        assert reply is not None, "a model's events end with Done"
        on_reply(reply)
        final = self.complete(reply)
        final["output"] = self.items  # the items as streamed, ids included
        self.final = final
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        yield self.event(kind, response=final)

    def python_running(self, code: str) -> list[str]:
        """The open python call's code is complete and about to run."""
        item, self.open_item = self.open_item, None
        if item is None or item["type"] != "code_interpreter_call":
            return []
        self.python_item = item
        where = {"item_id": item["id"], "output_index": self.items.index(item)}
        item["code"], item["status"] = code, "interpreting"
        return [
            self.event("response.code_interpreter_call_code.done", **where, code=code),
            self.event("response.code_interpreter_call.interpreting", **where),
        ]

    def python_ran(self, output: str, container_id: str) -> list[str]:
        """The python call that was running has finished with `output`."""
        item = self.python_item
        if item is None:
            return []
        self.python_item = None
        self.container_id = container_id
        where = {"item_id": item["id"], "output_index": self.items.index(item)}
        item.update(status="completed", container_id=container_id, outputs=[{"type": "logs", "logs": output}])
        return [
            self.event("response.code_interpreter_call.completed", **where),
            self.event("response.output_item.done", output_index=where["output_index"], item=item),
        ]

    def cited(self, cited: Cited) -> list[str]:
        """The open message's text just streamed holds `cited.citations`: an annotation event for each."""
        item = self.open_item
        if item is None or item["type"] != "message":
            return []
        events = []
        for citation in cited.citations:
            annotation = _url_citation(citation)
            events.append(
                self.event(
                    "response.output_text.annotation.added",
                    item_id=item["id"],
                    output_index=self.index,
                    content_index=0,
                    annotation_index=len(self.annotations),
                    annotation=annotation,
                )
            )
            self.annotations.append(annotation)
        return events

    def browser_running(self, action: dict[str, Any]) -> list[str]:
        """The open browser call's arguments are complete (its `action`) and it is about to run."""
        item, self.open_item = self.open_item, None
        if item is None or item["type"] != "web_search_call":
            return []
        self.browser_item = item
        item["action"], item["status"] = action, "searching"
        where = {"item_id": item["id"], "output_index": self.items.index(item)}
        return [self.event("response.web_search_call.searching", **where)]

    def browser_ran(self, action: dict[str, Any]) -> list[str]:
        """The browser call that was running has finished; `action` says what it found or opened."""
        item, self.browser_item = self.browser_item, None
        if item is None:
            return []
        item["action"], item["status"] = action, "completed"
        where = {"item_id": item["id"], "output_index": self.items.index(item)}
        return [
            self.event("response.web_search_call.completed", **where),
            self.event("response.output_item.done", output_index=where["output_index"], item=item),
        ]
