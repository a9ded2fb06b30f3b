"""The built-in demo tool behind `gptoss-hub chat --tools demo`: a made-up, offline weather service.

Its answers are a deterministic function of the city name, so demos and tests are repeatable and
need no network. The tiny reference checkpoint is trained to call it.
"""

from __future__ import annotations

import hashlib

__all__ = ["DEMO_TOOLS", "get_weather"]

_CONDITIONS = ("sunny", "cloudy", "rainy", "windy", "snowy", "foggy")


def get_weather(location: str) -> dict[str, object]:
    """Get the current weather for a location.

    Args:
        location: The city to get the weather for, e.g. "Tokyo".
    """
    digest = hashlib.sha256(location.strip().lower().encode()).digest()
    return {
        "location": location,
        "temperature_c": digest[0] % 35 - 5,
        "conditions": _CONDITIONS[digest[1] % len(_CONDITIONS)],
    }


#: The demo tool set, by the name `--tools` accepts.
DEMO_TOOLS = {"demo": [get_weather]}
