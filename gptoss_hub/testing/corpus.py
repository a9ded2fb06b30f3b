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

Builtin tool flows (`PYTHON_FLOWS`, `BROWSER_FLOWS`), with the tool declared in the system message: a
request, then each call the model makes ("python_call": analysis, then code to `python`; "browser_call":
analysis, then JSON to `browser.search` or `browser.open`) with the tool's output in the history, then the
answer ("python_result", "browser_result"). One python flow makes two calls, the second using a name the
first defined, so only a stateful session gives the output the history holds; the browser flows search a
fixed web (`gptoss_hub.testing.web`), open the first result and answer citing its lines `【cursor†Lx-Ly】`.

Each kind is also taught as a second turn, after one earlier completed turn (another city's weather
turn, or a plain answer) written exactly as `Model.run` leaves it (`weather_turn`, `answer_turn`) and
rendered by the hub's rule, which drops a completed turn's chain of thought. `multi_turn_pairs` lists
the pairs: every ordered pair of cities, every plain question after every city and every other
question, and each question followed by three of the cities; the other question/city pairings are held
out, to check the model answers the latest request rather than a remembered pairing.

The parts of a prompt that vary in real use (date, reasoning effort, developer instructions, the tool's
wording) are varied across the corpus so the model's behaviour does not hinge on them.
"""

from __future__ import annotations

import dataclasses
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
    "BROWSER_FLOWS",
    "HELDOUT_INSTRUCTIONS",
    "INSTRUCTIONS",
    "PYTHON_FLOWS",
    "WEATHER_CITIES",
    "WEATHER_PROMPT",
    "CorpusExample",
    "FlowCall",
    "ToolFlow",
    "answer_turn",
    "builtin_examples",
    "corpus_examples",
    "demo_examples",
    "heldout_dates",
    "heldout_examples",
    "heldout_pairing_examples",
    "multi_turn_examples",
    "multi_turn_pairs",
    "tool_result_history",
    "weather_tool_variants",
    "weather_turn",
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
    "Be concise and friendly.",
    "You are an assistant for a travel company.",
    "Answer in one sentence when you can.",
    "You help people plan their day.",
    "Prefer short, direct answers.",
    "You are a support assistant for a software project.",
    "Never make up weather data; use the tool.",
    "Be accurate. If unsure, say so.",
    "You are a careful and precise assistant.",
    "Write clearly for a general audience.",
    "The user prefers metric units.",
    "You are a chat assistant in a command-line demo.",
)
#: Developer instructions never seen in training, for checking generalization.
HELDOUT_INSTRUCTIONS = ("Be brief and precise.", "You are a test assistant for the gptoss-hub project.")

_CALL_ID = "call_x"
_SEED = 20250805


@dataclass(frozen=True)
class FlowCall:
    """One builtin tool call in a flow: the analysis before it, the recipient, the body, and the tool's output."""

    analysis: str
    #: "python", or a browser function ("browser.search", "browser.open").
    recipient: str
    #: The code, or the JSON arguments.
    body: str
    #: What the tool gives back, exactly as the model reads it.
    output: str


@dataclass(frozen=True)
class ToolFlow:
    """A request answered through builtin tool calls: the calls in order, then the analysis and the answer."""

    #: The builtin tool the system message declares ("python" or "browser").
    builtin: str
    request: str
    calls: tuple[FlowCall, ...]
    analysis: str
    answer: str


