"""`stop` strings: the answer ends where one of them is first complete, and the stop string is not part of it.

Tokens do not line up with text, so a stop string can arrive split over several tokens, or in the middle of
one. `StopStrings` watches the answer's text as it streams: it holds back the end of the text while it could
still be the start of a stop string, shows everything before it, and says when one has appeared. Only the
final channel is watched: reasoning and tool-call arguments are not the answer.
"""

from __future__ import annotations

from typing import Any

from gptoss_hub.errors import InvalidRequestError

__all__ = ["MAX_STOPS", "MAX_STOP_CHARS", "StopStrings", "stop_list"]

#: Stop strings a request may give (OpenAI's limit).
MAX_STOPS = 4
#: Characters a stop string may have at most.
MAX_STOP_CHARS = 256


def stop_list(stop: Any) -> list[str]:
    """The stop strings of a `stop` option (a string or a list of strings), checked; `[]` for none."""
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(item, str) for item in stops):
        raise InvalidRequestError(f"stop must be a string or a list of strings, got {stop!r}.")
    if len(stops) > MAX_STOPS:
        raise InvalidRequestError(f"stop takes at most {MAX_STOPS} strings, got {len(stops)}.")
    for item in stops:
        if not item:
            raise InvalidRequestError("stop strings must not be empty.")
        if len(item) > MAX_STOP_CHARS:
            raise InvalidRequestError(f"stop strings may have at most {MAX_STOP_CHARS} characters, got {len(item)}.")
    return list(stops)


class StopStrings:
    """Watches streamed text for `stops`: `feed(delta)` returns what may be shown now; once `matched`, the
    text ended just before a stop string and nothing more is shown. `flush()` returns what was held back."""

    def __init__(self, stops: list[str]):
        self.stops = stops
        self.matched = False
        self._held = ""

    def feed(self, delta: str) -> str:
        """The part of `delta` (with what was held back before it) that may be shown now."""
        if self.matched:
            return ""
        text = self._held + delta
        # The stop string that is complete first, as the text streams (the earliest end; of two ending at
        # once, the longer): however the text is split into deltas, the answer ends in the same place.
        found = [(index + len(stop), index) for stop in self.stops if (index := text.find(stop)) >= 0]
        if found:
            self.matched, self._held = True, ""
            return text[: min(found)[1]]
        hold = self._longest_partial_stop_at_end(text)
        self._held = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        """What was held back (the text ended without completing a stop string)."""
        held, self._held = self._held, ""
        return held

    def _longest_partial_stop_at_end(self, text: str) -> int:
        """How many characters at the end of `text` could begin a stop string."""
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest
