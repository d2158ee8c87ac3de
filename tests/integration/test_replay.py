"""The whole scenario library replayed against the real stack: every expectation is met, and a
deliberately wrong expectation makes `fhirlab run` exit non-zero (3)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from junitparser import JUnitXml

from labcore.config import LabConfig
from labcore.keycloak_admin import KeycloakAdmin
from simulator.authserver.clients import effective_client
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


def test_your_own_clients_policy_and_scenarios_with_junit(
    seeded: LabConfig, tmp_path: Path
) -> None:
    """A team's own files, none of them in the repository: a client profile with the lifetime
    fixed, a policy with C08 off and a two-scenario library. The run goes through a gateway
    started with them, the JUnit file names exactly what changed, and Keycloak has the lab's
    profile back afterwards."""
    clients, scenarios = tmp_path / "clients", tmp_path / "scenarios"
    clients.mkdir()
    scenarios.mkdir()
    profile = yaml.safe_load(
        (seeded.repo / "keycloak/clients/long-token-assistant.yaml").read_text()
    )
    assert profile["access_token_lifetime_s"] == 28800
    profile["access_token_lifetime_s"] = 900
    (clients / "long-token-assistant.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    for name in ("long-token-assistant", "cross-patient-browser"):
        shutil.copy(seeded.repo / "scenarios" / f"{name}.yaml", scenarios)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        (seeded.repo / "gateway/policy.yaml").read_text().replace("C08: enforce", "C08: off")
    )
    junit = tmp_path / "junit.xml"
    done = fhirlab_run(
        seeded, tmp_path / "results", "--no-baseline", "--junit", str(junit),
        "--scenarios", str(scenarios), "--clients", str(clients), "--policy", str(policy),
    )  # fmt: skip
    assert done.returncode == EXIT_EXPECTATION_FAILED, done.stdout[-2000:] + done.stderr[-2000:]
    (results_file,) = (tmp_path / "results").glob("*/results.json")
    results = json.loads(results_file.read_text())
    assert results["replay"]["gateway"] == "controls-set"
    assert results["replay"]["controls"]["C08"] == "off"
    runs = {r["scenario"]: r for r in results["replay"]["runs"]}
    assert set(runs) == {"long-token-assistant", "cross-patient-browser"}
    assert runs["long-token-assistant"]["token"]["lifetime_s"] == 900
    (suite,) = list(JUnitXml.fromfile(str(junit)))
    failed = {(c.classname, c.name) for c in suite if not c.is_passed}
    assert failed == {
        ("fhirlab.long-token-assistant", "C02 violated"),  # the fix holds C02 now
        ("fhirlab.cross-patient-browser", "C08 held"),  # C08 off lets the browsing through
    }
    assert suite.tests == sum(len(r["expectations"]) for r in runs.values())
    with KeycloakAdmin(seeded.keycloak_url, seeded.admin_user, seeded.admin_password) as admin:
        restored = effective_client(admin, "tenant-a", "long-token-assistant")
    assert restored is not None and restored["access_token_lifetime_s"] == 28800


def test_a_mistake_in_your_files_is_reported_before_anything_runs(
    seeded: LabConfig, tmp_path: Path
) -> None:
    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "triage-chatbot.yaml").write_text(
        (seeded.repo / "keycloak/clients/triage-chatbot.yaml").read_text()
        + "refresh_tokens: maybe\n"
    )
    done = fhirlab_run(seeded, tmp_path / "results", "--clients", str(clients))
    assert done.returncode == 1
    message = done.stderr.replace("\n", "")  # the console wraps long lines
    assert f"{clients / 'triage-chatbot.yaml'}: line " in message
    assert "refresh_tokens: Input should be a valid boolean" in message
    assert "Traceback" not in message
    assert not list((tmp_path / "results").glob("*"))
