"""`LocalSearch`: a folder of documents as search engine and page source, indexed with SQLite FTS5."""

from __future__ import annotations

import os

import pytest
from benchmark_scripts import load_benchmark

from gptoss_hub.testing.web import PAGES, SEARCHES, search_results, write_site
from gptoss_hub.tools.browser import Browser, BrowserBackendError, page_text
from gptoss_hub.tools.browser.local import LocalSearch


def _local(folder, tmp_path, **options) -> LocalSearch:
    return LocalSearch(folder, index=tmp_path / "index.sqlite", **options)


def test_the_fixture_site_searches_and_opens_exactly_as_the_fixture_web(tmp_path):
    local = _local(write_site(tmp_path / "site"), tmp_path)
    for query in SEARCHES:
        assert local.search(query, 10) == search_results(query), query
    for url, page in PAGES.items():
        opened = local.fetch(url)
        assert (opened.title, opened.text) == (page.title, page_text(url, page.body))


def test_html_markdown_and_text_documents_with_their_titles_addresses_and_snippets(tmp_path):
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "guide" / "install.md").write_text("# Installing the widget\n\nRun the installer, then restart.\n")
    (docs / "notes.txt").write_text("Widget notes: the widget needs a restart after installing.\n")
    (docs / "page.html").write_text(
        '<html><head><title>Widget FAQ</title><link rel="canonical" href="https://faq.example.com/widget">'
        '<meta name="description" content="Answers about the widget."></head><body><p>Is the widget fast?</p></body></html>'
    )
    local = _local(docs, tmp_path, base_url="https://docs.example.com/")
    results = {result.url: result for result in local.search("widget", 10)}
    assert set(results) == {
        "https://docs.example.com/guide/install.md",
        "https://docs.example.com/notes.txt",
        "https://faq.example.com/widget",
    }
    assert results["https://docs.example.com/guide/install.md"].title == "Installing the widget"
    assert results["https://docs.example.com/guide/install.md"].snippet == "Run the installer, then restart."
    assert results["https://faq.example.com/widget"].snippet == "Answers about the widget."
    assert results["https://docs.example.com/notes.txt"].title == "notes"
    assert local.fetch("https://faq.example.com/widget").text.endswith("Is the widget fast?")
    assert local.search("Widget FAQ", 10)[0].title == "Widget FAQ"  # titles weigh more


def test_the_index_follows_the_folder_by_modification_time(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\napples")
    (docs / "b.md").write_text("# B\n\nbananas")
    local = _local(docs, tmp_path)
    assert (local.last_update.added, local.last_update.unchanged) == (2, 0)
    (docs / "a.md").write_text("# A\n\ncherries")
    os.utime(docs / "a.md", ns=(1, 2_000_000_000_000_000_000))  # a modification time surely different
    (docs / "b.md").unlink()
    (docs / "c.txt").write_text("dates")
    update = local.refresh()
    assert (update.added, update.updated, update.removed, update.unchanged) == (1, 1, 1, 0)
    assert local.search("apples", 5) == [] and local.search("bananas", 5) == []
    assert {r.title for r in local.search("cherries dates", 5)} == {"A", "c"}
    reopened = _local(docs, tmp_path)  # the same index file: nothing read again
    assert (reopened.last_update.added, reopened.last_update.unchanged) == (0, 2)


@pytest.mark.parametrize(
    "query", ['"unbalanced', "NEAR(a b)", "a* OR -b", "col:apples", "()", "'; DROP TABLE files; --", "ünïcode ✓"]
)
def test_search_syntax_in_a_query_is_just_words(tmp_path, query):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\napples and unicode")
    local = _local(docs, tmp_path)
    local.search(query, 5)  # no FTS5 syntax error, no SQL
    assert local.search("apples", 5)


def test_a_query_of_common_words_only_still_searches(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# What is it\n\nwho is where")
    assert len(_local(docs, tmp_path).search("who is", 5)) == 1


def test_only_indexed_documents_open_and_a_missing_folder_is_an_error(tmp_path):
    local = _local(write_site(tmp_path / "site"), tmp_path)
    with pytest.raises(BrowserBackendError, match="is not a document of"):
        local.fetch("file:///etc/passwd")
    with pytest.raises(BrowserBackendError, match="not a folder"):
        LocalSearch(tmp_path / "nowhere", index=tmp_path / "x.sqlite")


def test_a_browser_over_a_local_folder_replays_the_tiny_models_flows(tmp_path):
    from gptoss_hub.testing.corpus import BROWSER_FLOWS

    local = _local(write_site(tmp_path / "site"), tmp_path)
    for flow in BROWSER_FLOWS:
        browser = Browser(local, local)
        assert [browser.call(c.recipient, c.body) for c in flow.calls] == [c.output for c in flow.calls]


def test_the_benchmark_reports_each_figure():
    benchmark = load_benchmark("browser")
    results = benchmark.main(["--documents", "120", "--queries", "5"])
    assert set(results) == {
        "index build s",
        "query median ms",
        "query p95 ms",
        "scan median ms",
        "refresh unchanged ms",
        "refresh 1% changed ms",
    }
    assert all(value > 0 for value in results.values())
