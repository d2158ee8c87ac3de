"""The whole scenario library replayed against the real stack: every expectation is met, and a
deliberately wrong expectation makes `fhirlab run` exit non-zero (3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from labcore.config import LabConfig
from tests.integration.conftest import lab_env

EXIT_EXPECTATION_FAILED = 3


def fhirlab_run(lab: LabConfig, results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", "run", "--results", str(results), *args],
        env=lab_env(lab), capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip


def test_the_whole_library_meets_its_expectations(seeded: LabConfig, tmp_path: Path) -> None:
    done = fhirlab_run(seeded, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (results_file,) = tmp_path.glob("*/results.json")
    results = json.loads(results_file.read_text())
    runs = results["replay"]["runs"]
    library = {p.stem for p in (seeded.repo / "scenarios").glob("*.yaml")}
    assert {r["scenario"] for r in runs} == library
    for run in runs:
        assert all(e["ok"] for e in run["expectations"]), run["scenario"]
    # every control shown held by one scenario and broken by another
    assert results["summary"]["controls_shown"] == 12, results["control_matrix"]
    # expected alerts were judged on the pass with prevention off, against what its gateway raised
    burst = next(r for r in results["baseline"]["runs"] if r["scenario"] == "off-hours-burst")
    assert burst["alerts"]["checked"]
    assert {"volume", "off_hours"} <= set(burst["alerts"]["raised"])
    judged = next(r for r in runs if r["scenario"] == "off-hours-burst")
    assert any(e["control"] == "alerts" and e["ok"] for e in judged["expectations"])
    # the baseline (every control off) reaches more: never less than with the controls on
    blast = {row["scenario"]: row for row in results["blast_radius"]}
    for row in blast.values():
        assert row["controls_off"]["patients"] >= row["controls_on"]["patients"], row
    assert blast["cross-patient-browser"]["patients_prevented"] > 0
    assert blast["shared-vendor"]["patients_prevented"] > 0
    folder = results_file.parent
    assert "blast-radius.png" in results["files"]["charts"]
    assert "## Blast radius" in (folder / "report.md").read_text()
    assert (folder / "report.html").stat().st_size > 0
    assert results["audit"]["chain"]["ok"], results["audit"]
    assert results["audit"]["audit_records"] > 0


def test_a_wrong_expectation_fails_the_run(seeded: LabConfig, tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    scenario = yaml.safe_load((seeded.repo / "scenarios" / "wildcard-scheduler.yaml").read_text())
    assert scenario["expect"]["C05"] == "violated"
    scenario["expect"]["C05"] = "held"  # deliberately wrong
    (library / "wildcard-scheduler.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    done = fhirlab_run(seeded, tmp_path / "results", "--library", str(library))
    assert done.returncode == EXIT_EXPECTATION_FAILED, done.stdout[-2000:] + done.stderr[-2000:]


def test_controls_switched_for_one_run_go_through_their_own_gateway(
    seeded: LabConfig, tmp_path: Path
) -> None:
    done = fhirlab_run(
        seeded, tmp_path, "wildcard-scheduler", "--controls", "C05=off", "--no-baseline"
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (results_file,) = tmp_path.glob("*/results.json")
    results = json.loads(results_file.read_text())
    assert results["replay"]["gateway"] == "controls-set"
    assert results["replay"]["controls"]["C05"] == "off"
    assert results["replay"]["controls"]["C08"] == "enforce"
    assert results["baseline"] is None
    (run,) = results["replay"]["runs"]
    assert "C05" not in run["caught"]  # nothing refused by the switched-off control
