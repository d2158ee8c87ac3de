"""An audit's answers written out: JSON (the record), Markdown and HTML (to read), JUnit XML (a
test case per item, for CI systems)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from simulator.audit.checklist import Answer, Status

TEMPLATES = Path(__file__).parent / "templates"
SCHEMA_VERSION = 1


@dataclass(slots=True)
class AuditReport:
    target: str  # the FHIR base URL audited
    started_at: str
    options: dict[str, Any]  # what the audit was given (never a secret)
    answers: list[Answer] = field(default_factory=list)

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status is Status.FAIL]

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for answer in self.answers:
            counts[answer.status.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "target": self.target,
            "started_at": self.started_at,
            "options": self.options,
            "counts": self.counts(),
            "items": [a.to_dict() for a in self.answers],
        }


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(report: AuditReport, template: str) -> str:
    return _environment().get_template(template).render(report=report.to_dict())


def junit_xml(report: AuditReport) -> str:
    """One test suite, a test case per item: failed items fail, items not checked are skipped."""
    counts = report.counts()
    suite = ET.Element(
        "testsuite",
        name=f"fhirlab audit {report.target}",
        tests=str(len(report.answers)),
        failures=str(counts[Status.FAIL.value]),
        skipped=str(counts[Status.NOT_CHECKED.value]),
        timestamp=report.started_at,
    )
    for answer in report.answers:
        item = answer.item
        case = ET.SubElement(
            suite, "testcase", classname="fhirlab.audit", name=f"{item.control} {item.title}"
        )
        lines = [f"{e.verdict.value}: {e.probe}: {e.observed}" for e in answer.evidence]
        detail = "\n".join([f"{item.asks} ({'; '.join(item.provisions)})", *lines])
        if answer.status is Status.FAIL:
            failing = next(e for e in answer.evidence if e.verdict is Status.FAIL)
            failure = ET.SubElement(case, "failure", message=f"{failing.probe}: {failing.observed}")
            failure.text = detail
        elif answer.status is Status.NOT_CHECKED:
            ET.SubElement(case, "skipped", message=answer.needs or "not checked")
        else:
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write(
    report: AuditReport,
    *,
    json_file: Path | None = None,
    markdown: Path | None = None,
    html: Path | None = None,
    junit: Path | None = None,
) -> list[Path]:
    """Write the formats asked for; returns the files written."""
    written = []
    outputs = (
        (json_file, lambda: json.dumps(report.to_dict(), indent=2) + "\n"),
        (markdown, lambda: render(report, "audit.md.j2")),
        (html, lambda: render(report, "audit.html.j2")),
        (junit, lambda: junit_xml(report)),
    )
    for path, text in outputs:
        if path is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text())
        written.append(path)
    return written
