"""The browser check itself finds what a broken page does wrong, and passes a sound one."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.browser import render

# a 1x1 PNG
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def test_a_sound_page_has_no_problems(tmp_path: Path) -> None:
    (tmp_path / "dot.png").write_bytes(PIXEL)
    page = tmp_path / "ok.html"
    page.write_text(
        "<!doctype html><title>ok</title><h1>Report</h1><h2>Part</h2><img alt='dot' src='dot.png'>"
    )
    check = render(page)
    assert (check.title, check.headings, check.images, check.problems) == (
        "ok",
        ["Report", "Part"],
        1,
        [],
    )


def test_a_broken_page_reports_each_problem(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!doctype html><title>broken</title><h1>x</h1><img alt='chart' src='missing.png'>"
        "<script>console.error('boom'); undefinedFunction();</script>"
    )
    problems = "\n".join(render(page).problems)
    assert "console error: boom" in problems
    assert "page error:" in problems and "undefinedFunction" in problems
    assert "image not loaded: chart" in problems
    assert "missing.png" in problems  # the failed request
