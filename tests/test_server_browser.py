"""The browser on the server: Responses' `web_search` tool and Chat Completions' `web_search_options`, with
the calls run server-side and the citations as `url_citation` annotations."""

from __future__ import annotations

import json

import pytest
from scripted import ScriptedEngine, scripted_model

pytest.importorskip("fastapi", reason="the server extra is installed by .ci/run")

from fastapi.testclient import TestClient

from gptoss_hub.server import create_app
from gptoss_hub.testing.web import fixture_web

SEARCH = (
    "<|channel|>analysis<|message|>Look it up.<|end|><|start|>assistant<|channel|>analysis to=browser.search code"
    '<|message|>{"query": "tallest mountain on Earth"}<|call|>'
)
OPEN = '<|channel|>analysis to=browser.open code<|message|>{"id": 0, "cursor": 0}<|call|>'
FIND = '<|channel|>analysis to=browser.find code<|message|>{"pattern": "1953", "cursor": 1}<|call|>'
ANSWER = (
    "<|channel|>analysis<|message|>Found it.<|end|><|start|>assistant<|channel|>final<|message|>"
    "Mount Everest is the tallest 【1†L4-L5】, first climbed in 1953 【1†L9】.<|return|>"
)
EVEREST = "http://peaks.example.org/everest"
LINK = f"([peaks.example.org]({EVEREST}))"
CITED = f"Mount Everest is the tallest {LINK}, first climbed in 1953 {LINK}."
TITLE = "Mount Everest - Peaks of the World"
WEB_SEARCH = [{"type": "web_search"}]


def _client(*completions, search=True):
    engine = ScriptedEngine(*completions)
    web = fixture_web()
    app = create_app(scripted_model(engine), model_name="tiny", search=(web, web) if search else None)
    return TestClient(app), app, engine


def _events(text):
    events = []
    for block in text.strip().split("\n\n"):
        data = next(line[len("data: ") :] for line in block.splitlines() if line.startswith("data: "))
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def _spans(text, annotations):
    return [text[a["start_index"] : a["end_index"]] for a in annotations]


def test_responses_run_the_browser_and_annotate_the_answer_with_its_citations():
    client, _, engine = _client(SEARCH, OPEN, ANSWER)
    with client:
        body = client.post("/v1/responses", json={"model": "tiny", "input": "Tallest mountain?", "tools": WEB_SEARCH})
    assert body.status_code == 200, body.text
    response = body.json()
    kinds = [item["type"] for item in response["output"]]
    assert kinds == ["reasoning", "web_search_call", "web_search_call", "reasoning", "message"]
    search, opened = response["output"][1], response["output"][2]
    sources = [{"type": "url", "url": EVEREST}, {"type": "url", "url": "http://news.example.com/k2"}]
    assert search["action"] == {"type": "search", "query": "tallest mountain on Earth", "sources": sources}
    assert opened["action"] == {"type": "open_page", "url": EVEREST}
    assert search["status"] == opened["status"] == "completed"
    part = response["output"][-1]["content"][0]
    assert part["text"] == CITED
    assert [a["type"] for a in part["annotations"]] == ["url_citation", "url_citation"]
    assert _spans(CITED, part["annotations"]) == [LINK, LINK]
    assert {(a["url"], a["title"]) for a in part["annotations"]} == {(EVEREST, TITLE)}
    # The model read the page it opened: the second turn's prompt holds the search page, the third the page.
    from gptoss_hub.encoding import harmony_encoding

    last_prompt = harmony_encoding().decode(engine.prompts[2])
    assert "<|start|>browser.open to=assistant" in last_prompt and "L9: The first recorded ascent" in last_prompt


def test_streamed_responses_send_the_web_search_events_and_each_annotation():
    client, _, _ = _client(SEARCH, OPEN, ANSWER)
    with client:
        body = client.post(
            "/v1/responses", json={"model": "tiny", "input": "Tallest?", "tools": WEB_SEARCH, "stream": True}
        )
    events = _events(body.text)
    kinds = [event["type"] for event in events]
    calls = [kind for kind in kinds if kind.startswith("response.web_search_call.")]
    assert calls == [f"response.web_search_call.{step}" for step in ("in_progress", "searching", "completed")] * 2
    added = [event for event in events if event["type"] == "response.output_text.annotation.added"]
    assert [event["annotation_index"] for event in added] == [0, 1]
    text = "".join(event["delta"] for event in events if event["type"] == "response.output_text.delta")
    assert text == CITED and "【" not in text  # never half a marker
    assert _spans(text, [event["annotation"] for event in added]) == [LINK, LINK]
    final = events[-1]["response"]
    assert final["output"][-1]["content"][0]["annotations"] == [event["annotation"] for event in added]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))


