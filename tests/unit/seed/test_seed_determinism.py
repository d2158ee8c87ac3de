from __future__ import annotations

import json

from seed import PatientRecord, PopulationOptions, generate_population
from seed.writers import dumps


def _dump(records: list[PatientRecord]) -> str:
    return "\n".join(dumps(r) for rec in records for r in rec.resources)


def _population_json(options: PopulationOptions) -> str:
    pop = generate_population(options)
    shared = [dumps(r) for r in pop.shared_resources() + pop.groups()]
    return "\n".join(shared) + _dump(list(pop.records()))


def test_same_seed_gives_byte_identical_json() -> None:
    options = PopulationOptions(patients=40, seed=123, tenants=3)
    first = _population_json(options)
    second = _population_json(PopulationOptions(patients=40, seed=123, tenants=3))
    assert first == second
    assert len(first) > 100_000


def test_different_seed_gives_different_population() -> None:
    a = generate_population(PopulationOptions(patients=20, seed=1))
    b = generate_population(PopulationOptions(patients=20, seed=2))
    a_patients = [rec.patient for rec in a.records()]
    b_patients = [rec.patient for rec in b.records()]
    # Same ids (ids depend on the index only) but different people.
    assert [p["id"] for p in a_patients] == [p["id"] for p in b_patients]
    assert sum(pa != pb for pa, pb in zip(a_patients, b_patients, strict=True)) == 20
    assert {p["birthDate"] for p in a_patients} != {p["birthDate"] for p in b_patients}


def test_patient_k_does_not_depend_on_population_size() -> None:
    small = generate_population(PopulationOptions(patients=8, seed=99))
    large = generate_population(PopulationOptions(patients=500, seed=99))
    for k in (0, 3, 7):
        assert _dump([small.record(k)]) == _dump([large.record(k)])


def test_slices_equal_the_full_run_in_any_order() -> None:
    pop = generate_population(PopulationOptions(patients=30, seed=5))
    full = _dump(list(pop.records()))
    pieces = list(pop.records(20, 30)) + list(pop.records(0, 20))
    pieces.sort(key=lambda rec: rec.index)
    assert _dump(pieces) == full
    assert [rec.index for rec in pop.records(28, 99)] == [28, 29]


def test_sensitive_share_does_not_move_other_domains() -> None:
    """Streams per domain: changing the sensitive share keeps demographics and immunizations."""
    a = generate_population(PopulationOptions(patients=30, seed=8, sensitive_share=0.0))
    b = generate_population(PopulationOptions(patients=30, seed=8, sensitive_share=1.0))
    for ra, rb in zip(a.records(), b.records(), strict=True):
        assert ra.patient == rb.patient
        imm_a = [r for r in ra.resources if r["resourceType"] == "Immunization"]
        imm_b = [r for r in rb.resources if r["resourceType"] == "Immunization"]
        assert imm_a == imm_b
    assert sum(rec.sensitive for rec in b.records()) > sum(rec.sensitive for rec in a.records())


def test_seed_and_options_are_recorded_in_the_summary() -> None:
    pop = generate_population(PopulationOptions(patients=12, seed=77, tenants=3))
    summary = pop.summary().to_dict()
    assert summary["seed"] == 77
    assert summary["options"] == {
        "patients": 12,
        "seed": 77,
        "tenants": 3,
        "practitioners_per_org": 8,
        "history_years": 2,
        "sensitive_share": 0.12,
        "reference_date": "2025-06-02",
    }
    assert summary["generator"] == "fhirlab-seed/1"
    json.dumps(summary)  # JSON-ready
