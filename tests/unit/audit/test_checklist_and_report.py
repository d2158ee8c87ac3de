"""The audit's checklist, its answers and the formats they are written in."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simulator.audit.checklist import CHECKLIST, ITEMS, Answer, Status, parse_only
from simulator.audit.probes import token_claims
from simulator.audit.report import AuditReport, junit_xml, render, write


def test_every_control_is_an_item_citing_a_hipaa_provision() -> None:
    assert [i.control for i in CHECKLIST] == [f"C{n:02d}" for n in range(1, 13)]
    for item in CHECKLIST:
        assert item.provisions
        assert all(p.startswith("45 CFR 164.") for p in item.provisions)
    assert "45 CFR 164.312(b)" in ITEMS["C06"].provisions


def test_only_keeps_checklist_order_and_names_unknown_items() -> None:
    assert parse_only("c08, C02") == ("C02", "C08")
    assert parse_only(None) == tuple(ITEMS)
    with pytest.raises(ValueError, match="C13"):
        parse_only("C02,C13")


def test_an_answer_fails_on_any_failing_evidence_and_notes_decide_nothing() -> None:
    answer = Answer(ITEMS["C08"])
    assert answer.status is Status.NOT_CHECKED
    answer.note("probe a", "seen")
    assert answer.status is Status.NOT_CHECKED
    answer.add("probe b", "own patient only", True)
    assert answer.status is Status.PASS
    answer.add("probe c", "other patients", False)
    assert answer.status is Status.FAIL


def _report() -> AuditReport:
    passed, failed, unchecked = Answer(ITEMS["C02"]), Answer(ITEMS["C08"]), Answer(ITEMS["C11"])
    passed.add("claims", "lifetime 300 s", True)
    failed.add("GET Patient", "other patients: <p2> & p3", False)
    unchecked.needs = "client credentials"
    answers = [passed, failed, unchecked]
    return AuditReport("http://fhir.example/r4", "2026-12-03T10:00:00+00:00", {}, answers)


def test_junit_has_a_case_per_item_failing_and_skipping_as_answered() -> None:
    suite = ET.fromstring(junit_xml(_report()))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name", "").split()[0]: c for c in suite.iter("testcase")}
    assert cases["C08"].find("failure") is not None
    failure = cases["C08"].find("failure")
    assert failure is not None and "other patients" in (failure.get("message") or "")
    assert cases["C11"].find("skipped") is not None
    assert cases["C02"].find("failure") is None


def test_markdown_and_html_show_every_item_and_escape_what_the_target_said(
    tmp_path: Path,
) -> None:
    report = _report()
    markdown = render(report, "audit.md.j2")
    assert "## C08: patient-context binding (fail)" in markdown
    assert "45 CFR 164.502(b)" in markdown
    html = render(report, "audit.html.j2")
    assert "&lt;p2&gt; &amp; p3" in html and "<p2>" not in html
    written = write(report, json_file=tmp_path / "a.json", junit=tmp_path / "a.xml")
    assert [p.name for p in written] == ["a.json", "a.xml"]
    assert json.loads((tmp_path / "a.json").read_text())["counts"] == {
        "pass": 1,
        "fail": 1,
        "not checked": 1,
    }


def test_token_claims_judge_scopes_and_lifetime() -> None:
    def token(claims: dict[str, object]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"e30.{body}.sig"

    answers = {c: Answer(ITEMS[c]) for c in ("C01", "C02", "C03", "C05")}
    broad = "patient/*.read offline_access user/Observation.rs"
    token_claims(answers, token({"scope": broad, "iat": 0, "exp": 28800}))
    assert {c: a.status for c, a in answers.items()} == dict.fromkeys(answers, Status.FAIL)
    answers = {c: Answer(ITEMS[c]) for c in ("C01", "C02", "C03", "C05")}
    token_claims(answers, token({"scope": "openid patient/Patient.rs", "iat": 0, "exp": 300}))
    assert {c: a.status for c, a in answers.items()} == dict.fromkeys(answers, Status.PASS)
    answers = {"C02": Answer(ITEMS["C02"])}
    assert token_claims(answers, "opaque-token") is None
    assert answers["C02"].status is Status.NOT_CHECKED
