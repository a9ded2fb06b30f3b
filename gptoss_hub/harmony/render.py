"""OpenAI Chat Completions messages in, harmony token ids out.

The hub renders every prompt here, with `openai-harmony`, so every backend sees byte-identical prompts.
This module only translates message dicts into harmony `Message` objects; the text layout, special
tokens and dropping of stale chain-of-thought are `openai-harmony`'s.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.tools import ToolSpec, normalize_tools

__all__ = [
    "REASONING_EFFORTS",
    "TODAY",
    "build_conversation",
    "drop_completed_reasoning",
    "render",
    "render_text",
    "stop_token_ids",
]

REASONING_EFFORTS = ("low", "medium", "high")
#: Sentinel for `current_date`: render today's date (UTC). Pass `None` to omit the date line.
TODAY = "today"
_THINKING_KEYS = ("thinking", "reasoning_content", "reasoning")
_ROLES = ("system", "developer", "user", "assistant", "tool")


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
        return dump(exclude_none=True)
    raise InvalidRequestError(
        f"messages[{index}] must be a dict like {{'role': 'user', 'content': '...'}}, got {type(message).__name__}."
    )


def _system_message(
    *,
    reasoning_effort: str,
    model_identity: str | None,
    knowledge_cutoff: str | None,
    current_date: str | _dt.date | None,
    builtin_tools: Iterable[str],
):
    from openai_harmony import Message, ReasoningEffort, Role, SystemContent

    if reasoning_effort not in REASONING_EFFORTS:
        raise InvalidRequestError(
            f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}; got {reasoning_effort!r}."
        )
    content = SystemContent.new().with_reasoning_effort(ReasoningEffort(reasoning_effort.capitalize()))
    if model_identity is not None:
        content = content.with_model_identity(model_identity)
    if knowledge_cutoff is not None:
        content = content.with_knowledge_cutoff(knowledge_cutoff)
    if current_date == TODAY:
        current_date = _dt.datetime.now(_dt.timezone.utc).date()
    if current_date is not None:
        content = content.with_conversation_start_date(str(current_date))
    for tool in builtin_tools:
        if tool == "browser":
            content = content.with_browser_tool()
        elif tool == "python":
            content = content.with_python_tool()
        else:
            raise InvalidRequestError(f"builtin_tools may hold 'browser' and 'python'; got {tool!r}.")
    return Message.from_role_and_content(Role.SYSTEM, content)


def _developer_message(instructions: list[str], tools: Sequence[ToolSpec]):
    from openai_harmony import DeveloperContent, Message, Role, ToolDescription

    if not instructions and not tools:
        return None
    content = DeveloperContent.new()
    if instructions:
        content = content.with_instructions("\n\n".join(instructions))
    if tools:
        content = content.with_function_tools(
            [ToolDescription.new(t.name, t.description, parameters=t.parameters) for t in tools]
        )
    return Message.from_role_and_content(Role.DEVELOPER, content)


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


def build_conversation(
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
):
    """Translate Chat Completions `messages` into an `openai_harmony.Conversation`.

    `system` and `developer` messages (and `instructions`, placed first) become the harmony developer
    message; the harmony system message is built from the keyword arguments. The chain of thought of
    completed turns is dropped (`drop_completed_reasoning`) unless `keep_reasoning` is set, for training.
    """
    from openai_harmony import Author, Conversation, Message, Role

    tool_specs = normalize_tools(tools)
    developer_texts = [instructions] if instructions else []
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
            thinking = next((message[k] for k in _THINKING_KEYS if message.get(k)), None)
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
                body.append(
                    Message.from_role_and_content(Role.ASSISTANT, arguments)
                    .with_channel("commentary")
                    .with_recipient(f"functions.{name}")
                    .with_content_type("<|constrain|>json")
                )
        else:  # tool
            name = message.get("name") or call_names.get(message.get("tool_call_id") or "") or last_call_name
            if not name:
                raise InvalidRequestError(
                    f"{where}: a tool message needs a `name`, or a `tool_call_id` of an earlier assistant "
                    "tool call, so the model knows which function answered."
                )
            body.append(
                Message.from_author_and_content(Author.new(Role.TOOL, f"functions.{name}"), text)
                .with_channel("commentary")
                .with_recipient("assistant")
            )
    header = [
        _system_message(
            reasoning_effort=reasoning_effort,
            model_identity=model_identity,
            knowledge_cutoff=knowledge_cutoff,
            current_date=current_date,
            builtin_tools=builtin_tools,
        )
    ]
    developer = _developer_message([t for t in developer_texts if t], tool_specs)
    if developer is not None:
        header.append(developer)
    if not keep_reasoning:
        body = drop_completed_reasoning(body)
    return Conversation.from_messages(header + body)


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


def render(messages: Sequence[Any], **options: Any) -> list[int]:
    """Render `messages` to the prompt token ids the model completes (ending in `<|start|>assistant`).

    Keyword options are those of `build_conversation`.
    """
    from openai_harmony import RenderConversationConfig, Role

    conversation = build_conversation(messages, **options)
    # Our own rule (`drop_completed_reasoning`) decides which analysis stays; harmony's must not add to it.
    config = RenderConversationConfig(auto_drop_analysis=False)
    return list(harmony_encoding().render_conversation_for_completion(conversation, Role.ASSISTANT, config))


def render_text(messages: Sequence[Any], **options: Any) -> str:
    """The prompt `render` produces, decoded to text (special tokens spelled out)."""
    return harmony_encoding().decode(render(messages, **options))


def stop_token_ids() -> list[int]:
    """The ids that end an assistant turn: `<|return|>` and `<|call|>`."""
    return list(harmony_encoding().stop_tokens_for_assistant_actions())
