"""The browser's page stack and calls: cursors, links, scrolling, find, and every usage error as text."""

from __future__ import annotations

import json

import pytest

from gptoss_hub.errors import InvalidRequestError
from gptoss_hub.testing.corpus import BROWSER_FLOWS
from gptoss_hub.testing.web import fixture_web
from gptoss_hub.tools.browser import MAX_PAGES, Browser, BrowserBackendError, SearchResult, StaticWeb

LONG_PAGE = "https://long.example.org/"


@pytest.fixture
def browser() -> Browser:
    web = fixture_web()
    web.pages[LONG_PAGE] = ("Long", "\n".join(f"Line about topic {n}." for n in range(300)))
    return Browser(web, web)


def _search(browser: Browser) -> str:
    return browser.call("browser.search", {"query": "tallest mountain on Earth"})


def test_the_browser_replays_the_corpus_flows_exactly():
    for flow in BROWSER_FLOWS:
        browser = Browser(fixture_web(), fixture_web())
        assert [browser.call(call.recipient, call.body) for call in flow.calls] == [c.output for c in flow.calls]


def test_each_call_pushes_a_page_with_the_next_cursor(browser):
    assert _search(browser).startswith("[0] tallest mountain on Earth\n")
    assert browser.call("browser.open", '{"id": 1}').startswith("[1] K2, the second highest mountain (")
    assert browser.call("browser.open", '{"id": 0, "cursor": 0}').startswith("[2] Mount Everest")
    assert browser.call("browser.open", "{}").startswith("[3] Mount Everest")  # the latest page again
    assert [browser.url_at(n) for n in range(4)] == [
        None,  # a page of search results has no address to cite
        "http://news.example.com/k2",
        "http://peaks.example.org/everest",
        "http://peaks.example.org/everest",
    ]
    assert browser.url_at(4) is None


def test_open_by_address_scroll_and_number_of_lines(browser):
    first = browser.call("browser.open", {"id": LONG_PAGE})
    assert first.splitlines()[1].startswith("**viewing lines [0 - ") and "of 301**" in first.splitlines()[1]
    scrolled = browser.call("browser.open", {"loc": 100, "num_lines": 3})
    assert scrolled.splitlines()[1:] == [
        "**viewing lines [100 - 102] of 301**",
        "",
        "L100: Line about topic 98.",
        "L101: Line about topic 99.",
        "L102: Line about topic 100.",
    ]


def test_find_shows_matches_and_opening_one_jumps_near_it(browser):
    browser.call("browser.open", {"id": LONG_PAGE})
    found = browser.call("browser.find", {"pattern": "TOPIC 250"})
    assert found.startswith(
        f"[1] Find results for text: `topic 250` in `Long` ({LONG_PAGE}/find?pattern=topic 250)\n"
        "**viewing lines [0 - 4] of 4**\n\nL0: # 【0†match at L252】\nL1: Line about topic 250."
    )
    jumped = browser.call("browser.open", {"id": 0})
    assert jumped.splitlines()[3] == "L248: Line about topic 246."  # four lines before the match
    assert browser.call("browser.find", {"pattern": "nowhere"}).endswith("L0: No `find` results for pattern: `nowhere`")
    browser.call("browser.find", {"pattern": "topic"})
    assert (
        browser.call("browser.find", {"pattern": "x"})
        == "Cannot run `find` on search results page or find results page"
    )


def test_find_matches_link_text_not_the_markup():
    web = StaticWeb({"https://a.example/": ("A", "See 【0†the docs†b.example】 now.")}, {})
    browser = Browser(web, web)
    browser.call("browser.open", {"id": "https://a.example/"})
    assert "L1: See the docs now." in browser.call("browser.find", {"pattern": "the docs"})
    assert "No `find` results" in browser.call("browser.find", {"pattern": "b.example", "cursor": 0})


@pytest.mark.parametrize(
    ("name", "arguments", "result"),
    [
        ("browser.open", {"id": 3}, "No pages to access!"),
        ("browser.find", {"pattern": "x"}, "No pages to access!"),
        ("browser.fly", {}, '{"error": "Unknown function: browser.fly"}'),
        ("browser.open", "{not json", '{"error": "Invalid function arguments"}'),
        ("browser.open", "[1, 2]", '{"error": "Invalid function arguments"}'),
        ("browser.search", {"query": "x", "page": 2}, "Unknown argument(s) for browser.search: page. It takes:"),
        ("browser.open", {"cursor": "2"}, "`cursor` should be an integer, not `str`"),
        ("browser.open", {"cursor": True}, "`cursor` should be an integer, not `bool`"),
        ("browser.search", {"query": ""}, "The query is empty"),
        ("browser.search", {"query": "x" * 100_000}, "The query is 100000 characters long; the limit is 2000."),
        ("browser.find", {"pattern": "x" * 600}, "The pattern is 600 characters long; the limit is 500."),
        ("browser.open", {"id": "https://nowhere.example/"}, "Error fetching URL `https://nowhere.example/`: No page"),
        ("browser.open", {"id": 0, "view_source": True}, "`view_source` is not supported"),
    ],
)
def test_usage_errors_come_back_as_text(browser, name, arguments, result):
    assert browser.call(name, arguments).startswith(result)
    assert browser.stack == []  # nothing was pushed


