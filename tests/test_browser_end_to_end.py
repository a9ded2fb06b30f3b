"""The tiny model browses for real: its search, open and cited answer over a local folder of documents and
over a loopback web site, with the pages fetched over HTTP."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest

from gptoss_hub.testing.corpus import BROWSER_FLOWS
from gptoss_hub.testing.web import PAGES, serve_site, write_site
from gptoss_hub.tools.browser import Browser
from gptoss_hub.tools.browser.display import MARKER
from gptoss_hub.tools.browser.local import LocalSearch


@pytest.fixture(scope="module")
def site():
    """The fixture web's pages served as HTML on a loopback port; yields the fetcher that reaches them."""
    with serve_site() as fetcher:
        yield fetcher


def _run_flows(model, browser_for):
    for flow in BROWSER_FLOWS:
        browser = browser_for()
        reply = model.run([{"role": "user", "content": flow.request}], browser=browser, temperature=0.0)
        pages = [m["content"] for m in reply.transcript if m["role"] == "tool"]
        assert pages == [call.output for call in flow.calls], flow.request
        assert reply.message["content"] == flow.answer
        (citation,) = reply.citations
        assert citation.url == browser.url_at(1) and reply.content[citation.start_index :].startswith("([")


def test_the_tiny_model_browses_a_local_folder(tiny_model, tmp_path):
    local = LocalSearch(write_site(tmp_path / "site"), index=tmp_path / "index.sqlite")
    _run_flows(tiny_model, lambda: Browser(local, local))


def test_the_tiny_model_browses_a_loopback_site_over_http(tiny_model, tmp_path, site):
    local = LocalSearch(write_site(tmp_path / "site"), index=tmp_path / "index.sqlite")  # search only
    _run_flows(tiny_model, lambda: Browser(local, site))


@pytest.mark.slow
@pytest.mark.parametrize("source", ["fixture", "local"])
def test_the_chat_command_browses_with_the_tiny_model(tmp_path, source):
    import os
    import subprocess
    import sys

    flow = BROWSER_FLOWS[2]
    search = "fixture" if source == "fixture" else f"local:{write_site(tmp_path / 'site')}"
    command = [sys.executable, "-m", "gptoss_hub.cli.main", "chat", "--model", "tiny", "--builtin", "browser"]
    env = os.environ | {"COLUMNS": "250"}  # the answer's link on one line
    done = subprocess.run(
        [*command, "--search", search, flow.request], capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert '→ browser.search({"query": "boiling point of water"})' in done.stdout
    assert "← [1] Water - Science Facts (http://science.example.edu/water)" in done.stdout
    assert done.stdout.rstrip().endswith("([science.example.edu](http://science.example.edu/water)).")


def test_the_tiny_model_browses_through_both_server_apis_with_the_openai_client(tiny_model, tmp_path, site, serve_app):
    """`serve --search`'s browser over a local index and a loopback site: each flow's search, open and cited
    answer through Responses (whole and streamed) and Chat Completions, the citation an annotation."""
    import openai

    from gptoss_hub.server import create_app

    local = LocalSearch(write_site(tmp_path / "site"), index=tmp_path / "index.sqlite")
    base = serve_app(create_app(tiny_model, model_name="tiny", search=(local, site)))
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    for flow in BROWSER_FLOWS:
        response = client.responses.create(
            model="tiny", input=flow.request, tools=[{"type": "web_search"}], temperature=0
        )
        calls = [item for item in response.output if item.type == "web_search_call"]
        assert [call.action.type for call in calls] == ["search", "open_page"], flow.request
        assert calls[0].action.query == json.loads(flow.calls[0].body)["query"]
        url = calls[1].action.url
        assert url in PAGES and calls[0].action.sources[0].url == url
        (annotation,) = response.output[-1].content[0].annotations
        assert (annotation.type, annotation.url, annotation.title) == ("url_citation", url, PAGES[url].title)
        text = response.output_text
        link = f"([{urlparse(url).netloc}]({url}))"
        assert text == MARKER.sub(link, flow.answer) and text[annotation.start_index : annotation.end_index] == link

        with client.responses.stream(
            model="tiny", input=flow.request, tools=[{"type": "web_search"}], temperature=0
        ) as stream:
            kinds = [event.type for event in stream]
            streamed = stream.get_final_response()
        assert kinds.count("response.web_search_call.completed") == 2
        assert kinds.count("response.output_text.annotation.added") == 1
        assert streamed.output_text == text

        completion = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": flow.request}],
            web_search_options={},
            temperature=0,
        )
        message = completion.choices[0].message
        assert message.content == text
        (cited,) = message.annotations or []
        assert (cited.url_citation.url, cited.url_citation.start_index) == (url, annotation.start_index)