def test_a_response_chain_keeps_its_page_stack():
    """A later response finds in a page an earlier one opened: cursor 1 lives on along the chain."""
    client, app, _ = _client(SEARCH, OPEN, ANSWER, FIND, ANSWER)
    with client:
        first = client.post("/v1/responses", json={"model": "tiny", "input": "Tallest?", "tools": WEB_SEARCH}).json()
        second = client.post(
            "/v1/responses",
            json={"model": "tiny", "input": "When climbed?", "tools": WEB_SEARCH, "previous_response_id": first["id"]},
        ).json()
        assert len(app.state.served.browsers) == 1
    (found,) = [item for item in second["output"] if item["type"] == "web_search_call"]
    assert found["action"] == {"type": "find_in_page", "pattern": "1953", "url": EVEREST}
    assert second["output"][-1]["content"][0]["text"] == CITED


def test_responses_not_stored_free_their_page_stack_at_once():
    client, app, _ = _client(SEARCH, OPEN, ANSWER)
    with client:
        body = client.post(
            "/v1/responses", json={"model": "tiny", "input": "Tallest?", "tools": WEB_SEARCH, "store": False}
        )
        assert body.json()["status"] == "completed" and len(app.state.served.browsers) == 0


def test_search_context_size_limits_the_results_and_a_wrong_one_is_a_400():
    client, app, _ = _client('<|channel|>analysis to=browser.search code<|message|>{"query": "x", "topn": 50}<|call|>')
    with client:
        wrong = client.post(
            "/v1/responses",
            json={"model": "tiny", "input": "x", "tools": [{"type": "web_search", "search_context_size": "huge"}]},
        )
        assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "tools[0].search_context_size"
        wrong = client.post(
            "/v1/chat/completions",
            json={
                "model": "tiny",
                "messages": [{"role": "user", "content": "x"}],
                "web_search_options": {"search_context_size": 3},
            },
        )
        assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "web_search_options.search_context_size"
        client.post(
            "/v1/responses",
            json={
                "model": "tiny",
                "input": "x",
                "tools": [{"type": "web_search_preview", "search_context_size": "low"}],
            },
        )
        (browser,) = [session for session, _ in app.state.served.browsers._sessions.values()]
    assert browser.topn_limit == 5


def test_a_server_without_a_search_source_refuses_web_search_and_says_how_to_start_one():
    client, _, _ = _client(ANSWER, search=False)
    with client:
        responses = client.post("/v1/responses", json={"model": "tiny", "input": "x", "tools": WEB_SEARCH})
        chat = client.post(
            "/v1/chat/completions",
            json={"model": "tiny", "messages": [{"role": "user", "content": "x"}], "web_search_options": {}},
        )
    for refused, param in ((responses, "tools"), (chat, "web_search_options")):
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["code"] == "web_search_unavailable" and error["param"] == param
        assert "--search" in error["message"]


def test_chat_completions_run_the_browser_for_web_search_options_and_annotate_the_message():
    client, _, _ = _client(SEARCH, OPEN, ANSWER)
    with client:
        body = client.post(
            "/v1/chat/completions",
            json={"model": "tiny", "messages": [{"role": "user", "content": "Tallest?"}], "web_search_options": {}},
        )
    assert body.status_code == 200, body.text
    message = body.json()["choices"][0]["message"]
    assert message["content"] == CITED and "tool_calls" not in message
    spans = [a["url_citation"] for a in message["annotations"]]
    assert {a["type"] for a in message["annotations"]} == {"url_citation"}
    assert _spans(CITED, spans) == [LINK, LINK] and {(s["url"], s["title"]) for s in spans} == {(EVEREST, TITLE)}
    actions = [call["action"]["type"] for call in message["web_search_calls"]]
    assert actions == ["search", "open_page"]
    assert message["web_search_calls"][1]["output"].startswith(f"[1] {TITLE} ({EVEREST})")