def test_errors_about_the_stack_name_what_is_there(browser):
    _search(browser)
    assert (
        browser.call("browser.open", {"cursor": 5}) == "Cursor `5` is out of range. Available cursor indices: [0 - 0]."
    )
    assert browser.call("browser.open", {"id": 7}) == "Invalid link id `7`."
    past = browser.call("browser.open", {"loc": 99})
    assert past == "Invalid location parameter: `99`. Cannot exceed page maximum of 7."
    assert len(browser.stack) == 1
    assert browser.call("browser.open", {"id": 0, "loc": 4.0}).splitlines()[1].startswith("**viewing lines [4 - ")


def test_backend_failures_are_results_not_exceptions():
    class Failing:
        def search(self, query, topn):
            raise BrowserBackendError("searx error 502: bad gateway")

        def fetch(self, url):
            raise BrowserBackendError("timed out after 10 s")

    browser = Browser(Failing(), Failing())
    assert browser.call("browser.search", {"query": "q"}) == "Error during search for `q`: searx error 502: bad gateway"
    assert browser.call("browser.open", {"id": "https://x.example/"}).endswith(": timed out after 10 s")


def test_topn_is_honoured_up_to_the_browsers_limit():
    results = [SearchResult(f"https://{n}.example/", f"R{n}", "s") for n in range(30)]
    web = StaticWeb({}, {"q": results})
    assert Browser(web, web).call("browser.search", {"query": "q", "topn": 2}).count("  * 【") == 2
    assert Browser(web, web, topn_limit=20).call("browser.search", {"query": "q", "topn": 100}).count("  * 【") == 20


def test_the_stack_is_bounded(browser):
    _search(browser)
    for _ in range(MAX_PAGES - 1):
        browser.call("browser.open", {})
    assert "its limit" in browser.call("browser.open", {})
    assert len(browser.stack) == MAX_PAGES


# -- Model.run ------------------------------------------------------------------------------------------


def test_run_executes_browser_calls_and_feeds_the_pages_back():
    from scripted import ScriptedEngine, scripted_model

    flow = BROWSER_FLOWS[0]
    search, opened = (
        f"<|channel|>analysis to={call.recipient} code<|message|>{call.body}<|call|>" for call in flow.calls
    )
    answer = f"<|channel|>final<|message|>{flow.answer}<|return|>"
    engine = ScriptedEngine(search, opened, answer)
    browser = Browser(fixture_web(), fixture_web())
    reply = scripted_model(engine).run([{"role": "user", "content": flow.request}], browser=browser)
    assert reply.message["content"] == flow.answer and reply.citations[0].url == "http://peaks.example.org/everest"
    results = [(m["name"], m["content"]) for m in reply.transcript if m["role"] == "tool"]
    assert results == [(call.recipient, call.output) for call in flow.calls]
    assert len(browser.stack) == 2  # the caller's browser keeps its pages (and cursors for citations)
    from gptoss_hub.encoding import harmony_encoding

    assert "## browser" in harmony_encoding().decode(engine.prompts[0])  # the tool is declared


def test_run_with_the_browser_declared_needs_a_browser():
    from scripted import ScriptedEngine, scripted_model

    with pytest.raises(InvalidRequestError, match="browser=Browser"):
        scripted_model(ScriptedEngine("")).run([{"role": "user", "content": "x"}], builtin_tools=["browser"])


def test_arguments_as_the_model_writes_them_are_json_text():
    browser = Browser(fixture_web(), fixture_web())
    assert browser.call("browser.search", json.dumps({"query": "boiling point of water", "topn": 10.0})).startswith(
        "[0]"
    )


# -- gptoss-hub chat --builtin browser --------------------------------------------------------------------------


def test_the_chat_command_shows_each_call_its_page_and_the_answer_with_links():
    from rich.console import Console
    from scripted import ScriptedEngine, scripted_model

    from gptoss_hub.cli.chat import _answer, _Printer
    from gptoss_hub.tools.browser.sources import browser_for

    flow = BROWSER_FLOWS[2]
    calls = [f"<|channel|>analysis to={c.recipient} code<|message|>{c.body}<|call|>" for c in flow.calls]
    model = scripted_model(ScriptedEngine(*calls, f"<|channel|>final<|message|>{flow.answer}<|return|>"))
    console = Console(record=True, width=200)
    messages = [{"role": "user", "content": flow.request}]
    browser = browser_for("fixture")
    _answer(model, messages, None, _Printer(console, True), {"builtin_tools": ["browser"]}, None, browser)
    shown = console.export_text()
    assert '→ browser.search({"query": "boiling point of water"})\n← [0] boiling point of water  (' in shown
    assert "← [1] Water - Science Facts (http://science.example.edu/water)" in shown
    assert shown.rstrip().endswith("100 degrees Celsius ([science.example.edu](http://science.example.edu/water)).")
    assert messages[-1]["content"] == flow.answer  # the history keeps the model's own words
    browser.reset()
    assert browser.stack == [] and browser.url_at(0) is None


def test_the_chat_command_needs_a_search_source_for_the_browser():
    import subprocess
    import sys

    command = [sys.executable, "-m", "gptoss_hub.cli.main", "chat", "--model", "tiny", "--builtin", "browser", "hi"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--builtin browser needs --search" in done.stdout + done.stderr
    done = subprocess.run([*command[:-1], "--search", "gopher:x", "hi"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Unknown search source 'gopher:x'" in done.stdout + done.stderr
