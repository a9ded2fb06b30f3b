"""Bounds on what a prompt may cost before it is tokenized.

Tokenizing is linear in the length of a text except within a run of characters the tokenizer's
pre-splitting keeps together (a word, a run of one symbol), where byte-pair merging grows with the square
of the run's length: 100,000 repeated emoji took 53 seconds. So before rendering, the hub refuses
- a text with a run longer than `MAX_RUN_BYTES` bytes without whitespace (`InvalidRequestError`), and
- a request whose texts are longer than the context could hold even at the tokenizer's longest token
  (`MAX_TOKEN_BYTES` bytes a token): it is too long whatever its tokens (`ContextLengthError`).
Both checks are linear and run before any token is made. A lone UTF-16 surrogate, which no tokenizer can
take, is an `InvalidRequestError` too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gptoss_hub.errors import ContextLengthError, InvalidRequestError

__all__ = ["MAX_RUN_BYTES", "MAX_TOKEN_BYTES", "check_prompt_cost"]

#: The longest token of o200k_harmony, in bytes: a prompt of N bytes has at least N / 128 tokens.
MAX_TOKEN_BYTES = 128
#: Longest run of non-whitespace accepted in one text, in bytes (a 64 KiB run tokenizes in well under a
#: second; the cost quadruples each time the run doubles).
MAX_RUN_BYTES = 64 * 1024
_RUNS = re.compile(r"\S+")


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
    else:
        dump = getattr(value, "model_dump", None)  # pydantic messages
        if callable(dump):
            yield from _texts(dump())


def check_prompt_cost(messages: Any, options: dict[str, Any], max_context: int | None) -> None:
    """Refuse, before tokenizing, a prompt whose tokenization would be slow or that cannot fit the context."""
    total = 0
    for text in _texts([messages, options.get("instructions"), options.get("tools")]):
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:  # a lone surrogate: not text the tokenizer can take
            raise InvalidRequestError(
                f"A text holds {text[exc.start : exc.end]!r} at character {exc.start}, half of a UTF-16 surrogate pair, "
                "which is not a character. Send valid Unicode."
            ) from None
        total += size
        if size > MAX_RUN_BYTES:
            longest = max((len(run.encode("utf-8")) for run in _RUNS.findall(text)), default=0)
            if longest > MAX_RUN_BYTES:
                raise InvalidRequestError(
                    f"A text holds a run of {longest} bytes without whitespace; at most {MAX_RUN_BYTES} are accepted "
                    "(tokenizing such a run costs the square of its length). Break it up, or send it as a file."
                )
    if max_context is not None and total > max_context * MAX_TOKEN_BYTES:
        raise ContextLengthError(
            f"The request holds {total} bytes of text, more than the {max_context}-token context can hold at "
            f"{MAX_TOKEN_BYTES} bytes a token. Shorten the conversation."
        )