def test_streamed_chat_completions_count_annotation_spans_over_every_turns_content():
    """A preamble streamed before the calls shifts the answer: the spans still point at the links."""
    preamble = "<|channel|>commentary<|message|>Let me check. <|end|><|start|>assistant" + SEARCH.removeprefix(
        "<|channel|>analysis<|message|>Look it up.<|end|><|start|>assistant"
    )
    client, _, _ = _client(preamble, OPEN, ANSWER)
    with client:
        body = client.post(
            "/v1/chat/completions",
            json={
                "model": "tiny",
                "messages": [{"role": "user", "content": "Tallest?"}],
                "web_search_options": {},
                "stream": True,
            },
        )
    chunks = [event for event in _events(body.text) if event != "[DONE]"]
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    content = "".join(delta.get("content") or "" for delta in deltas)
    assert content == "Let me check. " + CITED
    annotations = [a["url_citation"] for delta in deltas for a in delta.get("annotations", ())]
    assert _spans(content, annotations) == [LINK, LINK]
    assert [delta["web_search_call"]["action"]["type"] for delta in deltas if "web_search_call" in delta] == [
        "search",
        "open_page",
    ]
    assert not any("tool_calls" in delta for delta in deltas)  # the server ran them


def test_a_browser_call_without_web_search_goes_back_to_the_client_as_a_function_call():
    client, _, _ = _client(SEARCH)
    with client:
        body = client.post("/v1/responses", json={"model": "tiny", "input": "Tallest?"}).json()
    (call,) = [item for item in body["output"] if item["type"] == "function_call"]
    assert call["name"] == "browser.search"


def test_serve_search_gives_the_app_its_browser_and_a_wrong_source_fails_before_loading(monkeypatch, capsys):
    import uvicorn

    import gptoss_hub
    from gptoss_hub.cli.main import main

    loaded, served = [], []
    monkeypatch.setattr(
        gptoss_hub, "load", lambda *a, **k: loaded.append(a) or scripted_model(ScriptedEngine(SEARCH, OPEN, ANSWER))
    )
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    assert main(["serve", "--search", "nowhere:x"]) == 2
    assert "Unknown search source 'nowhere:x'" in capsys.readouterr().err and not loaded
    assert main(["serve", "--search", "fixture"]) == 0
    assert "web search reads fixture" in capsys.readouterr().out
    with TestClient(served[0]) as client:
        body = client.post("/v1/responses", json={"model": "tiny-harmony", "input": "x", "tools": WEB_SEARCH}).json()
    assert body["output"][-1]["content"][0]["text"] == CITED


def test_a_prompted_open_of_the_servers_own_network_is_refused_and_nothing_of_it_leaks():
    """Anyone can prompt the model: a call to open a loopback address (an admin page beside the server) gets
    a refusal as its result, and the page's text appears nowhere in the response."""
    from loopback import QuietHandler, serving

    from gptoss_hub.tools.browser.fetch import HttpFetcher

    hits = []

    class Admin(QuietHandler):
        def do_GET(self):
            hits.append(self.path)
            self.reply(200, b"<html><body>SECRET-ADMIN-TOKEN</body></html>", "text/html")

    with serving(Admin) as port:
        open_admin = (
            f'<|channel|>analysis to=browser.open code<|message|>{{"id": "http://127.0.0.1:{port}/admin"}}<|call|>'
        )
        engine = ScriptedEngine(open_admin, ANSWER)
        web = fixture_web()
        app = create_app(scripted_model(engine), model_name="tiny", search=(web, HttpFetcher()))
        with TestClient(app) as client:
            body = client.post("/v1/responses", json={"model": "tiny", "input": "x", "tools": WEB_SEARCH})
    assert body.status_code == 200 and not hits
    (call,) = [item for item in body.json()["output"] if item["type"] == "web_search_call"]
    assert call["action"] == {"type": "open_page", "url": f"http://127.0.0.1:{port}/admin"}
    from gptoss_hub.encoding import harmony_encoding

    fed_back = harmony_encoding().decode(engine.prompts[1])
    assert "Error fetching URL" in fed_back and "SECRET" not in fed_back and "SECRET" not in body.text
