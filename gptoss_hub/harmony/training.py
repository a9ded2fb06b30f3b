"""Fine-tuning and evaluation helpers, following the harmony guidance for gpt-oss.

gpt-oss is trained to see the chain of thought of the turn it is working on, never that of earlier
turns. So a multi-turn conversation becomes one training sample per assistant turn: earlier turns
without their reasoning, the target turn with it, and a loss mask over the tokens the model itself
writes in that turn (not the tool results inside it, not the prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.harmony.parse import parse
from gptoss_hub.harmony.render import build_conversation, drop_completed_reasoning

__all__ = ["TrainingSample", "strip_reasoning", "training_samples"]


@dataclass(frozen=True)
class TrainingSample:
    """One assistant turn to learn: the token ids and which of them carry loss."""

    input_ids: list[int]
    #: True where the model wrote the token in the target turn; same length as `input_ids`.
    loss_mask: list[bool]
    #: Which assistant turn of the conversation this sample teaches (0-based).
    turn_index: int

    @property
    def labels(self) -> list[int]:
        """`input_ids` with non-target positions set to -100, the ignore index of PyTorch's cross-entropy."""
        return [token if keep else -100 for token, keep in zip(self.input_ids, self.loss_mask, strict=True)]


def _split_turns(messages: list[Any]) -> tuple[list[Any], list[list[Any]]]:
    """Split harmony body messages into the leading user messages of each turn and the turns themselves.

    Returns (`prefixes`, `turns`): `prefixes[i]` are the messages before turn i's first non-user message.
    """
    from openai_harmony import Role

    prefixes: list[Any] = []
    turns: list[list[Any]] = []
    pending: list[Any] = []
    for message in messages:
        if message.author.role == Role.USER:
            pending.append(message)
            continue
        if pending or not turns:
            prefixes.append(pending)
            turns.append([])
            pending = []
        turns[-1].append(message)
    return prefixes, turns


def training_samples(messages: Sequence[Any], **render_options: Any) -> list[TrainingSample]:
    """One `TrainingSample` per assistant turn of `messages` (OpenAI-style dicts, as for `render`).

    Each sample holds every earlier turn with its reasoning dropped, then the target turn with its
    reasoning, ending in `<|return|>` (or `<|call|>` when the turn ends in a tool call). Render options
    (tools, reasoning_effort, current_date, …) are those of `render`.
    """
    from openai_harmony import Conversation, RenderConversationConfig, Role

    encoding = harmony_encoding()
    config = RenderConversationConfig(auto_drop_analysis=False)
    conversation = build_conversation(messages, keep_reasoning=True, **render_options)
    header = [m for m in conversation.messages if m.author.role in (Role.SYSTEM, Role.DEVELOPER)]
    body = conversation.messages[len(header) :]
    prefixes, turns = _split_turns(body)
    samples: list[TrainingSample] = []
    history: list[Any] = []
    for index, (users, turn) in enumerate(zip(prefixes, turns, strict=True)):
        history.extend(users)
        if not any(m.author.role == Role.ASSISTANT for m in turn):
            history.extend(turn)
            continue
        sample_messages = [*header, *history, *turn]
        ids = encoding.render_conversation_for_training(Conversation.from_messages(sample_messages), config)
        mask = [False] * len(ids)
        start = len(encoding.render_conversation(Conversation.from_messages([*header, *history]), config))
        previous_role = Role.USER
        for position in range(len(turn)):
            end = len(
                encoding.render_conversation(
                    Conversation.from_messages(sample_messages[: len(header) + len(history) + position + 1]), config
                )
            )
            if turn[position].author.role == Role.ASSISTANT:
                # After a user or tool message the prompt already ends in "<|start|>assistant" (that is
                # what `render` produces), so those tokens are context, not something the model writes.
                skip = 0 if previous_role == Role.ASSISTANT else 1 + len(encoding.encode("assistant"))
                for i in range(start + skip, end):
                    mask[i] = True
            previous_role = turn[position].author.role
            start = end
        samples.append(TrainingSample(input_ids=list(ids), loss_mask=mask, turn_index=index))
        history.extend(drop_completed_reasoning(turn))
    return samples


def strip_reasoning(output: str | Sequence[int]) -> str:
    """What the user should see of a model output: the answer without the chain of thought.

    Accepts completion ids, or text with harmony markup (`<|channel|>analysis<|message|>…`); text with
    no harmony markup is returned unchanged.
    """
    if isinstance(output, str):
        if "<|channel|>" not in output and "<|message|>" not in output:
            return output
        ids = harmony_encoding().encode(output, allowed_special="all")
        start = harmony_encoding().encode("<|start|>assistant", allowed_special="all")
        if ids[: len(start)] == start:  # a whole message rather than a completion after the prompt
            ids = ids[len(start) :]
        return parse(ids).content
    return parse(list(output)).content
