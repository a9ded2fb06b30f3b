"""How much the hub adds to harmony rendering, and how fast it parses completions.

Run: `python benchmarks/harmony_render.py [--iterations N] [--parse-tokens N] [--repeat N]`.

Three figures, measured in the same process so they can be compared:

- hub render: `gptoss_hub.harmony.render()` on a 50-message Chat Completions conversation (tools, thinking,
  tool calls and results), i.e. translating the dicts into harmony messages *and* rendering them;
- harmony render: `openai_harmony` rendering the equivalent, already built `Conversation` directly, which is
  the floor any caller pays; the ratio of the two is the hub's overhead;
- parse: `gptoss_hub.harmony.parse()` throughput on a long completion (reasoning, a preamble, then a tool
  call), and on one an eighth as long: equal figures mean parse time grows linearly with length.

Each timing is the best of `--repeat` rounds (the least disturbed by the rest of the machine).
Nothing is asserted about the figures; `tests/test_harmony_properties.py` runs `main()` with tiny counts so
the script keeps working.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.harmony import build_conversation, parse, render

#: Fixed, so every run renders the same prompt (the default would stamp today's date in it).
RENDER_OPTIONS: dict[str, Any] = {"reasoning_effort": "medium", "current_date": "2025-06-01"}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Full-text search over the documentation.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "default": 5}},
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "convert_currency",
            "description": "Convert an amount between currencies.",
            "parameters": {
                "type": "object",
                "properties": {
                    "amount": {"type": "number"},
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                },
                "required": ["amount", "from", "to"],
            },
        },
    },
]

_CITIES = ["Tokyo", "Oslo", "São Paulo", "Zürich", "Nairobi", "Reykjavík", "Kraków", "Hà Nội"]


def conversation(n_messages: int = 50) -> list[dict[str, Any]]:
    """A realistic agent transcript of exactly `n_messages` Chat Completions messages.

    A system prompt, then rounds of: user question, assistant thinking + tool call, tool result, assistant
    thinking + answer. Only the last unfinished turn keeps its thinking once rendered (harmony drops the
    chain of thought of completed turns), as in real multi-turn use.
    """
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a concise travel assistant."}]
    round_no = 0
    while len(messages) < n_messages:
        city = _CITIES[round_no % len(_CITIES)]
        call_id = f"call_{round_no}"
        messages += [
            {"role": "user", "content": f"What's the weather in {city}, and what should I pack? Round {round_no}."},
            {
                "role": "assistant",
                "thinking": f"The user asks about {city}. I should call get_weather before answering.",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": json.dumps({"location": city})},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": call_id,
                "content": json.dumps({"location": city, "temperature_c": 12 + round_no, "sky": "cloudy"}),
            },
            {
                "role": "assistant",
                "thinking": "It is mild and cloudy; suggest layers and an umbrella.",
                "content": f"{city} is {12 + round_no} °C and cloudy: pack layers and a light umbrella.",
            },
        ]
        round_no += 1
    return messages[:n_messages]


def long_completion(n_tokens: int) -> list[int]:
    """About `n_tokens` completion ids: a long analysis message, a preamble, then a tool call."""
    encoding = harmony_encoding()
    sentence = encoding.encode("Let me weigh the options once more, carefully, step by step — 日本語 too. ")
    body = (sentence * (n_tokens // len(sentence) + 1))[: max(n_tokens - 40, 1)]
    head = encoding.encode("<|channel|>analysis<|message|>", allowed_special="all")
    tail = encoding.encode(
        "<|end|><|start|>assistant<|channel|>commentary<|message|>Checking the weather.<|end|>"
        '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location": "Oslo"}<|call|>',
        allowed_special="all",
    )
    return head + body + tail


@dataclass(frozen=True)
class Results:
    """What one run measured (times in microseconds per conversation message)."""

    messages: int
    prompt_tokens: int
    hub_us_per_message: float
    build_us_per_message: float
    harmony_us_per_message: float
    overhead_ratio: float  # hub render / harmony render
    parse_tokens: int
    parse_tokens_per_s: float
    short_parse_tokens: int
    short_parse_tokens_per_s: float


def _best_seconds(function, number: int, repeat: int) -> float:
    """Seconds per call, best of `repeat` rounds of `number` calls."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number


