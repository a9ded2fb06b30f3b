"""The README's picture of the chat page: `gptoss-hub serve --model tiny`, the page in Debian's chromium
(through Playwright), a question with the demo tool and a plain one, then a screenshot.

    python scripts/chat_page_screenshot.py [docs/chat-page.png]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from gptoss_hub.testing.serving import serving_hub


def main(argv: list[str] | None = None) -> Path:
    """Serve the tiny model, chat on the page and save the screenshot; returns its path."""
    from playwright.sync_api import expect, sync_playwright

    arguments = sys.argv[1:] if argv is None else argv
    output = Path(arguments[0] if arguments else "docs/chat-page.png")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("install Debian's chromium first (apt-get install chromium)")
    output.parent.mkdir(parents=True, exist_ok=True)
    log = output.with_suffix(".serve.log")
    with serving_hub(["--model", "tiny"], log, start_seconds=600) as (_, base), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 620})
        page.goto(base)
        expect(page.locator("#model")).to_have_text("tiny-harmony")
        page.check("#demo-tools")
        # The weather question takes two responses (the call, then the answer after its result).
        for question, responses_so_far in (("What is the weather in Tokyo?", 2), ("What is 2 + 2?", 3)):
            page.fill("#prompt", question)
            page.press("#prompt", "Enter")
            expect(page.locator(".stats")).to_have_count(responses_so_far, timeout=60_000)
        page.screenshot(path=str(output))
        browser.close()
    log.unlink(missing_ok=True)
    print(f"wrote {output}")
    return output


if __name__ == "__main__":
    main()
