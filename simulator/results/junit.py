"""`--junit FILE`: a results document as JUnit XML, the report format CI systems read natively.

One test case per scenario × expected control (classname `fhirlab.<scenario>`, name
`<control> <expected>`), failed when the run's verdict differs from the expectation, with the
evidence as the failure text; one per end-to-end check of `fhirlab lab`. Built from results.json,
so any results directory can be turned into JUnit XML afterwards.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labcore.errors import LabError

SUITE = "fhirlab"


def _case(
    suite: ET.Element, classname: str, name: str, seconds: float, failure: str | None, text: str
) -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    if failure is not None:
        ET.SubElement(case, "failure", message=failure, type="expectation").text = text
    else:
        ET.SubElement(case, "system-out").text = text


def junit_tree(document: Mapping[str, Any]) -> ET.ElementTree[ET.Element]:
    """The document's expectations (and checks) as one JUnit test suite."""
    command = str(document.get("command", "run"))
    suite = ET.Element(
        "testsuite", name=f"{SUITE} {command}", timestamp=str(document.get("finished_at", ""))
    )
    for check in document.get("checks") or []:
        ok = check.get("status") == "pass"
        evidence = str(check.get("evidence", ""))
        _case(suite, f"{SUITE}.checks", str(check["id"]), 0.0, None if ok else evidence, evidence)
    runs = (document.get("replay") or {}).get("runs", [])
    for run in runs:
        expectations = run.get("expectations", [])
        share = float(run.get("seconds", 0.0)) / max(len(expectations), 1)
        for e in expectations:
            name = f"{e['control']} {e['expected']}"
            failure = None
            if not e["ok"]:
                failure = f"{run['scenario']}: {e['control']} expected {e['expected']}, "
                failure += f"was {e['actual']}"
            _case(suite, f"{SUITE}.{run['scenario']}", name, share, failure, str(e["evidence"]))
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("time", f"{float(document.get('duration_s', 0.0)):.1f}")
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(path: Path, document: Mapping[str, Any]) -> Path:
    """Write the JUnit XML of `document` to `path` (its directory created)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        junit_tree(document).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise LabError(f"--junit {path}: cannot write ({exc.strerror})") from exc
    return path


def junit_for_results(results_dir: Path, path: Path) -> Path:
    """The JUnit XML of the results directory `results_dir` (its results.json), at `path`."""
    document = json.loads((results_dir / "results.json").read_text("utf-8"))
    return write_junit(path, document)
