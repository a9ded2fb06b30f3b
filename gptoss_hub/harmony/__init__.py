"""Harmony, owned by the hub: messages to prompt ids, completion ids to replies.

Every backend sees prompts rendered here and every reply is parsed here, so all backends agree.
"""

from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.harmony.parse import ReplyParser, parse
from gptoss_hub.harmony.render import (
    REASONING_EFFORTS,
    REASONING_KEYS,
    TODAY,
    build_conversation,
    drop_completed_reasoning,
    message_reasoning,
    render,
    render_text,
    stop_token_ids,
)
from gptoss_hub.harmony.training import TrainingSample, strip_reasoning, training_samples

__all__ = [
    "REASONING_EFFORTS",
    "REASONING_KEYS",
    "TODAY",
    "ReplyParser",
    "TrainingSample",
    "build_conversation",
    "drop_completed_reasoning",
    "harmony_encoding",
    "message_reasoning",
    "parse",
    "render",
    "render_text",
    "stop_token_ids",
    "strip_reasoning",
    "training_samples",
]
