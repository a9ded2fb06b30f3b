"""OpenAI Chat Completions messages in, harmony token ids out.

The hub renders every prompt here, with `openai-harmony`, so every backend sees byte-identical prompts.
This module only translates message dicts into harmony `Message` objects; the text layout, special
tokens and dropping of stale chain-of-thought are `openai-harmony`'s.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from gptoss_hub.builtin_tools import BUILTIN_CHANNEL, BUILTIN_CONTENT_TYPE, PYTHON, builtin_tool_of
from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.tools import ToolSpec, normalize_tools

__all__ = [
    "REASONING_EFFORTS",
    "REASONING_KEYS",
    "TODAY",
    "build_conversation",
    "drop_completed_reasoning",
    "message_reasoning",
    "render",
    "render_text",
    "stop_token_ids",
]

REASONING_EFFORTS = ("low", "medium", "high")
#: Sentinel for `current_date`: render today's date (UTC). Pass `None` to omit the date line.
TODAY = "today"
#: Where a message keeps its chain of thought: the hub's own `thinking` (`Reply.message`), then the names
#: OpenAI-compatible servers use (`reasoning_content`: vLLM, llama.cpp, the hub's server; `reasoning`).
REASONING_KEYS = ("thinking", "reasoning_content", "reasoning")
_ROLES = ("system", "developer", "user", "assistant", "tool")


def message_reasoning(message: Mapping[str, Any]) -> Any:
    """A message's chain of thought under any of `REASONING_KEYS` (the first one set), or `None`."""
    return next((message[key] for key in REASONING_KEYS if message.get(key)), None)


