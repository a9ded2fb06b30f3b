"""Property-based tests of the harmony reply parser (`ReplyParser`, `parse`), and a smoke run of the benchmark.

The example tests in `test_harmony_parse.py` pin down what known slips must give; these generate thousands
of completions to check what must hold for *any* model output:

- whatever ids come in, the parser never raises, keeps the raw ids and reports an allowed finish reason;
- damage anywhere never costs a message that was complete before it;
- streaming and batch parsing agree, and the streamed deltas add up to the reply;
- well-formed completions from a small harmony grammar parse exactly, with no error.

Sizes are kept modest (a few hundred examples per property) so the file stays fast on a small CI runner.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from benchmark_scripts import load_benchmark
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptoss_hub.encoding import VOCAB_SIZE, harmony_encoding
from gptoss_hub.events import (
    ContentDelta,
    Done,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
)
from gptoss_hub.harmony import ReplyParser, parse
from gptoss_hub.reply import Reply

FINISH_REASONS = {"stop", "tool_calls", "length", "error"}
ERROR_CODES = {"unexpected_token", "malformed_header", "truncated", "invalid_tool_arguments"}

# Shared by every property. `deadline=None` because the first example pays for loading the encoding; the
# too_slow health check is off for the same reason (generation itself is cheap). For a longer soak after
# changing the parser: GPTOSS_HUB_PROPERTY_EXAMPLES=5000 pytest tests/test_harmony_properties.py
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("GPTOSS_HUB_PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _special(text: str) -> list[int]:
    """Ids of harmony markup (special tokens spelled out), the way the model emits it."""
    return harmony_encoding().encode(text, allowed_special="all")


def _plain(text: str) -> list[int]:
    """Ids of free text: a literal `<|end|>` in a message is text, not a special token."""
    return harmony_encoding().encode(text, disallowed_special=())


START, END, RETURN, CALL, CHANNEL, MESSAGE, CONSTRAIN = (
    _special(s)[0]
    for s in ("<|start|>", "<|end|>", "<|return|>", "<|call|>", "<|channel|>", "<|message|>", "<|constrain|>")
)
TERMINATORS = (END, RETURN, CALL)

# Every id in 200000..200012 (the harmony specials and the reserved ids between them), plus
# <|startoftext|>/<|endoftext|>, which o200k has but harmony never uses.
SPECIAL_IDS = [*range(199_998, 200_013)]
# Pieces of harmony headers and tool-call JSON: the ids most likely to reach odd parser states.
HEADER_IDS = sorted(
    {
        *_plain("assistant"),
        *_plain(" to=functions.f"),
        *_plain("to=functions.get_weather"),
        *_plain("analysis"),
        *_plain("final"),
        *_plain("commentary"),
        *_plain(" commentary"),
        *_plain("json"),
        *_plain(" json"),
        *_plain("{"),
        *_plain("}"),
        *_plain('{"a": 1}'),
        *_plain(" "),
        *_plain("user"),
        *_plain("functions"),
    }
)
TEXT_IDS = sorted({*_plain("Hello, world. The answer is 42.\n"), *_plain("日本語 🎉 héllo")})

# One id for each way a model could go wrong, weighted towards the markup that steers the parser.
any_token = st.one_of(
    st.sampled_from(SPECIAL_IDS),
    st.sampled_from([START, END, RETURN, CALL, CHANNEL, MESSAGE, CONSTRAIN]),
    st.sampled_from(HEADER_IDS),
    st.sampled_from(TEXT_IDS),
    st.integers(0, VOCAB_SIZE - 1),
)
finish_reasons = st.sampled_from([None, "stop", "length"])


# -- a small grammar of well-formed completions ----------------------------------------------------------

# Fragments rather than raw characters so multi-byte text (accents, CJK, emoji, ZWJ sequences split across
# several tokens) and harmony-looking words show up often; arbitrary unicode covers the rest.
_FRAGMENTS = [
    "Hello",
    " world",
    ".",
    " ",
    "\n",
    "42",
    "é",
    "naïve",
    "日本語",
    "Жук",
    "🎉",
    "👩\u200d👩\u200d👧",
    "assistant",
    " to=functions.f",
    "json",
    "{",
    "}",
    "<|end|>",  # as text: `_plain` encodes it as ordinary tokens
]
texts = st.one_of(
    st.lists(st.sampled_from(_FRAGMENTS), max_size=8).map("".join),
    st.text(st.characters(codec="utf-8"), max_size=20),
)
# what `ToolSpec` accepts as a name (dots and dashes included: they must survive the header parse)
tool_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,11}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
json_arguments = st.builds(
    lambda value, ascii_only: json.dumps(value, ensure_ascii=ascii_only),
    st.dictionaries(texts, json_values, max_size=3),
    st.booleans(),
)


@dataclass(frozen=True)
class Msg:
    """One message of a generated completion and where its ids lie."""

    channel: str
    text: str
    recipient: str | None
    first: int  # index of the message's first id in the completion
    last: int  # index of its terminator (<|end|>, <|return|> or <|call|>)


@dataclass(frozen=True)
class Completion:
    """A well-formed completion: its ids and the messages they spell."""

    ids: list[int]
    messages: list[Msg]

    @property
    def reasoning(self) -> str:
        return "".join(m.text for m in self.messages if m.channel == "analysis")

    @property
    def content(self) -> str:
        # final answers and commentary preambles (commentary with no recipient) are shown to the user
        return "".join(m.text for m in self.messages if m.recipient is None and m.channel != "analysis")

    @property
    def calls(self) -> list[tuple[str, str]]:
        return [(m.recipient.removeprefix("functions."), m.text) for m in self.messages if m.recipient]


# The header layouts models emit for a call; `{start}` is "<|start|>assistant" except on the first message,
# whose role header is the end of the prompt. All four are in harmony's grammar as the hub accepts it.
_CALL_HEADERS = [
    "{start}<|channel|>commentary to={r} <|constrain|>json",
    "{start}<|channel|>commentary to={r}<|constrain|>json",
    "{start} to={r}<|channel|>commentary <|constrain|>json",
    "{start} to={r}<|channel|>commentary",
]


@st.composite
def completions(draw) -> Completion:
    """Zero to three analysis messages or commentary preambles, then a final answer or a tool call."""
    bodies: list[tuple[str, str, str | None, str]] = []  # (channel, text, recipient, header layout)
    for _ in range(draw(st.integers(0, 3))):
        channel = draw(st.sampled_from(["analysis", "commentary"]))
        bodies.append((channel, draw(texts), None, "{start}<|channel|>" + channel))
    if draw(st.booleans()):
        bodies.append(("final", draw(texts), None, "{start}<|channel|>final"))
        terminal = RETURN
    else:
        recipient = "functions." + draw(tool_names)
        bodies.append(("commentary", draw(json_arguments), recipient, draw(st.sampled_from(_CALL_HEADERS))))
        terminal = CALL
    ids: list[int] = []
    messages: list[Msg] = []
    for index, (channel, text, recipient, layout) in enumerate(bodies):
        first = len(ids)
        header = layout.format(start="<|start|>assistant" if index else "", r=recipient)
        ids += _special(header + "<|message|>") + _plain(text)
        ids.append(terminal if index == len(bodies) - 1 else END)
        messages.append(Msg(channel, text, recipient, first, len(ids) - 1))
    return Completion(ids, messages)


@st.composite
def mutated_completions(draw) -> tuple[Completion, list[int]]:
    """A well-formed completion with one to three ids inserted, deleted, replaced or duplicated."""
    completion = draw(completions())
    ids = list(completion.ids)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if op == "insert" or not ids:
            ids.insert(draw(st.integers(0, len(ids))), draw(any_token))
            continue
        at = draw(st.integers(0, len(ids) - 1))
        if op == "delete":
            del ids[at]
        elif op == "replace":
            ids[at] = draw(any_token)
        else:
            ids.insert(at + 1, ids[at])
    return completion, ids


# -- helpers ---------------------------------------------------------------------------------------------


def _stream(ids: list[int], finish_reason=None) -> tuple[list, Reply]:
    """Feed `ids` one at a time, as a backend does; return every event and the final reply."""
    parser = ReplyParser()
    events = [event for token in ids for event in parser.feed(token)]
    events += parser.finish(finish_reason)
    assert sum(isinstance(e, Done) for e in events) == 1 and isinstance(events[-1], Done)
    return events, events[-1].reply


def _without_call_ids(reply: Reply) -> dict:
    """The reply as a dict, minus the tool-call ids, which are random per parse."""
    dump = reply.model_dump()
    for call in dump["tool_calls"]:
        call.pop("id")
    return dump


def _text_of(harmony_message: dict) -> str:
    return "".join(part.get("text", "") for part in harmony_message["content"])


def _first_difference(a: list[int], b: list[int]) -> int:
    """The first index where `a` and `b` differ (the shorter length if one is a prefix of the other)."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _assert_well_formed(reply: Reply, ids: list[int]) -> None:
    assert isinstance(reply, Reply)
    assert reply.token_ids == ids
    assert reply.finish_reason in FINISH_REASONS
    if reply.error is not None:
        assert reply.error.code in ERROR_CODES
        assert reply.error.token_index is None or 0 <= reply.error.token_index < max(len(ids), 1)
    if reply.finish_reason == "error":
        assert reply.error is not None


