"""The whole scenario library replayed against the real stack: every expectation is met, and a
deliberately wrong expectation makes `fhirlab run` exit non-zero (3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seed import PopulationOptions
from seed.lab import seed_lab
from simulator.stack.config import LabConfig
from tests.integration.conftest import lab_env

POPULATION = PopulationOptions(patients=20, seed=7, tenants=2)  # the test population
EXIT_EXPECTATION_FAILED = 3


@pytest.fixture(scope="module")
def seeded(clients_applied: LabConfig) -> LabConfig:
    seed_lab(clients_applied, POPULATION, users_share=1.0)
    return clients_applied


def fhirlab_run(lab: LabConfig, results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", "run", "--results", str(results), *args],
        env=lab_env(lab), capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip


def test_the_whole_library_meets_its_expectations(seeded: LabConfig, tmp_path: Path) -> None:
    done = fhirlab_run(seeded, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (runs_file,) = tmp_path.glob("*/runs.json")
    runs = json.loads(runs_file.read_text())["runs"]
    library = {p.stem for p in (seeded.repo / "scenarios").glob("*.yaml")}
    assert {r["scenario"] for r in runs} == library
    for run in runs:
        assert all(e["ok"] for e in run["expectations"]), run["scenario"]


def test_a_wrong_expectation_fails_the_run(seeded: LabConfig, tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    scenario = yaml.safe_load((seeded.repo / "scenarios" / "wildcard-scheduler.yaml").read_text())
    assert scenario["expect"]["C05"] == "violated"
    scenario["expect"]["C05"] = "held"  # deliberately wrong
    (library / "wildcard-scheduler.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    done = fhirlab_run(seeded, tmp_path / "results", "--library", str(library))
    assert done.returncode == EXIT_EXPECTATION_FAILED, done.stdout[-2000:] + done.stderr[-2000:]
