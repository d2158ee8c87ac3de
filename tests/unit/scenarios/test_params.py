"""Parameters: substituted from a run's bindings; unknown ones rejected."""

from __future__ import annotations

import random

import pytest

from simulator.scenarios import Bindings, ParameterError, bindings_for, resolve
from simulator.scenarios.params import unknown_parameters

BINDINGS = Bindings(
    my_patient="pat-a-000000",
    other_patient="pat-a-000002",
    other_tenant_patient="pat-b-000001",
    common_family="Smith",
    my_group="grp-a",
    my_encounter="enc-a-000000-1",
)


def test_resolve_substitutes_in_urls_and_bodies() -> None:
    assert resolve("Observation?patient={other_patient}", BINDINGS) == (
        "Observation?patient=pat-a-000002"
    )
    body = {"subject": {"reference": "Patient/{my_patient}"}, "n": 3, "tags": ["{my_group}"]}
    assert resolve(body, BINDINGS) == {
        "subject": {"reference": "Patient/pat-a-000000"},
        "n": 3,
        "tags": ["grp-a"],
    }


def test_resolve_rejects_unknown_parameters() -> None:
    with pytest.raises(ParameterError, match=r"\{my_doctor\}.*allowed: \{my_patient\}"):
        resolve("Practitioner/{my_doctor}", BINDINGS)
    with pytest.raises(ParameterError, match="no value"):
        resolve("Patient/{my_patient}", {"other_patient": "x"})


def test_unknown_parameters_are_found_in_nested_values() -> None:
    assert unknown_parameters({"a": ["{my_patient}", "{nope}"], "{bad}": 1}) == ["nope", "bad"]


def test_bindings_follow_the_seeded_id_scheme() -> None:
    b = bindings_for(
        "tenant-a", patients=40, tenants=2, common_family="Smith", logins=8,
        rng=random.Random(1),
    )  # fmt: skip
    assert b.my_patient.startswith("pat-a-") and int(b.my_patient[-6:]) < 8
    assert int(b.my_patient[-6:]) % 2 == 0
    assert b.other_patient.startswith("pat-a-") and b.other_patient != b.my_patient
    assert b.other_tenant_patient.startswith("pat-b-")
    assert b.my_group == "grp-a"
    assert b.my_encounter == f"enc-{b.my_patient.removeprefix('pat-')}-1"
    assert bindings_for("tenant-b", patients=4, tenants=2, common_family="X").my_group == "grp-b"


def test_bindings_need_a_big_enough_population() -> None:
    with pytest.raises(ParameterError, match="too small"):
        bindings_for("tenant-a", patients=2, tenants=2, common_family="Smith")
    with pytest.raises(ParameterError, match="tenant-c"):
        bindings_for("tenant-c", patients=10, tenants=2, common_family="Smith")