def _assert_events_add_up(events: list, reply: Reply) -> None:
    """What `events.py` promises: the deltas concatenate to the reply, each call is started, fed, done."""
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == reply.reasoning
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == reply.content
    assert [e.tool_call for e in events if isinstance(e, ToolCallDone)] == reply.tool_calls
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(s.id, s.name) for s in started] == [(c.id, c.name) for c in reply.tool_calls]
    for call in reply.tool_calls:
        streamed = "".join(e.text for e in events if isinstance(e, ToolCallArgumentsDelta) and e.id == call.id)
        assert streamed == call.raw_arguments


# -- properties ------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(ids=st.lists(any_token, max_size=40), finish_reason=finish_reasons)
def test_random_ids_never_raise(ids, finish_reason):
    """Any ids at all: no exception, the raw ids kept, an allowed finish reason, events that add up."""
    events, streamed = _stream(ids, finish_reason)
    _assert_well_formed(streamed, ids)
    _assert_events_add_up(events, streamed)
    batch = parse(ids, finish_reason)
    _assert_well_formed(batch, ids)
    assert _without_call_ids(batch) == _without_call_ids(streamed)


@PROPERTY_SETTINGS
@given(completion=completions())
def test_valid_completions_parse_exactly(completion):
    """A well-formed completion parses without error into exactly the messages it was built from."""
    reply = parse(completion.ids)
    # an engine that reports the stop itself must get the same reply
    assert _without_call_ids(parse(completion.ids, "stop")) == _without_call_ids(reply)
    assert reply.error is None, reply.error
    assert reply.finish_reason == ("tool_calls" if completion.calls else "stop")
    assert reply.reasoning == completion.reasoning
    assert reply.content == completion.content
    assert [(c.name, c.raw_arguments) for c in reply.tool_calls] == completion.calls
    assert [c.arguments for c in reply.tool_calls] == [json.loads(text) for _, text in completion.calls]
    assert [(m["channel"], _text_of(m), m.get("recipient")) for m in reply.harmony] == [
        (m.channel, m.text, m.recipient) for m in completion.messages
    ]