def _text_of(content: Any, where: str) -> str:
    """The text of a message `content`: a string, or a list of OpenAI text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in ("text", "input_text", "output_text"):
                parts.append(str(part.get("text", "")))
            else:
                raise InvalidRequestError(
                    f"{where}: only text content parts are supported, got {part!r}. "
                    "gpt-oss is a text model: send text parts or a plain string."
                )
        return "".join(parts)
    raise InvalidRequestError(f"{where}: content must be a string or a list of text parts, got {content!r}.")


def _as_dict(message: Any, index: int) -> Mapping[str, Any]:
    if isinstance(message, Mapping):
        return message
    dump = getattr(message, "model_dump", None)  # pydantic models, e.g. the openai SDK's message params
    if callable(dump):
        dumped: Mapping[str, Any] = dump(exclude_none=True)
        return dumped
    raise InvalidRequestError(
        f"messages[{index}] must be a dict like {{'role': 'user', 'content': '...'}}, got {type(message).__name__}."
    )


#: The python tool's description when each call runs in a fresh process (`stateless_python=True`); the
#: stateful description is harmony's own, the one gpt-oss was trained with.
STATELESS_PYTHON = (
    "Use this tool to execute Python code in your chain of thought. The code will not be shown to the user. This "
    "tool should be used for internal reasoning, but not for code that is intended to be visible to the user (e.g. "
    "when creating plots, tables, or files).\n\n"
    "When you send a message containing Python code to python, it will be executed in a fresh, stateless Python "
    "process: names and imports from earlier calls are gone, so send the whole program each time, and print() what "
    "you need to see. python will respond with the output of the execution or time out after 120.0 seconds. The "
    "drive at '/mnt/data' can be used to save and persist user files. Internet access for this session is disabled."
)


class _HeaderKey(NamedTuple):
    """Everything the harmony system and developer messages are made of, hashable so they render once."""

    reasoning_effort: str
    model_identity: str | None
    knowledge_cutoff: str | None
    current_date: str | None
    builtin_tools: tuple[str, ...]
    #: The python tool runs each call in a fresh process (the system message says so instead of "stateful").
    stateless_python: bool
    instructions: tuple[str, ...]
    #: (name, description, parameters as JSON) per function tool.
    tools: tuple[tuple[str, str, str], ...]

    def messages(self) -> list[Any]:
        """The harmony system message, and the developer message when there are instructions or tools."""
        system = _system_message(self)
        developer = _developer_message(self)
        return [system] if developer is None else [system, developer]


def _system_message(key: _HeaderKey) -> Any:
    from openai_harmony import Message, ReasoningEffort, Role, SystemContent

    content = SystemContent.new().with_reasoning_effort(ReasoningEffort(key.reasoning_effort.capitalize()))
    if key.model_identity is not None:
        content = content.with_model_identity(key.model_identity)
    if key.knowledge_cutoff is not None:
        content = content.with_knowledge_cutoff(key.knowledge_cutoff)
    if key.current_date is not None:
        content = content.with_conversation_start_date(key.current_date)
    for tool in key.builtin_tools:
        if tool == "browser":
            content = content.with_browser_tool()
        elif key.stateless_python:
            from openai_harmony import ToolNamespaceConfig

            content = content.with_tools(ToolNamespaceConfig(name="python", description=STATELESS_PYTHON, tools=[]))
        else:
            content = content.with_python_tool()  # the description gpt-oss was trained with: a stateful notebook
    return Message.from_role_and_content(Role.SYSTEM, content)


def _developer_message(key: _HeaderKey) -> Any:
    from openai_harmony import DeveloperContent, Message, Role, ToolDescription

    if not key.instructions and not key.tools:
        return None
    content = DeveloperContent.new()
    if key.instructions:
        content = content.with_instructions("\n\n".join(key.instructions))
    if key.tools:
        content = content.with_function_tools(
            [
                ToolDescription.new(name, description, parameters=json.loads(parameters))
                for name, description, parameters in key.tools
            ]
        )
    return Message.from_role_and_content(Role.DEVELOPER, content)


@functools.lru_cache(maxsize=64)
def _header_ids(key: _HeaderKey) -> tuple[int, ...]:
    # Requests in a session share their system and developer messages, and rendering those (the tools'
    # TypeScript above all) is most of a prompt's rendering time, so they are rendered once. Harmony
    # renders a conversation as its messages one after another, the system message depending only on the
    # developer message's tools, so header ids + body ids are the whole conversation's ids (tests check).
    from openai_harmony import Conversation

    return tuple(harmony_encoding().render_conversation(Conversation.from_messages(key.messages()), _config()))


def _optional_text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a string or None, got {value!r}.")
    return value


def _header_key(
    developer_texts: list[str],
    tool_specs: Sequence[ToolSpec],
    *,
    reasoning_effort: str,
    model_identity: str | None,
    knowledge_cutoff: str | None,
    current_date: str | _dt.date | None,
    builtin_tools: Iterable[str],
    stateless_python: bool = False,
) -> _HeaderKey:
    if reasoning_effort not in REASONING_EFFORTS:
        raise InvalidRequestError(
            f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}; got {reasoning_effort!r}."
        )
    builtins = tuple(builtin_tools)
    for tool in builtins:
        if tool not in ("browser", "python"):
            raise InvalidRequestError(f"builtin_tools may hold 'browser' and 'python'; got {tool!r}.")
    if current_date == TODAY:
        current_date = _dt.datetime.now(_dt.timezone.utc).date()
    return _HeaderKey(
        reasoning_effort=reasoning_effort,
        model_identity=_optional_text(model_identity, "model_identity"),
        knowledge_cutoff=_optional_text(knowledge_cutoff, "knowledge_cutoff"),
        current_date=None if current_date is None else str(current_date),
        builtin_tools=builtins,
        stateless_python=bool(stateless_python),
        instructions=tuple(t for t in developer_texts if t),
        tools=tuple(spec.render_key for spec in tool_specs),
    )


def _tool_call_arguments(call: Mapping[str, Any], where: str) -> tuple[str, str]:
    function = call.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(
            f"{where}: a tool call needs {{'function': {{'name': ..., 'arguments': ...}}}}, got {call!r}."
        )
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        # Strings pass through verbatim so a replayed call is byte-identical to what the model wrote.
        arguments = json.dumps(arguments)
    return function["name"], arguments


def _body_messages(messages: Sequence[Any], developer_texts: list[str]) -> list[Any]:
    """The harmony messages for `messages`; system and developer texts go to `developer_texts` instead."""
    from openai_harmony import Author, Message, Role

    body: list[Any] = []
    call_names: dict[str, str] = {}
    last_call_name: str | None = None
    for index, raw in enumerate(messages):
        message = _as_dict(raw, index)
        where = f"messages[{index}]"
        role = message.get("role")
        if role not in _ROLES:
            raise InvalidRequestError(f"{where}: role must be one of {', '.join(_ROLES)}; got {role!r}.")
        text = _text_of(message.get("content"), where)
        if role in ("system", "developer"):
            developer_texts.append(text)
        elif role == "user":
            body.append(Message.from_role_and_content(Role.USER, text))
        elif role == "assistant":
            thinking = message_reasoning(message)
            if thinking:
                thinking_text = _text_of(thinking, where + ".thinking")
                body.append(Message.from_role_and_content(Role.ASSISTANT, thinking_text).with_channel("analysis"))
            tool_calls = message.get("tool_calls") or ()
            if text:
                # Text beside tool calls is what the model said before calling: a commentary preamble,
                # which is how the parser reported it. Text alone is the final answer.
                channel = "commentary" if tool_calls else "final"
                body.append(Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel))
            for call in tool_calls:
                name, arguments = _tool_call_arguments(call, where)
                if call.get("id"):
                    call_names[call["id"]] = name
                last_call_name = name
                if builtin_tool_of(name) is not None:
                    # A builtin tool (python's code, or a browser function's JSON), on the analysis channel.
                    body.append(
                        Message.from_role_and_content(Role.ASSISTANT, arguments)
                        .with_channel(BUILTIN_CHANNEL)
                        .with_recipient(PYTHON if builtin_tool_of(name) == "python" else name)
                        .with_content_type(BUILTIN_CONTENT_TYPE)
                    )
                    continue
                body.append(
                    Message.from_role_and_content(Role.ASSISTANT, arguments)
                    .with_channel("commentary")
                    .with_recipient(f"functions.{name}")
                    .with_content_type("<|constrain|>json")
                )
        else:  # tool
            answered = message.get("name") or call_names.get(message.get("tool_call_id") or "") or last_call_name
            if not answered:
                raise InvalidRequestError(
                    f"{where}: a tool message needs a `name`, or a `tool_call_id` of an earlier assistant "
                    "tool call, so the model knows which function answered."
                )
            if builtin_tool_of(answered) is not None:
                # python's result, or a browser function's page, from the author the call addressed.
                author = Author.new(Role.TOOL, PYTHON if builtin_tool_of(answered) == "python" else answered)
                channel = BUILTIN_CHANNEL
            else:
                author, channel = Author.new(Role.TOOL, f"functions.{answered}"), "commentary"
            body.append(Message.from_author_and_content(author, text).with_channel(channel).with_recipient("assistant"))
    return body


def _conversation_parts(
    messages: Sequence[Any],
    *,
    tools: Sequence[Any] | None = None,
    builtin_tools: Iterable[str] = (),
    reasoning_effort: str = "medium",
    instructions: str | None = None,
    model_identity: str | None = None,
    knowledge_cutoff: str | None = "2024-06",
    current_date: str | _dt.date | None = TODAY,
    keep_reasoning: bool = False,
    stateless_python: bool = False,
) -> tuple[_HeaderKey, list[Any]]:
    """What the system and developer messages are made of, and the harmony messages that follow them."""
    tool_specs = normalize_tools(tools)
    developer_texts = [instructions] if instructions else []
    body = _body_messages(messages, developer_texts)
    key = _header_key(
        developer_texts,
        tool_specs,
        reasoning_effort=reasoning_effort,
        model_identity=model_identity,
        knowledge_cutoff=knowledge_cutoff,
        current_date=current_date,
        builtin_tools=builtin_tools,
        stateless_python=stateless_python,
    )
    if not keep_reasoning:
        body = drop_completed_reasoning(body)
    return key, body


def build_conversation(messages: Sequence[Any], **options: Any) -> Any:
    """Translate Chat Completions `messages` into an `openai_harmony.Conversation`.

    `system` and `developer` messages (and `instructions`, placed first) become the harmony developer
    message; the harmony system message is built from the keyword options: `tools`, `builtin_tools`
    ("browser", "python"), `reasoning_effort` ("low" | "medium" | "high", default "medium"), `instructions`,
    `model_identity`, `knowledge_cutoff` (default "2024-06"), `current_date` (default today, UTC; `None`
    omits it), `stateless_python` (the python tool runs each call in a fresh process, and its description
    says so) and `keep_reasoning`. The chain of thought of completed turns is dropped
    (`drop_completed_reasoning`) unless `keep_reasoning` is set, for training.
    """
    from openai_harmony import Conversation

    key, body = _conversation_parts(messages, **options)
    return Conversation.from_messages(key.messages() + body)


def drop_completed_reasoning(messages: list[Any]) -> list[Any]:
    """Drop the analysis messages of every completed turn; keep those of an unfinished one.

    A turn is what the assistant and tools say between two user messages; it is completed once it holds
    a final-channel message. The chain of thought of an unfinished turn (a tool-call chain still waiting
    for its answer) stays, because the model needs it to continue.
    """
    from openai_harmony import Role

    kept: list[Any] = []
    turn: list[Any] = []

    def close_turn() -> None:
        completed = any(m.author.role == Role.ASSISTANT and m.channel == "final" for m in turn)
        kept.extend(m for m in turn if not (completed and m.channel == "analysis"))
        turn.clear()

    for message in messages:
        if message.author.role == Role.USER:
            close_turn()
            kept.append(message)
        else:
            turn.append(message)
    close_turn()
    return kept


def _config() -> Any:
    from openai_harmony import RenderConversationConfig

    # Our own rule (`drop_completed_reasoning`) decides which analysis stays; harmony's must not add to it.
    return RenderConversationConfig(auto_drop_analysis=False)


def render(messages: Sequence[Any], **options: Any) -> list[int]:
    """Render `messages` to the prompt token ids the model completes (ending in `<|start|>assistant`).

    Keyword options are those of `build_conversation`. The system and developer messages are rendered
    once per distinct set of tools and options, then reused.
    """
    from openai_harmony import Conversation, Role

    key, body = _conversation_parts(messages, **options)
    completion = harmony_encoding().render_conversation_for_completion(
        Conversation.from_messages(body), Role.ASSISTANT, _config()
    )
    return [*_header_ids(key), *completion]


def render_text(messages: Sequence[Any], **options: Any) -> str:
    """The prompt `render` produces, decoded to text (special tokens spelled out)."""
    text: str = harmony_encoding().decode(render(messages, **options))
    return text


def stop_token_ids() -> list[int]:
    """The ids that end an assistant turn: `<|return|>` and `<|call|>`."""
    return list(_stop_token_ids())


@functools.lru_cache(maxsize=1)
def _stop_token_ids() -> tuple[int, ...]:
    # openai-harmony builds the set anew on every call (about 90 µs); every request needs it.
    return tuple(harmony_encoding().stop_tokens_for_assistant_actions())
