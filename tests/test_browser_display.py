"""The browser's page display: each rule of the format gpt-oss reads pages in, on fixtures."""

from __future__ import annotations

import pytest

from gptoss_hub.encoding import harmony_encoding
from gptoss_hub.tools.browser import SearchResult, link_marker, page_text, page_view, search_results_text, wrap_lines
from gptoss_hub.tools.browser.display import VIEW_TOKENS, view_end


def test_lines_wrap_at_80_characters_keeping_whitespace_and_empty_lines():
    text = "word " * 30 + "\n\n  indented"
    lines = wrap_lines(text)
    assert all(len(line) <= 80 for line in lines)
    assert "".join(lines[:-2]) == "word " * 30  # nothing dropped, spaces included
    assert lines[-2:] == ["", "  indented"]


def test_a_view_has_the_cursor_title_url_scroll_position_and_numbered_lines():
    text = page_text("https://example.com/a%20b", "First line.\nSecond line.")
    assert page_view(3, "Example", "https://example.com/a%20b", text) == (
        "[3] Example (https://example.com/a b)\n"
        "**viewing lines [0 - 3] of 3**\n\n"
        "L0: \nL1: URL: https://example.com/a%20b\nL2: First line.\nL3: Second line."
    )


def test_a_view_can_start_anywhere_and_show_a_number_of_lines():
    text = "\n".join(f"line {n}" for n in range(10))
    view = page_view(0, "T", "https://example.com", text, loc=4, num_lines=3)
    assert view.splitlines()[1] == "**viewing lines [4 - 6] of 9**"
    assert view.splitlines()[3:] == ["L4: line 4", "L5: line 5", "L6: line 6"]
    with pytest.raises(ValueError, match=r"Invalid location parameter: `10`\. Cannot exceed page maximum of 9\."):
        page_view(0, "T", "https://example.com", text, loc=10)


def test_a_long_page_is_shown_about_1024_tokens_at_a_time():
    lines = wrap_lines("\n".join(f"Sentence number {n} of a long page about mountains." for n in range(400)))
    end = view_end(lines, 0)
    encoding = harmony_encoding()
    numbered = "\n".join(f"L{n}: {line}" for n, line in enumerate(lines[:end]))
    shown = len(encoding.encode(numbered, disallowed_special=()))
    without_last = len(encoding.encode(numbered.rsplit("\n", 1)[0], disallowed_special=()))
    # The view ends with the line that holds the token past the window, and no later.
    assert without_last <= VIEW_TOKENS < shown
    assert view_end(lines, end) > end  # the next view goes on from there


def test_a_long_url_is_cut_in_the_header():
    url = "https://example.com/" + "a" * 2000
    header = page_view(0, "T", url, page_text(url, "x")).splitlines()[0]
    assert header.endswith("...)") and len(header) == len("[0] T ()") + 1024


def test_links_name_their_domain_only_when_it_differs_from_the_pages():
    page = "https://en.example.org/wiki/Everest"
    assert link_marker(2, "Nepal", "https://en.example.org/wiki/Nepal", page) == "【2†Nepal】"
    assert link_marker(3, "Survey", "https://survey.example.com/x", page) == "【3†Survey†survey.example.com】"
    assert link_marker(4, "a†b", "https://en.example.org/y", page) == "【4†a‡b】"  # the dagger separates fields


def test_search_results_are_a_page_of_links_and_snippets():
    results = [
        SearchResult(
            "https://www.cdc.gov/measles",
            "CDC measles cases and outbreaks",
            "As of March 2025, a total of 301 confirmed measles cases were reported by 15 jurisdictions.",
        ),
        SearchResult("https://en.wikipedia.org/wiki/Measles", "Measles", "Measles is a highly contagious disease."),
    ]
    view = page_view(0, "measles cases 2025 CDC", "", search_results_text(results))
    assert view == (
        "[0] measles cases 2025 CDC\n"
        "**viewing lines [0 - 6] of 6**\n\n"
        "L0: \n"
        "L1: URL: \n"
        "L2: # Search Results\n"
        "L3: \n"
        "L4:   * 【0†CDC measles cases and outbreaks†www.cdc.gov】 As of March 2025, a total of\n"
        "L5:  301 confirmed measles cases were reported by 15 jurisdictions.\n"
        "L6:   * 【1†Measles†en.wikipedia.org】 Measles is a highly contagious disease."
    )


def test_run_answers_a_browser_call_where_no_browser_runs():
    from scripted import ScriptedEngine, scripted_model

    search = '<|channel|>analysis to=browser.search code<|message|>{"query": "Everest"}<|call|>'
    answer = "<|channel|>final<|message|>I cannot browse.<|return|>"
    reply = scripted_model(ScriptedEngine(search, answer)).run([{"role": "user", "content": "Search."}])
    assert reply.content == "I cannot browse."
    assert reply.transcript[1]["name"] == "browser.search"
    assert (
        reply.transcript[1]["content"] == "The browser tool is not available in this conversation; answer without it."
    )
