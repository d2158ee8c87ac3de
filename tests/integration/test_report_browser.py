"""The HTML reports users read, rendered in headless Chromium (tests/browser.py): the report of a
real replay, the lab's report with every section (that replay's results with a real load run's
matrix and the where-to-enforce section), and the compare report of the replay against the same
scenarios with C08 off. No console errors, every image loads, every section is there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labcore.config import LabConfig
from simulator.authserver.issuance_cost import measure_issuance_cost
from simulator.results.report import render_reports
from simulator.results.where import where_to_enforce
from tests.browser import render
from tests.integration.conftest import lab_env

SCENARIOS = ("cross-patient-browser", "wildcard-scheduler")


def fhirlab(lab: LabConfig, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        env=lab_env(lab), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    return done


def _results(root: Path) -> Path:
    (document,) = root.glob("*/results.json")
    return document.parent


@pytest.fixture(scope="module")
def replayed(seeded: LabConfig, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real replay with its baseline, the same with C08 off, and a short real load run."""
    root = tmp_path_factory.mktemp("reports")
    lab = fhirlab(seeded, "run", "--results", str(root / "lab"), *SCENARIOS)
    assert lab.returncode == 0, lab.stderr[-3000:]
    switched = ["--controls", "C08=off", "--no-baseline"]
    off = fhirlab(seeded, "run", "--results", str(root / "c08-off"), *switched, *SCENARIOS)
    assert off.returncode == 3, off.stderr[-3000:]  # cross-patient-browser's C08 expectation
    short = ["--matrix", "off,all", "--seconds", "2", "--users", "2", "--warmup", "0"]
    load = fhirlab(seeded, "load", "--results", str(root / "load"), *short, "scheduling-assistant")
    assert load.returncode == 0, load.stderr[-3000:]
    (load_file,) = (root / "load").glob("*/load.json")
    return {"lab": _results(root / "lab"), "c08-off": _results(root / "c08-off"),
            "load": load_file, "root": root}  # fmt: skip


def _assert_sound(page: Path, sections: list[str], images: int) -> None:
    check = render(page)
    assert check.problems == [], check.problems
    missing = [s for s in sections if not any(h.startswith(s) for h in check.headings)]
    assert not missing, (missing, check.headings)
    assert check.images >= images, check.images


def test_the_report_of_a_real_replay(replayed: dict[str, Path]) -> None:
    _assert_sound(
        replayed["lab"] / "report.html", ["fhirlab results", "Control matrix", "Blast radius"], 1
    )


def test_the_lab_report_with_every_section(seeded: LabConfig, replayed: dict[str, Path]) -> None:
    document: dict[str, Any] = json.loads((replayed["lab"] / "results.json").read_text())
    document["command"] = "lab"
    document["load"] = json.loads(replayed["load"].read_text())
    runs = document["replay"]["runs"]
    issuance = measure_issuance_cost(seeded, rounds=2, per_block=3, warmup=1).to_dict()
    placements = {"gateway": runs, "as": runs, "both": runs}
    document["where"] = {
        "issuance_cost": issuance,
        "rows": where_to_enforce(placements, document["load"], issuance),
    }
    folder = replayed["root"] / "lab-report"
    folder.mkdir()
    charts = render_reports(document, folder)
    assert {"blast-radius.png", "cost.png"} <= set(charts)
    sections = ["Control matrix", "Blast radius", "Cost per control", "Where to enforce"]
    _assert_sound(folder / "report.html", sections, 2)


def test_the_compare_report(seeded: LabConfig, replayed: dict[str, Path]) -> None:
    out = replayed["root"] / "compare"
    done = fhirlab(seeded, "compare", str(replayed["lab"]), str(replayed["c08-off"]),
                   "--results", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = (out / "compare").iterdir()
    sections = ["fhirlab compare", "Verdicts that changed", "Blast radius and exposure", "Cost"]
    _assert_sound(folder / "compare.html", sections, 1)
