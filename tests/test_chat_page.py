"""The chat page at `/`, in a real browser: Playwright driving Debian's chromium against `gptoss-hub serve`."""

from __future__ import annotations

import re
import shutil
import time

import httpx
import pytest
from loopback import serving_hub

pytest.importorskip("playwright", reason="the dev extra installs playwright")
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = pytest.mark.slow

#: The browser .ci/run installs (Debian's `chromium`): Playwright's own download is not used.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed here (.ci/run installs it)")
    with sync_playwright() as playwright:
        # --no-sandbox: chromium's own sandbox cannot start as root in a container.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving_hub(["--model", "tiny"], log, start_seconds=600) as (_, base):
        yield base


@pytest.fixture
def page(browser) -> Page:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    opened = context.new_page()
    yield opened
    context.close()


def _open(page: Page, url: str, *toggles: str) -> None:
    """Open the page at `url`, wait until it names the model, and switch on `toggles` (their selectors)."""
    page.goto(url)
    expect(page.locator("#model")).to_have_text("tiny-harmony")
    for toggle in toggles:
        page.check(toggle)


def _ask(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def test_a_message_streams_reasoning_and_a_rendered_answer(page, tiny_server):
    _open(page, tiny_server)
    _ask(page, "What is 2 + 2?")
    expect(page.locator(".answer")).to_have_text("2 + 2 = 4.", timeout=60_000)
    expect(page.locator("details.reasoning")).to_contain_text("Simple arithmetic")
    expect(page.locator(".stats")).to_contain_text(re.compile(r"\d+ prompt \+ \d+ reply tokens · [\d.]+ tokens/s"))
    # The next turn continues the conversation on the server (previous_response_id).
    _ask(page, "Say hello.")
    expect(page.locator(".answer").nth(1)).to_have_text("Hello!", timeout=60_000)
    expect(page.locator(".stats").nth(1)).to_contain_text("reply tokens")
    first, second = (int(page.locator(".stats").nth(i).inner_text().split()[0]) for i in (0, 1))
    assert second > first + 10  # the second prompt holds the first turn


def test_the_demo_tool_call_its_result_and_the_answer_show(page, tiny_server):
    _open(page, tiny_server, "#demo-tools")
    _ask(page, "What is the weather in Tokyo?")
    expect(page.locator(".tool .call")).to_have_text('→ get_weather({"location": "Tokyo"})', timeout=60_000)
    expect(page.locator(".tool .result")).to_have_text(
        '← {"location": "Tokyo", "temperature_c": -5, "conditions": "rainy"}'  # what gptoss_hub.demo_tools says
    )
    expect(page.locator(".answer")).to_contain_text("The weather in Tokyo", timeout=60_000)


def test_the_python_tool_runs_on_the_server_and_its_code_and_output_show(page, tiny_server):
    _open(page, tiny_server, "#python-tool")
    _ask(page, "Use python to compute 17 * 23.")
    expect(page.locator(".tool .call")).to_have_text("→ python\n17 * 23", timeout=60_000)
    expect(page.locator(".tool .result")).to_have_text("← 391")
    expect(page.locator(".answer")).to_have_text("17 * 23 = 391.", timeout=60_000)


def test_web_search_without_a_search_source_is_an_error_message(page, tiny_server):
    _open(page, tiny_server, "#web-search")
    _ask(page, "Search the web for the tallest mountain on Earth.")
    expect(page.locator(".error")).to_contain_text("gptoss-hub serve --search SOURCE")


def test_the_page_renders_markdown_without_letting_markup_through(page, tiny_server):
    page.goto(tiny_server)
    rendered = page.evaluate(
        "renderMarkdown('**bold** and `code` and [a link](https://example.com) "
        "<img src=x onerror=alert(1)> [bad](javascript:alert(1))\\n\\n- one\\n- two')"
    )
    assert "<strong>bold</strong>" in rendered and "<code>code</code>" in rendered
    assert '<a href="https://example.com" target="_blank" rel="noopener noreferrer">a link</a>' in rendered
    assert "<img" not in rendered and "&lt;img" in rendered and 'href="javascript' not in rendered
    assert "<ul><li>one</li><li>two</li></ul>" in rendered
    headers = httpx.get(tiny_server).headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert httpx.get(f"{tiny_server}/page/..%2Fapp.py").status_code == 404


def test_stop_cancels_the_generation_on_the_server(page, tmp_path):
    arguments = ["--model", "tiny", "--backend", "echo", "--option", "token_delay=0.05"]
    with serving_hub(arguments, tmp_path / "serve.log", start_seconds=120) as (_, base):
        _open(page, base)
        _ask(page, " ".join(f"word{i}" for i in range(400)))  # echoed back at 20 tokens a second
        expect(page.locator(".answer")).to_contain_text("word3", timeout=30_000)
        assert httpx.get(f"{base}/status").json()["requests_in_progress"] == 1
        page.click("#stop")
        expect(page.locator(".note")).to_have_text("stopped")
        deadline = time.monotonic() + 10
        while httpx.get(f"{base}/status").json()["requests_in_progress"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert httpx.get(f"{base}/status").json()["requests_in_progress"] == 0
        assert "word399" not in page.locator(".answer").inner_text()
        expect(page.locator("#send")).to_be_visible()


def test_an_api_key_is_asked_for_and_a_wrong_one_is_shown_as_an_error(page, tmp_path):
    arguments = ["--model", "tiny", "--backend", "echo", "--api-key", "right-key"]
    with serving_hub(arguments, tmp_path / "serve.log", start_seconds=120) as (_, base):
        page.goto(base)
        expect(page.locator("#key-form")).to_be_visible()
        page.fill("#key", "wrong-key")
        page.click("#key-form button")
        expect(page.locator(".error")).to_contain_text("API key")
        page.fill("#key", "right-key")
        page.click("#key-form button")
        expect(page.locator("#model")).to_have_text("tiny-harmony")
        expect(page.locator("#key-form")).to_be_hidden()
        _ask(page, "Repeat this.")
        expect(page.locator(".answer")).to_have_text("Repeat this.", timeout=30_000)  # the echo backend's answer
        # The key lives in this tab's sessionStorage only: a new tab (context) asks again.
        other = page.context.browser.new_context().new_page()
        other.goto(base)
        expect(other.locator("#key-form")).to_be_visible()
        other.context.close()


def test_the_readme_screenshot_is_made_by_its_script(tmp_path):
    from benchmark_scripts import BENCHMARKS

    script = BENCHMARKS.parent / "scripts" / "chat_page_screenshot.py"
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed here (.ci/run installs it)")
    import subprocess
    import sys

    shot = tmp_path / "page.png"
    result = subprocess.run([sys.executable, str(script), str(shot)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
