"""`fhirlab audit --html`'s page with all twelve items (passed, failed, not checked), rendered in
headless Chromium (tests/browser.py): no console or page errors, a heading per item. Real audits'
pages are checked in tests/integration/test_audit.py."""

from __future__ import annotations

from pathlib import Path

from simulator.audit.checklist import CHECKLIST, Answer
from simulator.audit.report import AuditReport, write
from tests.browser import render


def test_the_audit_page_renders_every_item(tmp_path: Path) -> None:
    answers = [Answer(item) for item in CHECKLIST]
    for i, answer in enumerate(answers):
        if i % 3 == 0:
            answer.needs = "client credentials"
        else:
            answer.add("GET Patient", f"answered <b>{i}</b> & more", ok=i % 3 == 1)
    report = AuditReport("http://fhir.example/r4", "2026-12-03T10:00:00+00:00", {}, answers)
    write(report, html=tmp_path / "audit.html")
    page = render(tmp_path / "audit.html")
    assert page.problems == [], page.problems
    assert page.headings[0] == "SMART on FHIR audit: http://fhir.example/r4"
    assert [h.split(":")[0] for h in page.headings[1:]] == [item.control for item in CHECKLIST]
    assert [h.rsplit("(", 1)[1] for h in page.headings[1:4]] == ["not checked)", "pass)", "fail)"]