def _parse_throughput(n_tokens: int, repeat: int) -> tuple[int, float]:
    """(length, tokens per second) of parsing a completion of about `n_tokens` ids."""
    completion = long_completion(n_tokens)
    reply = parse(completion)
    if reply.error is not None or not reply.tool_calls:
        raise RuntimeError(f"the benchmark completion did not parse cleanly: {reply.error}")
    return len(completion), len(completion) / _best_seconds(lambda: parse(completion), 1, repeat)


def measure(iterations: int = 100, parse_tokens: int = 8_000, repeat: int = 3) -> Results:
    """Time the three operations; see the module docstring."""
    from openai_harmony import RenderConversationConfig, Role

    messages = conversation()
    encoding = harmony_encoding()
    prebuilt = build_conversation(messages, tools=TOOLS, **RENDER_OPTIONS)
    # the same config `render` uses, so both sides do the same work
    config = RenderConversationConfig(auto_drop_analysis=False)

    def hub() -> list[int]:
        return render(messages, tools=TOOLS, **RENDER_OPTIONS)

    def harmony_only() -> list[int]:
        return encoding.render_conversation_for_completion(prebuilt, Role.ASSISTANT, config)

    # Not a timing check: if the two ever rendered different prompts the ratio would be meaningless.
    prompt = hub()
    if list(harmony_only()) != prompt:
        raise RuntimeError("render() and openai_harmony disagree on the benchmark conversation")

    hub_s = _best_seconds(hub, iterations, repeat)
    build_s = _best_seconds(lambda: build_conversation(messages, tools=TOOLS, **RENDER_OPTIONS), iterations, repeat)
    harmony_s = _best_seconds(harmony_only, iterations, repeat)

    long_tokens, long_rate = _parse_throughput(parse_tokens, repeat)
    short_tokens, short_rate = _parse_throughput(max(parse_tokens // 8, 1), repeat)

    n = len(messages)
    return Results(
        messages=n,
        prompt_tokens=len(prompt),
        hub_us_per_message=hub_s / n * 1e6,
        build_us_per_message=build_s / n * 1e6,
        harmony_us_per_message=harmony_s / n * 1e6,
        overhead_ratio=hub_s / harmony_s,
        parse_tokens=long_tokens,
        parse_tokens_per_s=long_rate,
        short_parse_tokens=short_tokens,
        short_parse_tokens_per_s=short_rate,
    )


def report(results: Results) -> str:
    """The results as a small plain-text table."""
    rows = [
        ("hub render (build + render)", f"{results.hub_us_per_message:10.1f} µs/message"),
        ("  of which build_conversation", f"{results.build_us_per_message:10.1f} µs/message"),
        ("openai_harmony render only", f"{results.harmony_us_per_message:10.1f} µs/message"),
        ("hub / harmony", f"{results.overhead_ratio:10.2f} x"),
        (f"parse ({results.short_parse_tokens} tokens)", f"{results.short_parse_tokens_per_s:10.0f} tokens/s"),
        (f"parse ({results.parse_tokens} tokens)", f"{results.parse_tokens_per_s:10.0f} tokens/s"),
    ]
    width = max(len(name) for name, _ in rows)
    header = f"{results.messages} messages, {results.prompt_tokens} prompt tokens"
    return "\n".join([header, *(f"{name:<{width}}  {value}" for name, value in rows)])


def main(argv: Sequence[str] | None = None) -> Results:
    """Parse arguments, run the benchmark, print the table, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100, help="renders per timing round (default 100)")
    parser.add_argument(
        "--parse-tokens", type=int, default=8_000, help="length of the long parsed completion (default 8000)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timing rounds; the best is kept (default 3)")
    args = parser.parse_args(argv)
    results = measure(args.iterations, args.parse_tokens, args.repeat)
    print(report(results))
    return results


if __name__ == "__main__":
    main()