@PROPERTY_SETTINGS
@given(completion=completions())
def test_streaming_equals_batch(completion):
    """Streamed deltas add up to the reply, and `parse` gives the same reply as feeding id by id."""
    events, streamed = _stream(completion.ids)
    _assert_events_add_up(events, streamed)
    assert (streamed.reasoning, streamed.content) == (completion.reasoning, completion.content)
    assert _without_call_ids(parse(completion.ids)) == _without_call_ids(streamed)


@PROPERTY_SETTINGS
@given(case=mutated_completions(), finish_reason=finish_reasons)
def test_damage_never_loses_earlier_messages(case, finish_reason):
    """Bad ids never cost a message that was complete before the first of them, and never raise."""
    completion, ids = case
    events, reply = _stream(ids, finish_reason)
    _assert_well_formed(reply, ids)
    _assert_events_add_up(events, reply)

    damage = _first_difference(completion.ids, ids)
    intact = [m for m in completion.messages if m.last < damage]
    assert len(reply.harmony) >= len(intact)
    for message, parsed in zip(intact, reply.harmony[: len(intact)], strict=True):
        assert (parsed["channel"], _text_of(parsed), parsed.get("recipient")) == (
            message.channel,
            message.text,
            message.recipient,
        )
    kept = Completion(completion.ids, intact)
    assert reply.reasoning.startswith(kept.reasoning)
    assert reply.content.startswith(kept.content)
    assert [(c.name, c.raw_arguments) for c in reply.tool_calls[: len(kept.calls)]] == kept.calls


