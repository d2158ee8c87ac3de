"""Sensitive records (behavioural health, HIV, substance use) carry security labels in meta."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

from seed import PatientRecord, Population, PopulationOptions, generate_population
from seed.codes import ACT_CODE, CONFIDENTIALITY

EXPECTED = {
    "35489007": {"PSY", "BH", "R"},  # depression
    "47505003": {"PSY", "BH", "R"},  # PTSD
    "197480006": {"PSY", "BH", "R"},  # anxiety
    "86406008": {"HIV", "R"},  # HIV infection
    "75544000": {"SUD", "ETH", "R"},  # opioid dependence
}


def _labels(resource: dict[str, Any]) -> set[str]:
    out = set()
    for label in resource["meta"].get("security", []):
        expected_system = CONFIDENTIALITY if label["code"] == "R" else ACT_CODE
        assert label["system"] == expected_system, label
        out.add(label["code"])
    return out


def _sensitive_condition_labels(rec: PatientRecord) -> dict[str, set[str]]:
    """Condition id → expected labels, for the patient's sensitive conditions."""
    out = {}
    for r in rec.resources:
        if r["resourceType"] == "Condition":
            snomed = r["code"]["coding"][0]["code"]
            if snomed in EXPECTED:
                out[r["id"]] = EXPECTED[snomed]
    return out


def test_sensitive_conditions_and_everything_about_them_are_labelled(
    records: list[PatientRecord],
) -> None:
    kinds: Counter[frozenset[str]] = Counter()
    labelled_types: Counter[str] = Counter()
    for rec in records:
        sensitive = _sensitive_condition_labels(rec)
        assert rec.sensitive == bool(sensitive)
        category = {"PSY": "BH", "HIV": "HIV", "SUD": "SUD"}
        expected_categories = {category[c] for v in sensitive.values() for c in v if c in category}
        assert set(rec.sensitivities) == expected_categories
        # Encounters for a sensitive condition, and what documents or measures them.
        encounters = {}
        for r in rec.resources:
            reasons = [
                x["reference"].removeprefix("Condition/") for x in r.get("reasonReference", [])
            ]
            expected = (
                set().union(*(sensitive.get(c, set()) for c in reasons)) if reasons else set()
            )
            if r["resourceType"] == "Condition":
                expected = sensitive.get(r["id"], set())
            if r["resourceType"] == "Encounter":
                encounters[r["id"]] = expected
            assert _labels(r) == expected or r["resourceType"] in (
                "Observation",
                "DocumentReference",
            ), (r["id"], _labels(r), expected)
        for r in rec.resources:
            if r["resourceType"] == "Observation":
                enc = r["encounter"]["reference"].removeprefix("Encounter/")
                assert _labels(r) == encounters[enc], r["id"]
            if r["resourceType"] == "DocumentReference":
                enc = r["context"]["encounter"][0]["reference"].removeprefix("Encounter/")
                assert _labels(r) == encounters[enc], r["id"]
            if _labels(r):
                labelled_types[r["resourceType"]] += 1
        for labels in sensitive.values():
            kinds[frozenset(labels)] += 1
    assert set(kinds) == {frozenset(v) for v in EXPECTED.values()}
    assert set(labelled_types) >= {
        "Condition", "MedicationRequest", "Encounter", "Appointment", "Observation",
        "DocumentReference",
    }  # fmt: skip


def test_unlabelled_notes_never_mention_a_sensitive_condition(
    records: list[PatientRecord],
) -> None:
    words = ("Depressive", "Posttraumatic", "Anxiety", "Human immunodeficiency", "Opioid")
    checked = 0
    for rec in records:
        for r in rec.resources:
            if r["resourceType"] == "DocumentReference" and not _labels(r):
                text = base64.b64decode(r["content"][0]["attachment"]["data"]).decode()
                assert not any(w in text for w in words), (r["id"], text)
                checked += 1
    assert checked > 500


def test_summary_counts_sensitive_categories(population: Population) -> None:
    summary = population.summary()
    by_category = summary.sensitive_by_category
    assert set(by_category) == {"BH", "HIV", "SUD"}
    assert sum(by_category.values()) == summary.sensitive_patients  # one category per patient
    assert summary.sensitive_patients == sum(
        t["sensitive_patients"] for t in summary.tenants.values()
    )


def test_patient_resources_themselves_are_not_labelled(records: list[PatientRecord]) -> None:
    assert all("security" not in rec.patient["meta"] for rec in records)


def test_no_labels_without_sensitive_records() -> None:
    pop = generate_population(PopulationOptions(patients=60, seed=3, sensitive_share=0.0))
    for rec in pop.records():
        assert not rec.sensitive
        assert all("security" not in r["meta"] for r in rec.resources)