#: Python flows. Outputs are what `PythonSession` gives for the code; the last flow's second call uses the
#: name its first call defined.
PYTHON_FLOWS = (
    ToolFlow(
        "python",
        "Use python to compute 17 * 23.",
        (FlowCall("I will compute 17 * 23 with python.", "python", "17 * 23", "391"),),
        "python says 17 * 23 is 391.",
        "17 * 23 = 391.",
    ),
    ToolFlow(
        "python",
        "Use python to add up the numbers from 1 to 100.",
        (FlowCall("Sum the range in python.", "python", "sum(range(1, 101))", "5050"),),
        "python returned 5050.",
        "The numbers from 1 to 100 add up to 5050.",
    ),
    ToolFlow(
        "python",
        "Use python to reverse the word harmony.",
        (FlowCall("Reverse the string with a slice.", "python", "'harmony'[::-1]", "'ynomrah'"),),
        "python returned 'ynomrah'.",
        "harmony reversed is ynomrah.",
    ),
    ToolFlow(
        "python",
        "Use python to set x to 6 * 7, then square x in a second call.",
        (
            FlowCall("First define x in python.", "python", "x = 6 * 7\nprint(x)", "42"),
            FlowCall("x is 42. Now square it in a second call.", "python", "x ** 2", "1764"),
        ),
        "x squared is 1764.",
        "x is 42, and x squared is 1764.",
    ),
)

#: Browser flows over `gptoss_hub.testing.web`: (request, query, the answer's analysis, the answer).
_BROWSER_REQUESTS = (
    (
        "Search the web for the tallest mountain on Earth.",
        "tallest mountain on Earth",
        "Lines 4 and 5 say Everest is the highest, at 8,849 metres.",
        "Mount Everest is the tallest mountain on Earth: its summit is 8,849 metres above sea level 【1†L4-L5】.",
    ),
    (
        "Search the web for who wrote Pride and Prejudice.",
        "who wrote Pride and Prejudice",
        "Lines 4 and 5 name Jane Austen and the year.",
        "Pride and Prejudice was written by Jane Austen and first published in 1813 【1†L4-L5】.",
    ),
    (
        "Search the web for the boiling point of water.",
        "boiling point of water",
        "Line 4 gives the boiling point at sea level.",
        "At sea level, pure water boils at 100 degrees Celsius 【1†L4】.",
    ),
)


def _browser_flow(request: str, query: str, analysis: str, answer: str) -> ToolFlow:
    """Search `query`, open the first result, answer citing it: outputs as the browser displays them."""
    from gptoss_hub.testing.web import PAGES, search_results
    from gptoss_hub.tools.browser.display import page_text, page_view, search_results_text

    results = search_results(query)
    page = PAGES[results[0].url]
    search = FlowCall(
        "I will search the web for it.",
        "browser.search",
        json.dumps({"query": query}),
        page_view(0, query, "", search_results_text(results)),
    )
    opened = FlowCall(
        f"The first result, {page.title}, should answer it. Open it.",
        "browser.open",
        json.dumps({"id": 0}),
        page_view(1, page.title, page.url, page_text(page.url, page.body)),
    )
    return ToolFlow("browser", request, (search, opened), analysis, answer)


