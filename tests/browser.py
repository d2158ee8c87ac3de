"""HTML that users read, rendered in a real browser: headless Chromium from Debian's packages
(`apt-get install chromium`; `.ci/run` installs it when missing), driven by Playwright with
Debian's binary (Playwright's own browser downloads are never used).

    from tests.browser import render

    page = render(folder / "report.html")
    assert page.problems == [], page.problems
    assert "Blast radius" in page.headings

`render(path)` opens a local HTML file in a fresh browser (a new empty profile each time, ~1.3 s)
and returns a `PageCheck`: its title, its h1-h3 headings in page order, how many <img> it holds,
and `problems`, one line per thing a reader would run into: `console error: ...` (and
`console assert: ...`), `page error: ...` (an uncaught exception), `request failed: URL (...)`,
`image not loaded: ALT` (an <img> not complete or with no natural width). A missing Chromium fails
the test that asked, with the command that installs it: it is never a silent skip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("FHIRLAB_CHROMIUM", "/usr/bin/chromium"))
# headless, and quiet on a machine with no internet: without the background-networking flags
# Chromium keeps trying Google's hosts at every start. Playwright adds a fresh --user-data-dir (a
# new empty profile under /tmp) to every launch.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOAD_TIMEOUT_MS = 30_000


@dataclass
class PageCheck:
    title: str = ""
    headings: list[str] = field(default_factory=list)
    images: int = 0
    problems: list[str] = field(default_factory=list)


def render(path: Path) -> PageCheck:
    """Open `path` in headless Chromium and report what a reader would run into."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's (`apt-get install chromium`; .ci/run "
            "does) or set FHIRLAB_CHROMIUM to its binary"
        )
    from playwright.sync_api import sync_playwright

    check = PageCheck()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(FLAGS))
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: (
                    check.problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "assert")
                    else None
                ),
            )
            page.on("pageerror", lambda e: check.problems.append(f"page error: {e}"))
            page.on(
                "requestfailed",
                lambda r: check.problems.append(f"request failed: {r.url[:120]} ({r.failure})"),
            )
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_MS)
            check.title = page.title()
            check.headings = [h.strip() for h in page.locator("h1, h2, h3").all_inner_texts()]
            images = page.eval_on_selector_all(
                "img",
                "els => els.map(e => [e.getAttribute('alt') || e.src.slice(0, 60), "
                "e.complete, e.naturalWidth])",
            )
            check.images = len(images)
            for name, complete, width in images:
                if not complete or width == 0:
                    check.problems.append(f"image not loaded: {name}")
        finally:
            browser.close()
    return check
