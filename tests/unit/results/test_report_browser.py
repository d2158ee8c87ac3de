"""The lab's report.html with every section, built from results made by hand (no server) and
rendered in headless Chromium (tests/browser.py): no console or page errors, both charts load, every
section is there. The real stack's reports are checked in tests/integration/test_report_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from simulator.replay.model import ExpectationResult
from simulator.results.report import render_reports
from simulator.results.where import where_to_enforce
from tests.browser import render
from tests.unit.results.builders import (
    LOAD,
    PLACEMENTS,
    document,
    interval,
    issuance_cost,
    replays,
)

SECTIONS = [
    "fhirlab results — 2027-01-15T08:00:00Z",
    "Control matrix",
    "Blast radius",
    "Exposure window",
    "Alerts (C06)",
    "Cost per control under load",
    "Cost per kind of request, with 95% intervals",
    "The whole gateway against HAPI FHIR itself",
    "Where to enforce (C01–C05, C11)",
    "Stack checks",
]


def _every_section(folder: Path) -> Path:
    """report.html of a `fhirlab lab` run that fills every section, one stack check failing."""
    on, off = replays()
    bad = on.runs[1]
    bad.alerts, bad.alerts_checked = ["paging-walk"], True
    bad.expectations.append(ExpectationResult("alerts", "paging-walk", "paging-walk", True, ""))
    off.runs[1].alerts = ["paging-walk", "fan-out"]
    cost = {"added_p50_ms": interval(0.8, 0.5, 1.1), "added_p99_ms": interval(1, 0, 2),
            "rps_ratio": interval(0.99, 0.97, 1.01), "kind": "read", "samples": 900,
            "baseline_samples": 910, "reading": "+0.80 ms (95% interval +0.50 to +1.10)",
            }  # fmt: skip
    floor = {**cost, "added_p50_ms": interval(0.05, -0.3, 0.4), "reading": ""}
    load = {
        **LOAD,
        "rounds": 4,
        "cost_method": {"baseline": "off", "noise_floor": "off-2", "interval": "95%, bootstrap"},
        "noise_floor": {"read": floor},
        "configs": [
            {**LOAD["configs"][0], "name": "C05", "cost_vs_off": [cost], "cost_vs_direct": [cost]},
            {**LOAD["configs"][1], "cost_vs_off": [cost], "cost_vs_direct": [cost]},
        ],
    }
    issuance = issuance_cost(2.0)
    where = {"issuance_cost": issuance, "rows": where_to_enforce(PLACEMENTS, load, issuance)}
    checks = [
        {"id": "gateway-health", "status": "pass", "evidence": "200 in 4 ms"},
        {"id": "audit-chain", "status": "fail", "evidence": "record 7: <hash> differs"},
    ]
    audit = {"audit_records": 40, "alerts_records": 2, "chain": {"ok": True, "reason": "40 ok"}}
    doc = document(on, off, load, command="lab", where=where, checks=checks, audit=audit)
    doc["started_at"] = "2027-01-15T08:00:00Z"
    charts = render_reports(doc, folder)
    assert charts == ["blast-radius.png", "cost.png"]
    return folder / "report.html"


def test_the_lab_report_renders_every_section_with_its_charts(tmp_path: Path) -> None:
    page = render(_every_section(tmp_path))
    assert page.problems == [], page.problems
    assert page.title == SECTIONS[0]
    assert page.headings == SECTIONS
    assert page.images == 2


def test_a_chart_that_does_not_load_is_caught(tmp_path: Path) -> None:
    report = _every_section(tmp_path)
    html = report.read_text()
    # the blast-radius chart's PNG loses its first bytes: the page loads, the image does not
    broken = re.sub(r"(data:image/png;base64,)[^\"]{40}", r"\1", html, count=1)
    report.write_text(broken)
    problems = render(report).problems
    assert problems == ["image not loaded: blast radius per scenario"]