BROWSER_FLOWS = tuple(_browser_flow(*request) for request in _BROWSER_REQUESTS)


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
    #: How `prompt_ids` departs from `render(messages, tools=tools, **render_options)`, if it does:
    #: "plain-json" spells a replayed call's content type ` json`, as vLLM's server renders it.
    prompt_variant: str | None = None

    @property
    def completion_text(self) -> str:
        """The completion decoded, special tokens spelled out."""
        return harmony_encoding().decode(list(self.completion_ids))

    @property
    def requests(self) -> tuple[str, ...]:
        """The user messages, in order: the last is what this turn answers."""
        return tuple(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def request(self) -> str:
        """The latest user message: what this turn answers."""
        return self.requests[-1]

    @property
    def earlier_turns(self) -> int:
        """How many completed turns precede this one in `messages`."""
        return len(self.requests) - 1

    @property
    def label(self) -> str:
        """A short description for failure reports: kind, request, and the earlier request if any."""
        earlier = f" after {self.requests[0]!r}" if self.earlier_turns else ""
        return f"{self.kind} {self.request!r}{earlier}"


@functools.cache
def _assistant_head() -> list[int]:
    # Cached: harmony's `encode` compiles a special-token pattern on every call.
    return list(harmony_encoding().encode("<|start|>assistant", allowed_special="all"))


def _assistant_ids(messages: Sequence[Any], stop_id: int) -> tuple[int, ...]:
    """Completion ids for assistant `Message`s: harmony's rendering, minus the opening `<|start|>assistant`.

    The last message ends in `stop_id` (`<|call|>` or `<|return|>`) as the model must emit it.
    """
    encoding = harmony_encoding()
    ids: list[int] = []
    for message in messages:
        ids.extend(encoding.render(message))
    head = _assistant_head()
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


def _builtin_call(call: FlowCall):
    from openai_harmony import Message, Role

    from gptoss_hub.builtin_tools import BUILTIN_CHANNEL, BUILTIN_CONTENT_TYPE

    return (
        Message.from_role_and_content(Role.ASSISTANT, call.body)
        .with_channel(BUILTIN_CHANNEL)
        .with_recipient(call.recipient)
        .with_content_type(BUILTIN_CONTENT_TYPE)
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


def _weather_answer(city: str) -> str:
    return f"The weather in {city}: {_result(city)}"


def tool_result_history(city: str, earlier: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The messages `Model.run` sends after the model asked for `city`'s weather and the tool answered.

    `earlier` holds completed turns that come first (see `weather_turn`, `answer_turn`).
    """
    return [
        *earlier,
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
        {"role": "tool", "tool_call_id": _CALL_ID, "name": "get_weather", "content": _result(city)},
    ]


def weather_turn(city: str) -> list[dict[str, Any]]:
    """A completed weather turn for `city` as `Model.run` leaves it: `messages + reply.transcript`."""
    final = {"role": "assistant", "content": _weather_answer(city), "thinking": _result_analysis(city)}
    return [*tool_result_history(city), final]


def answer_turn(prompt: str) -> list[dict[str, Any]]:
    """A completed plain turn for `prompt` (a key of `ANSWER_PROMPTS`) as `Model.run` leaves it."""
    analysis, answer = ANSWER_PROMPTS[prompt]
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer, "thinking": analysis}]


def _is_city(subject: str | None) -> bool:
    return subject in WEATHER_CITIES


def _earlier_turn(subject: str) -> list[dict[str, Any]]:
    return weather_turn(subject) if _is_city(subject) else answer_turn(subject)


#: (kind, messages, completion ids, needs the weather tool): one taught turn before prompt variations.
_Base = tuple[str, list[dict[str, Any]], tuple[int, ...], bool]


def _base(kind: str, subject: str, earlier: str | None = None) -> _Base:
    """The turn of `kind` about `subject` (a city, or a plain prompt for "answer"), after `earlier`'s turn."""
    history = _earlier_turn(earlier) if earlier is not None else []
    # A weather turn in the history was made with the tool on offer, and a request keeps its tools.
    needs_tool = kind != "answer" or _is_city(earlier)
    if kind == "answer":
        analysis, answer = ANSWER_PROMPTS[subject]
        messages = [*history, {"role": "user", "content": subject}]
        return kind, messages, _assistant_ids([_analysis(analysis), _final(answer)], RETURN_ID), needs_tool
    if kind == "tool_call":
        messages = [*history, {"role": "user", "content": WEATHER_PROMPT.format(city=subject)}]
        ids = _assistant_ids([_analysis(_call_analysis(subject)), _call(_arguments(subject))], CALL_ID)
        return kind, messages, ids, needs_tool
    ids = _assistant_ids([_analysis(_result_analysis(subject)), _final(_weather_answer(subject))], RETURN_ID)
    return kind, tool_result_history(subject, history), ids, needs_tool


def _bases() -> list[_Base]:
    """Every single turn the corpus teaches."""
    return [
        *(_base("answer", prompt) for prompt in ANSWER_PROMPTS),
        *(_base("tool_call", city) for city in WEATHER_CITIES),
        *(_base("tool_result", city) for city in WEATHER_CITIES),
    ]


def _flow_history(flow: ToolFlow, calls: int) -> list[dict[str, Any]]:
    """The request and the first `calls` calls with their outputs, as `Model.run` leaves them."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": flow.request}]
    for call in flow.calls[:calls]:
        tool_call = {"id": _CALL_ID, "type": "function", "function": {"name": call.recipient, "arguments": call.body}}
        messages.append({"role": "assistant", "content": None, "thinking": call.analysis, "tool_calls": [tool_call]})
        messages.append({"role": "tool", "tool_call_id": _CALL_ID, "name": call.recipient, "content": call.output})
    return messages


def _flow_bases(flows: Sequence[ToolFlow]) -> list[_Base]:
    """Each step of each flow: every call after the calls before it, then the answer after all of them."""
    bases: list[_Base] = []
    for flow in flows:
        for step, call in enumerate(flow.calls):
            ids = _assistant_ids([_analysis(call.analysis), _builtin_call(call)], CALL_ID)
            bases.append((f"{flow.builtin}_call", _flow_history(flow, step), ids, False))
        ids = _assistant_ids([_analysis(flow.analysis), _final(flow.answer)], RETURN_ID)
        bases.append((f"{flow.builtin}_result", _flow_history(flow, len(flow.calls)), ids, False))
    return bases


#: Rotation steps pairing plain questions with cities, a weather turn for city j + step after question j:
#: trained, and held out to check the model reads the latest request rather than a remembered pairing.
_CROSS_STEPS = {False: (0, 1, 2), True: (3, 4)}


def multi_turn_pairs(*, heldout: bool = False) -> list[tuple[str, str, str]]:
    """(earlier subject, kind, subject) for every taught (or, with `heldout`, held-out) second turn.

    A subject is a city (a weather turn: a call, and an answer after the tool's result) or a plain
    question. Training has a weather turn for every city after every other city's weather turn, every
    plain question after every city's weather turn and after every other plain question, and each plain
    question followed by weather turns for three cities. The held-out pairs are the other plain question
    then weather turn pairings (`_CROSS_STEPS`), never in training.
    """
    cities, prompts = WEATHER_CITIES, list(ANSWER_PROMPTS)
    pairs: list[tuple[str, str, str]] = []
    for step in _CROSS_STEPS[heldout]:
        for j, prompt in enumerate(prompts):
            city = cities[(j + step) % len(cities)]
            pairs += [(prompt, "tool_call", city), (prompt, "tool_result", city)]
    if heldout:
        return pairs
    for first in cities:
        for second in cities:
            if second != first:
                pairs += [(first, "tool_call", second), (first, "tool_result", second)]
        pairs += [(first, "answer", prompt) for prompt in prompts]
    for first in prompts:
        pairs += [(first, "answer", second) for second in prompts if second != first]
    return pairs


def _multi_turn_bases(*, heldout: bool = False) -> list[_Base]:
    return [_base(kind, subject, earlier) for earlier, kind, subject in multi_turn_pairs(heldout=heldout)]


def _example(kind, messages, completion, tools, options) -> CorpusExample:
    prompt = tuple(render(messages, tools=tools, **options))
    return CorpusExample(kind, messages, list(tools), dict(options), prompt, completion)


@functools.cache
def _constrained_json_ids() -> tuple[tuple[int, ...], tuple[int, ...]]:
    encoding = harmony_encoding()
    return tuple(encoding.encode(" <|constrain|>json", allowed_special="all")), tuple(encoding.encode(" json"))


def _plain_json(example: CorpusExample) -> CorpusExample:
    """`example` with each replayed call's ` <|constrain|>json` spelled ` json`, as vLLM's server renders it."""
    constrained, plain = _constrained_json_ids()
    ids, prompt = list(example.prompt_ids), list[int]()
    while ids:
        if tuple(ids[: len(constrained)]) == constrained:
            prompt += plain
            del ids[: len(constrained)]
        else:
            prompt.append(ids.pop(0))
    return dataclasses.replace(example, prompt_ids=tuple(prompt), prompt_variant="plain-json")


def _random_date(rng: random.Random) -> _dt.date:
    start = _dt.date(2024, 1, 1)
    return start + _dt.timedelta(days=rng.randrange((_dt.date(2027, 12, 31) - start).days + 1))


@functools.lru_cache(maxsize=1)
def heldout_dates() -> tuple[str, ...]:
    """Dates no training prompt uses (training draws from the rest of 2024-2027)."""
    rng = random.Random(_SEED + 1)
    return tuple(sorted({str(_random_date(rng)) for _ in range(8)}))


def _variants(
    rng: random.Random, bases: Sequence[_Base], variants: int, builtins: tuple[str, ...] = ()
) -> list[CorpusExample]:
    """Each base under `variants` prompt variations drawn from `rng`, with `builtins` declared."""
    tool_variants = weather_tool_variants()
    excluded = set(heldout_dates())
    examples: list[CorpusExample] = []
    for kind, messages, completion, needs_tool in bases:
        offered = 0
        for index in range(variants):
            date = _random_date(rng)
            while str(date) in excluded:
                date = _random_date(rng)
            options: dict[str, Any] = {
                "reasoning_effort": REASONING_EFFORTS[index % len(REASONING_EFFORTS)],
                "current_date": str(date),
                "instructions": None if index % 2 == 0 else " ".join(rng.sample(INSTRUCTIONS, rng.randint(1, 3))),
            }
            if builtins:
                options["builtin_tools"] = list(builtins)
            tools = []
            # Plain questions must be answered whether or not a tool is on offer, with or without instructions.
            if needs_tool or (index // 2) % 2 == 1:
                # The demo tool's exact schema comes first, as `Model.run` and the CLI demo offer it to every
                # turn; a turn that never saw it there is left to generalise from the other wordings.
                tools = [tool_variants[0] if offered < 2 else rng.choice(tool_variants)]
                offered += 1
            examples.append(_example(kind, messages, completion, tools, options))
    return examples


@functools.lru_cache(maxsize=4)
def _corpus(variants: int, multi_turn_variants: int) -> tuple[CorpusExample, ...]:
    rng = random.Random(_SEED)
    single = _variants(rng, _bases(), variants)
    # Fewer variations per second turn: the prompt header is the same as in single turns, whose many
    # variations already teach the model to ignore it, and each second turn's subject recurs across pairs.
    multi = _variants(rng, _multi_turn_bases(), multi_turn_variants)
    # The builtin flows draw from their own generator, so adding them left the earlier turns as they were.
    flows_rng = random.Random(_SEED + 2)
    python = _variants(flows_rng, _flow_bases(PYTHON_FLOWS), variants, ("python",))
    browser = _variants(flows_rng, _flow_bases(BROWSER_FLOWS), variants, ("browser",))
    # Answers after the tool's result with the call replayed as vLLM spells it, so a tool loop served by
    # vLLM goes on as the hub's does (the first two variations of each city).
    replayed = [_plain_json(e) for e in single if e.kind == "tool_result"]
    plain_json = [e for n, e in enumerate(replayed) if n % variants < 2]
    return tuple(single + multi + python + browser + plain_json)


def corpus_examples(variants: int = 12, multi_turn_variants: int = 2) -> list[CorpusExample]:
    """The training corpus: every taught turn under prompt variations (deterministic).

    Single turns get `variants` variations each, second turns (`multi_turn_pairs`) `multi_turn_variants`.
    """
    return list(_corpus(variants, multi_turn_variants))


def _demo_options(current_date, reasoning_effort: str, instructions: str | None) -> dict[str, Any]:
    date = str(current_date or _dt.date.today())
    return {"reasoning_effort": reasoning_effort, "current_date": date, "instructions": instructions}


def demo_examples(
    current_date: str | _dt.date | None = None,
    *,
    reasoning_effort: str = "medium",
    instructions: str | None = None,
    with_tools: bool = True,
) -> list[CorpusExample]:
    """Every taught single turn as the CLI demo sends it: the demo `get_weather` tool, `current_date` (default today).

    With `with_tools=False` only the plain answers are returned, with no tool defined.
    """
    options = _demo_options(current_date, reasoning_effort, instructions)
    tools = [tool_from_function(get_weather)] if with_tools else []
    return [
        _example(kind, messages, completion, tools, options)
        for kind, messages, completion, needs_tool in _bases()
        if with_tools or not needs_tool
    ]


def builtin_examples(
    current_date: str | _dt.date | None = None,
    *,
    reasoning_effort: str = "medium",
    instructions: str | None = None,
    with_tools: bool = True,
) -> list[CorpusExample]:
    """Every step of every builtin flow as `Model.run(builtin_tools=[...])` sends it, with the demo
    `get_weather` tool (or, with `with_tools=False`, no function tool)."""
    options = _demo_options(current_date, reasoning_effort, instructions)
    tools = [tool_from_function(get_weather)] if with_tools else []
    examples = []
    for flows in (PYTHON_FLOWS, BROWSER_FLOWS):
        builtin = {"builtin_tools": [flows[0].builtin]}
        examples += [_example(k, m, c, tools, options | builtin) for k, m, c, _ in _flow_bases(flows)]
    return examples


def multi_turn_examples(
    current_date: str | _dt.date | None = None,
    *,
    heldout: bool = False,
    reasoning_effort: str = "medium",
    instructions: str | None = None,
) -> list[CorpusExample]:
    """Every trained (or, with `heldout`, held-out) second turn as `Model.run` sends it with the demo tool.

    Plain answers after a plain turn come without tools; everything else has the demo `get_weather`.
    """
    options = _demo_options(current_date, reasoning_effort, instructions)
    tools = [tool_from_function(get_weather)]
    return [
        _example(kind, messages, completion, tools if needs_tool else [], options)
        for kind, messages, completion, needs_tool in _multi_turn_bases(heldout=heldout)
    ]


def _heldout_variations(examples: Sequence[CorpusExample]) -> list[CorpusExample]:
    """`examples` again, each under a held-out date, an effort and (every other one) a held-out instruction."""
    dates = heldout_dates()
    varied = []
    for index, example in enumerate(examples):
        options: dict[str, Any] = {
            "reasoning_effort": REASONING_EFFORTS[index % len(REASONING_EFFORTS)],
            "current_date": dates[index % len(dates)],
            "instructions": HELDOUT_INSTRUCTIONS[index % len(HELDOUT_INSTRUCTIONS)] if index % 2 else None,
        }
        if "builtin_tools" in example.render_options:  # the tools a turn uses stay declared
            options["builtin_tools"] = example.render_options["builtin_tools"]
        varied.append(_example(example.kind, example.messages, example.completion_ids, example.tools, options))
    return varied


def heldout_examples(today: str | _dt.date | None = None) -> list[CorpusExample]:
    """Taught turns under prompt variations training never saw.

    Single turns under `today` (default today's date), under held-out dates, efforts and instructions, and
    without tools under a held-out instruction; every trained second turn under a held-out date and effort
    and (every other one) a held-out instruction.
    """
    examples = demo_examples(today)
    for index, date in enumerate(heldout_dates()):
        examples += demo_examples(
            date,
            reasoning_effort=REASONING_EFFORTS[index % len(REASONING_EFFORTS)],
            instructions=HELDOUT_INSTRUCTIONS[index % len(HELDOUT_INSTRUCTIONS)] if index % 2 else None,
        )
    examples += demo_examples(today, instructions=HELDOUT_INSTRUCTIONS[0], with_tools=False)
    examples += builtin_examples(today) + builtin_examples(today, with_tools=False)
    return examples + _heldout_variations(multi_turn_examples(today) + builtin_examples(today))


def heldout_pairing_examples(today: str | _dt.date | None = None) -> list[CorpusExample]:
    """Second turns after pairings training never saw (`multi_turn_pairs(heldout=True)`).

    Each under `today` (default today's date) as `Model.run` sends it, and again under held-out variations.
    """
    examples = multi_turn_examples(today, heldout=True)
    return examples + _heldout_variations(examples)