# -- bugs found while writing these, each as one example (they fail until parse.py is fixed) ------------------------------------------


def test_repeated_role_header_is_not_taken_for_a_tool_call():
    """A completion that repeats the prompt's trailing `<|start|>assistant` must not become a tool call.

    The first message is parsed in the HEADER state with the role already known, so `<|start|>assistant`
    is read as header text, i.e. as the recipient; `_is_tool_call` then routes the final answer as a call to
    a function named "<|start|>assistant" (finish_reason "tool_calls", error "invalid_tool_arguments").
    The text is still in `reply.harmony`, but it is missing from `content` and a tool loop would try to
    call that function.
    """
    reply = parse(_special("<|start|>assistant<|channel|>final<|message|>Hi!<|return|>"))
    assert [call.name for call in reply.tool_calls] == []
    assert reply.content == "Hi!"


def _best_parse_seconds(ids: list[int], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        parse(ids)
        best = min(best, time.perf_counter() - started)
    return best


def test_parse_time_grows_linearly_with_message_length():
    """Parsing one long message must cost the same per token as a short one (streaming depends on it).

    `ReplyParser` reads `StreamableParser.state` (twice per id), which openai-harmony computes by
    serialising its whole state, the current message's tokens included, to JSON: every id costs time in
    proportion to the length of the message so far, and a parse is quadratic. 8x the ids cost ~50x the
    time today (~0.9 s for 4,000 tokens, ~23 s for 20,000), where linear is 8x; the bound leaves 2.5x room
    for timer noise.
    """
    short = _special("<|channel|>analysis<|message|>") + _plain("Weigh it, step by step. " * 50)
    long = _special("<|channel|>analysis<|message|>") + _plain("Weigh it, step by step. " * 400)
    ratio = _best_parse_seconds(long, 2) / _best_parse_seconds(short, 3)
    assert ratio < 8 * 2.5, f"parsing {len(long)} ids took {ratio:.0f}x as long as {len(short)} ids"


# -- the benchmark must keep running ---------------------------------------------------------------------


def _load_benchmark():
    return load_benchmark("harmony_render")


def test_benchmark_runs_and_reports_its_figures(capsys):
    """Run `benchmarks/harmony_render.py` with tiny counts: it must return every figure (sizes unchecked)."""
    benchmark = _load_benchmark()
    results = benchmark.main(["--iterations", "2", "--parse-tokens", "300"])
    for name in (
        "hub_us_per_message",
        "build_us_per_message",
        "harmony_us_per_message",
        "overhead_ratio",
        "parse_tokens_per_s",
        "short_parse_tokens_per_s",
    ):
        value = getattr(results, name)
        assert isinstance(value, float) and value > 0, name
    assert results.messages == 50
    assert "hub render" in capsys.readouterr().out
