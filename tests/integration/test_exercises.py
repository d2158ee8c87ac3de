"""Every exercise fails as shipped and passes once its reference fix is applied to the
workspace. The fixes live here, not in the trainee's files: a trainee reading the repository's
exercise files finds the misconfiguration, not the answer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from labcore.config import LabConfig
from simulator.exercises.model import load_catalogue
from simulator.exercises.workspace import workspace
from tests.integration.conftest import lab_env

EXIT_NOT_YET = 3


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _set(path: Path, **fields: Any) -> None:
    _edit(path, lambda d: d.update(fields))


def _policy(ws: Path, change: Callable[[dict[str, Any]], None]) -> None:
    _edit(ws / "policy.yaml", change)


def fix_scopes(ws: Path) -> None:
    scopes = ["openid", "launch/patient", "patient/Patient.rs", "patient/Appointment.rs"]
    _set(ws / "clients/wildcard-scheduler.yaml", scopes=scopes)
    _set(
        ws / "scenarios/wildcard-scheduler.yaml",
        scope="openid launch/patient patient/Appointment.rs",
    )


def fix_lifetime(ws: Path) -> None:
    _set(ws / "clients/long-token-assistant.yaml", access_token_lifetime_s=900)


def fix_offline_access(ws: Path) -> None:
    profile = ws / "clients/offline-assistant.yaml"
    _edit(profile, lambda d: d.update(scopes=[s for s in d["scopes"] if s != "offline_access"]))
    scenario = ws / "scenarios/offline-assistant.yaml"
    _edit(scenario, lambda d: d.update(scope=d["scope"].replace(" offline_access", "")))


def fix_bulk_export(ws: Path) -> None:
    def change(p: dict[str, Any]) -> None:
        p["controls"]["C04"] = "enforce"
        p["operations"]["export_clients"] = ["population-analytics"]
        p["operations"]["restricted_clients"] = ["population-analytics"]

    _policy(ws, change)


def fix_compartment(ws: Path) -> None:
    _policy(ws, lambda p: p["controls"].update(C08="enforce"))


def fix_revocation(ws: Path) -> None:
    def change(p: dict[str, Any]) -> None:
        p["controls"]["C09"] = "enforce"
        p["token"]["introspection_ttl_s"] = 5

    _policy(ws, change)


def fix_tenancy(ws: Path) -> None:
    _set(ws / "clients/shared-vendor.yaml", tenants=["tenant-a"])
    _policy(ws, lambda p: p["controls"].update(C10="enforce"))


def fix_anomaly_alert(ws: Path) -> None:
    def change(p: dict[str, Any]) -> None:
        p["anomaly"]["volume"]["threshold"] = 300
        p["anomaly"]["off_hours"]["threshold"] = 10

    _policy(ws, change)


FIXES: dict[int, Callable[[Path], None]] = {
    1: fix_scopes,
    2: fix_lifetime,
    3: fix_offline_access,
    4: fix_bulk_export,
    5: fix_compartment,
    6: fix_revocation,
    7: fix_tenancy,
    8: fix_anomaly_alert,
}


def fhirlab_exercise(lab: LabConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", "exercise", *args],
        env=lab_env(lab), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_every_exercise_has_a_reference_fix() -> None:
    assert set(FIXES) == set(load_catalogue())


@pytest.mark.parametrize("number", sorted(FIXES))
def test_the_exercise_fails_as_shipped_and_passes_with_its_fix(
    seeded: LabConfig, number: int
) -> None:
    ex = load_catalogue()[number]
    ws = workspace(seeded, ex)
    reset = fhirlab_exercise(seeded, "reset", str(number))
    assert reset.returncode == 0, reset.stderr
    shipped = fhirlab_exercise(seeded, "check", str(number))
    assert shipped.returncode == EXIT_NOT_YET, shipped.stdout + shipped.stderr
    assert "not yet" in shipped.stdout
    first = json.loads((ws / "last-check.json").read_text())
    assert not first["passed"] and any(not g["ok"] for g in first["goals"])
    FIXES[number](ws)
    fixed = fhirlab_exercise(seeded, "check", str(number))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    last = json.loads((ws / "last-check.json").read_text())
    assert last["passed"] and all(g["ok"] for g in last["goals"]), last
    assert Path(last["results"], "report.md").is_file()
