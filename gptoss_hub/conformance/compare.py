"""Token-level comparison: where two id sequences first differ, said so a backend author can act on it."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["first_difference"]


def _spell(token_id: int) -> str:
    from gptoss_hub.encoding import harmony_encoding

    return f"{token_id} ({harmony_encoding().decode([token_id])!r})"


def first_difference(expected: Sequence[int], actual: Sequence[int]) -> str | None:
    """`None` when the sequences are equal; otherwise the first differing position, both tokens spelled out.

    >>> first_difference([1, 2], [1, 2]) is None
    True
    """
    expected, actual = list(expected), list(actual)
    if expected == actual:
        return None
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            return f"first difference at token {index}: expected {_spell(want)}, got {_spell(got)}"
    index = min(len(expected), len(actual))
    if len(actual) < len(expected):
        return (
            f"first difference at token {index}: expected {_spell(expected[index])}, got nothing "
            f"({len(actual)} tokens instead of {len(expected)})"
        )
    return (
        f"first difference at token {index}: expected nothing, got {_spell(actual[index])} "
        f"({len(actual)} tokens instead of {len(expected)})"
    )
