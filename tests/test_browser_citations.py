"""Citations: markers become links with url_citation spans, in whole text and in streamed deltas."""

from __future__ import annotations

from gptoss_hub.testing.corpus import BROWSER_FLOWS
from gptoss_hub.testing.web import fixture_web
from gptoss_hub.tools.browser import Browser
from gptoss_hub.tools.browser.citations import CitationStream, cite

PAGES = {1: ("http://books.example.org/p", "Book Notes"), 2: ("https://x.example.com/a?b=1", "X")}


def _source(cursor):
    return PAGES.get(cursor)


def test_a_marker_of_a_known_page_becomes_a_link_with_its_span():
    text, citations = cite("Austen wrote it 【1†L4-L5】.", _source)
    assert text == "Austen wrote it ([books.example.org](http://books.example.org/p))."
    (citation,) = citations
    assert text[citation.start_index : citation.end_index] == "([books.example.org](http://books.example.org/p))"
    assert (citation.type, citation.url, citation.title) == (
        "url_citation",
        "http://books.example.org/p",
        "Book Notes",
    )


def test_several_markers_keep_their_spans_right_and_unknown_cursors_stay_as_written():
    text, citations = cite("A 【1†L1】 b 【7†L2】 c 【2†L3-L9†x.example.com】 d 【0†L1】", _source)
    assert "【7†L2】" in text and "【0†L1】" in text  # no such page; a page with no address
    assert [text[c.start_index : c.end_index] for c in citations] == [
        "([books.example.org](http://books.example.org/p))",
        "([x.example.com](https://x.example.com/a?b=1))",
    ]


def test_text_without_markers_is_unchanged():
    assert cite("No sources here 【 nor here】.", _source) == ("No sources here 【 nor here】.", [])


def test_a_stream_never_shows_half_a_marker_and_ends_with_the_same_text():
    whole = "Austen wrote it 【1†L4-L5】 and more 【2†L1】."
    expected_text, expected_citations = cite(whole, _source)
    for size in (1, 2, 3, 7):
        stream = CitationStream(_source)
        shown, citations = [], []
        for start in range(0, len(whole), size):
            text, found = stream.feed(whole[start : start + size])
            assert "【" not in text, "half a marker was shown"
            shown.append(text)
            citations += found
        text, found = stream.finish()
        shown.append(text)
        citations += found
        assert "".join(shown) == expected_text and citations == expected_citations


def test_a_stream_shows_an_unfinished_marker_at_the_end_and_never_holds_back_much():
    stream = CitationStream(_source)
    assert stream.feed("Open bracket 【1†L") == ("Open bracket ", [])
    assert stream.finish() == ("【1†L", [])
    long = CitationStream(_source)
    text, _ = long.feed("【1†" + "x" * 300)
    assert text.startswith("【1†x")  # not a marker after all: shown


def test_run_turns_the_answers_citations_into_links_and_keeps_the_models_words_for_history():
    from scripted import ScriptedEngine, scripted_model

    flow = BROWSER_FLOWS[1]
    calls = [f"<|channel|>analysis to={c.recipient} code<|message|>{c.body}<|call|>" for c in flow.calls]
    engine = ScriptedEngine(*calls, f"<|channel|>final<|message|>{flow.answer}<|return|>")
    reply = scripted_model(engine).run(
        [{"role": "user", "content": flow.request}], browser=Browser(fixture_web(), fixture_web())
    )
    url = "http://books.example.org/pride-and-prejudice"
    assert reply.content == flow.answer.replace("【1†L4-L5】", f"([books.example.org]({url}))")
    (citation,) = reply.citations
    assert (citation.url, citation.title) == (url, "Pride and Prejudice - Book Notes")
    assert reply.content[citation.start_index : citation.end_index].endswith(f"({url}))")
    assert reply.message["content"] == flow.answer == reply.transcript[-1]["content"]  # the model's own words
