"""Bounds on what a prompt may cost before it is tokenized.

Tokenizing is linear in the length of a text except within a piece the tokenizer's pre-splitting keeps
together (a run of letters, of whitespace, of one kind of symbol), where byte-pair merging grows with the
square of the piece's length: 100,000 repeated emoji took 53 seconds, and 32,000 spaces 0.3 s. The
tokenizer holds the interpreter lock while it works, so tokenizing in a worker thread still stalls a
server's other requests for that long. So before rendering, the hub refuses
- texts whose long pieces would cost more than `MAX_PIECE_BYTES` squared (`InvalidRequestError`): one piece
  of 16 KiB, which tokenizes in about 0.1 s, or several shorter ones adding up to as much (a piece's cost
  is the square of its bytes; pieces under 256 bytes cost next to nothing and are not counted), and
- a request whose texts are longer than the context could hold even at the tokenizer's longest token
  (`MAX_TOKEN_BYTES` bytes a token): it is too long whatever its tokens (`ContextLengthError`).
Both checks are linear and run before any token is made. Ordinary text, code, JSON or base64 is split into
short pieces by its spaces, digits and punctuation and is never near the bound. A lone UTF-16 surrogate,
which no tokenizer can take, is an `InvalidRequestError` too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gptoss_hub.errors import ContextLengthError, InvalidRequestError

__all__ = ["MAX_PIECE_BYTES", "MAX_TOKEN_BYTES", "check_prompt_cost"]

#: The longest token of o200k_harmony, in bytes: a prompt of N bytes has at least N / 128 tokens.
MAX_TOKEN_BYTES = 128
#: The longest piece accepted, in bytes; pieces' costs (their bytes squared) may add up to its square.
MAX_PIECE_BYTES = 16 * 1024
#: Long pieces as the tokenizer's pre-splitting makes them: runs of letters, of whitespace, of symbols.
_LONG_PIECES = re.compile(r"[^\W\d_]{256,}|\s{256,}|[^\w\s]{256,}")


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
    total = cost = longest = 0
    for text in _texts([messages, options.get("instructions"), options.get("tools")]):
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:  # a lone surrogate: not text the tokenizer can take
            raise InvalidRequestError(
                f"A text holds {text[exc.start : exc.end]!r} at character {exc.start}, half of a UTF-16 surrogate pair, "
                "which is not a character. Send valid Unicode."
            ) from None
        total += size
        if size >= 256:
            for piece in _LONG_PIECES.finditer(text):
                piece_bytes = len(piece.group().encode("utf-8"))
                cost += piece_bytes * piece_bytes
                longest = max(longest, piece_bytes)
    if cost > MAX_PIECE_BYTES * MAX_PIECE_BYTES:
        raise InvalidRequestError(
            f"The request holds runs of one kind of character (letters, spaces or symbols, the longest {longest} "
            f"bytes) too long to tokenize quickly: at most {MAX_PIECE_BYTES} bytes in one run, or runs adding up "
            "to as much (each costs the square of its length). Break them up, or send such data as a file."
        )
    if max_context is not None and total > max_context * MAX_TOKEN_BYTES:
        raise ContextLengthError(
            f"The request holds {total} bytes of text, more than the {max_context}-token context can hold at "
            f"{MAX_TOKEN_BYTES} bytes a token. Shorten the conversation."
        )
