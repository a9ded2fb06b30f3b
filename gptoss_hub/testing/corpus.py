"""The synthetic harmony corpus `tiny-harmony` is trained on, as data tests and backends can reuse.

Each `CorpusExample` is one assistant turn: chat messages, tools and `render` options in, the exact
completion ids out. Prompts come from `gptoss_hub.harmony.render`, the function `chat()` uses, and
completions from `openai-harmony` rendering assistant messages, so a reply the model produces and the
hub replays into history is byte-identical to what the next training prompt holds.

Three kinds of turn:
- "answer": a plain question, answered with analysis then final (with and without tools defined);
- "tool_call": "What is the weather in CITY?" with `get_weather` defined: analysis, then a
  `functions.get_weather` call with `<|constrain|>json` arguments, ending in `<|call|>`;
- "tool_result": the same conversation after the call and the tool's result: analysis, then a final
  answer quoting the tool's output verbatim.

The parts of a prompt that vary in real use (date, reasoning effort, developer instructions, the tool's
wording) are varied across the corpus so the model's behaviour does not hinge on them.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gptoss_hub.demo_tools import get_weather
from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.harmony.render import REASONING_EFFORTS, render
from gptoss_hub.testing.config import CALL_ID, END_ID, RETURN_ID
from gptoss_hub.tools import ToolSpec, tool_from_function

__all__ = [
    "ANSWER_PROMPTS",
    "HELDOUT_INSTRUCTIONS",
    "INSTRUCTIONS",
    "WEATHER_CITIES",
    "WEATHER_PROMPT",
    "CorpusExample",
    "corpus_examples",
    "demo_examples",
    "heldout_examples",
    "tool_result_history",
    "weather_tool_variants",
]

#: Cities the model calls `get_weather` for; "What is the weather in {city}?".
WEATHER_CITIES = ("Tokyo", "Paris", "London", "Berlin", "New York")
WEATHER_PROMPT = "What is the weather in {city}?"

#: Plain prompts -> (analysis, final answer).
ANSWER_PROMPTS: dict[str, tuple[str, str]] = {
    "How many r's are in strawberry?": (
        "The word strawberry has one r after st and two more before y, so three.",
        'There are 3 r\'s in "strawberry".',
    ),
    "What is 2 + 2?": ("Simple arithmetic: 2 + 2 = 4.", "2 + 2 = 4."),
    "Say hello.": ("The user wants a greeting.", "Hello!"),
    "What is the capital of France?": ("The capital of France is Paris.", "The capital of France is Paris."),
    "Tell me a joke.": (
        "A short, friendly joke.",
        "Why did the scarecrow win an award? Because he was outstanding in his field.",
    ),
    "What color is the sky?": ("On a clear day the sky looks blue.", "The sky is blue on a clear day."),
}

#: Developer instructions seen in training (a prompt has one of these or none).
INSTRUCTIONS = (
    "You are a helpful assistant.",
    "Answer concisely.",
    "You are a friendly assistant. Keep answers short.",
    "Always be polite and accurate.",
    "Use the available tools when they help answer the user.",
    "Respond in English.",
    "You are a weather assistant. Call tools to get live data.",
    "Think step by step, then give a short answer.",
    "Reply in plain text without markdown.",
    "You are Tiny, an assistant used to test model runtimes.",
    "Keep every reply under fifty words.",
    "The user is a developer testing tool calls.",
)
#: Developer instructions never seen in training, for checking generalization.
HELDOUT_INSTRUCTIONS = ("Be brief and precise.", "You are a test assistant for the gptoss-hub project.")

_CALL_ID = "call_x"
_SEED = 20250805


def _tool_spec(description: str, param_description: str | None) -> ToolSpec:
    location: dict[str, Any] = {"type": "string"}
    if param_description is not None:
        location["description"] = param_description
    parameters = {"type": "object", "properties": {"location": location}, "required": ["location"]}
    return ToolSpec("get_weather", description, parameters, get_weather)


def weather_tool_variants() -> list[ToolSpec]:
    """Wordings of `get_weather` seen in training; the first is exactly `tool_from_function(get_weather)`."""
    return [
        tool_from_function(get_weather),
        _tool_spec("Get the weather for a city.", "City name, e.g. Paris."),
        _tool_spec("Look up the current weather conditions.", "The city."),
        _tool_spec("Returns the current temperature and conditions for a city.", "Name of the city"),
        _tool_spec("Get current weather.", None),
        _tool_spec("Weather lookup tool", "The location to look up, e.g. San Francisco, CA"),
    ]


@dataclass(frozen=True)
class CorpusExample:
    """One assistant turn: the request (`messages`, `tools`, `render_options`) and its exact completion."""

    kind: str
    messages: list[dict[str, Any]]
    tools: list[ToolSpec]
    render_options: dict[str, Any]
    prompt_ids: tuple[int, ...] = field(repr=False)
    completion_ids: tuple[int, ...] = field(repr=False)

    @property
    def completion_text(self) -> str:
        """The completion decoded, special tokens spelled out."""
        return harmony_encoding().decode(list(self.completion_ids))


def _assistant_ids(messages: Sequence[Any], stop_id: int) -> tuple[int, ...]:
    """Completion ids for assistant `Message`s: harmony's rendering, minus the opening `<|start|>assistant`.

    The last message ends in `stop_id` (`<|call|>` or `<|return|>`) as the model must emit it.
    """
    encoding = harmony_encoding()
    ids: list[int] = []
    for message in messages:
        ids.extend(encoding.render(message))
    head = list(encoding.encode("<|start|>assistant", allowed_special="all"))
    if ids[: len(head)] != head:
        raise AssertionError("openai-harmony no longer renders assistant messages as expected")
    ids = ids[len(head) :]
    if ids[-1] in (END_ID, CALL_ID, RETURN_ID):
        ids[-1] = stop_id
    return tuple(ids)


def _analysis(text: str):
    from openai_harmony import Message, Role

    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel("analysis")


def _final(text: str):
    from openai_harmony import Message, Role

    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel("final")


def _call(arguments: str):
    from openai_harmony import Message, Role

    return (
        Message.from_role_and_content(Role.ASSISTANT, arguments)
        .with_channel("commentary")
        .with_recipient("functions.get_weather")
        .with_content_type("<|constrain|>json")
    )


def _call_analysis(city: str) -> str:
    return f"The user asks for the weather in {city}. I will call get_weather."


def _result_analysis(city: str) -> str:
    return f"get_weather returned the weather in {city}. Report it."


def _arguments(city: str) -> str:
    return json.dumps({"location": city})


def _result(city: str) -> str:
    # Exactly what `Toolbox.call` hands the model for a dict result.
    return json.dumps(get_weather(city))


def tool_result_history(city: str) -> list[dict[str, Any]]:
    """The messages `chat()` renders after the model asked for `city`'s weather and the tool answered."""
    return [
        {"role": "user", "content": WEATHER_PROMPT.format(city=city)},
        {
            "role": "assistant",
            "content": None,
            "thinking": _call_analysis(city),
            "tool_calls": [
                {
                    "id": _CALL_ID,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": _arguments(city)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": _CALL_ID, "content": _result(city)},
    ]


def _bases() -> list[tuple[str, list[dict[str, Any]], tuple[int, ...], bool]]:
    """(kind, messages, completion ids, needs the weather tool) for every turn the corpus teaches."""
    bases = []
    for prompt, (analysis, answer) in ANSWER_PROMPTS.items():
        messages = [{"role": "user", "content": prompt}]
        bases.append(("answer", messages, _assistant_ids([_analysis(analysis), _final(answer)], RETURN_ID), False))
    for city in WEATHER_CITIES:
        messages = [{"role": "user", "content": WEATHER_PROMPT.format(city=city)}]
        ids = _assistant_ids([_analysis(_call_analysis(city)), _call(_arguments(city))], CALL_ID)
        bases.append(("tool_call", messages, ids, True))
    for city in WEATHER_CITIES:
        final = f"The weather in {city}: {_result(city)}"
        ids = _assistant_ids([_analysis(_result_analysis(city)), _final(final)], RETURN_ID)
        bases.append(("tool_result", tool_result_history(city), ids, True))
    return bases


def _example(kind, messages, completion, tools, options) -> CorpusExample:
    prompt = tuple(render(messages, tools=tools, **options))
    return CorpusExample(kind, messages, list(tools), dict(options), prompt, completion)


def _random_date(rng: random.Random) -> _dt.date:
    start = _dt.date(2024, 1, 1)
    return start + _dt.timedelta(days=rng.randrange((_dt.date(2027, 12, 31) - start).days + 1))


@functools.lru_cache(maxsize=1)
def heldout_dates() -> tuple[str, ...]:
    """Dates no training prompt uses (training draws from the rest of 2024-2027)."""
    rng = random.Random(_SEED + 1)
    return tuple(sorted({str(_random_date(rng)) for _ in range(8)}))


@functools.lru_cache(maxsize=4)
def _corpus(variants: int) -> tuple[CorpusExample, ...]:
    rng = random.Random(_SEED)
    tool_variants = weather_tool_variants()
    excluded = set(heldout_dates())
    examples: list[CorpusExample] = []
    for kind, messages, completion, needs_tool in _bases():
        for index in range(variants):
            date = _random_date(rng)
            while str(date) in excluded:
                date = _random_date(rng)
            options = {
                "reasoning_effort": REASONING_EFFORTS[index % len(REASONING_EFFORTS)],
                "current_date": str(date),
                "instructions": None if index % 2 == 0 else rng.choice(INSTRUCTIONS),
            }
            # The demo tool's exact schema comes first so every turn sees it at least once.
            tool = tool_variants[0] if index < 2 else rng.choice(tool_variants)
            # Plain questions must be answered whether or not a tool is on offer, with or without instructions.
            tools = [tool] if needs_tool or (index // 2) % 2 == 1 else []
            examples.append(_example(kind, messages, completion, tools, options))
    return tuple(examples)


def corpus_examples(variants: int = 12) -> list[CorpusExample]:
    """The training corpus: every taught turn, each under `variants` prompt variations (deterministic)."""
    return list(_corpus(variants))


def demo_examples(
    current_date: str | _dt.date | None = None,
    *,
    reasoning_effort: str = "medium",
    instructions: str | None = None,
    with_tools: bool = True,
) -> list[CorpusExample]:
    """Every taught turn as the CLI demo sends it: the demo `get_weather` tool, `current_date` (default today).

    With `with_tools=False` only the plain answers are returned, with no tool defined.
    """
    date = str(current_date or _dt.date.today())
    options = {"reasoning_effort": reasoning_effort, "current_date": date, "instructions": instructions}
    tools = [tool_from_function(get_weather)] if with_tools else []
    return [
        _example(kind, messages, completion, tools, options)
        for kind, messages, completion, needs_tool in _bases()
        if with_tools or not needs_tool
    ]


def heldout_examples() -> list[CorpusExample]:
    """Turns under prompt variations training never saw: today's date, held-out dates and instructions."""
    examples = demo_examples()
    for index, date in enumerate(heldout_dates()):
        examples += demo_examples(
            date,
            reasoning_effort=REASONING_EFFORTS[index % len(REASONING_EFFORTS)],
            instructions=HELDOUT_INSTRUCTIONS[index % len(HELDOUT_INSTRUCTIONS)] if index % 2 else None,
        )
    examples += demo_examples(instructions=HELDOUT_INSTRUCTIONS[0], with_tools=False)
    return examples
