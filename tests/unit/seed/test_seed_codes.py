"""Code systems and UCUM units on the generated resources (the FHIR models do not check these)."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest

from seed import codes
from tests.unit.seed.helpers import walk

UCUM = "http://unitsofmeasure.org"

#: LOINC code → (category, UCUM code): the table the task fixed, checked on the output.
OBSERVATION_CODES = {
    "8867-4": ("vital-signs", "/min"),
    "9279-1": ("vital-signs", "/min"),
    "8310-5": ("vital-signs", "Cel"),
    "29463-7": ("vital-signs", "kg"),
    "8302-2": ("vital-signs", "cm"),
    "39156-5": ("vital-signs", "kg/m2"),
    "2708-6": ("vital-signs", "%"),
    "85354-9": ("vital-signs", None),  # panel: values in components
    "2345-7": ("laboratory", "mg/dL"),
    "4548-4": ("laboratory", "%"),
    "2093-3": ("laboratory", "mg/dL"),
    "2160-0": ("laboratory", "mg/dL"),
    "718-7": ("laboratory", "g/dL"),
    "20447-9": ("laboratory", "{copies}/mL"),
    "24467-3": ("laboratory", "/uL"),
    "44261-6": ("survey", "{score}"),
    "70274-6": ("survey", "{score}"),
}
ALLOWED_SYSTEMS = {
    codes.SNOMED, codes.ICD10CM, codes.LOINC, codes.RXNORM, codes.CVX, codes.ACT_CODE,
    codes.CONFIDENTIALITY, codes.OBS_CATEGORY, codes.OBS_INTERPRETATION,
    codes.CONDITION_CLINICAL, codes.CONDITION_VERIFICATION, codes.CONDITION_CATEGORY,
    codes.ALLERGY_CLINICAL, codes.ALLERGY_VERIFICATION, codes.MEDREQ_CATEGORY,
    codes.PARTICIPATION_TYPE, codes.IDENTIFIER_TYPE, codes.MARITAL_STATUS,
    codes.ORGANIZATION_TYPE, codes.SERVICE_TYPE, codes.APPOINTMENT_TYPE, codes.DOCREF_CATEGORY,
    codes.TENANT_TAG_SYSTEM, "urn:ietf:bcp:47",
}  # fmt: skip


def _of(all_resources: list[dict[str, Any]], rtype: str) -> list[dict[str, Any]]:
    return [r for r in all_resources if r["resourceType"] == rtype]


def test_every_coding_uses_a_known_system(all_resources: list[dict[str, Any]]) -> None:
    systems = Counter(
        d["system"] for r in all_resources for d in walk(r) if "code" in d and "system" in d
    )
    systems.pop(UCUM)  # quantities
    assert set(systems) <= ALLOWED_SYSTEMS, set(systems) - ALLOWED_SYSTEMS


def test_observation_codes_categories_and_ucum_units(all_resources: list[dict[str, Any]]) -> None:
    seen = set()
    for obs in _of(all_resources, "Observation"):
        coding = obs["code"]["coding"][0]
        assert coding["system"] == codes.LOINC
        category, unit = OBSERVATION_CODES[coding["code"]]
        seen.add(coding["code"])
        cat = obs["category"][0]["coding"][0]
        assert (cat["system"], cat["code"]) == (codes.OBS_CATEGORY, category)
        if unit is None:
            components = {
                c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in obs["component"]
            }
            assert set(components) == {"8480-6", "8462-4"}
            for q in components.values():
                assert (q["system"], q["code"], q["unit"]) == (UCUM, "mm[Hg]", "mm[Hg]")
            assert components["8480-6"]["value"] > components["8462-4"]["value"]
        else:
            q = obs["valueQuantity"]
            assert (q["system"], q["code"]) == (UCUM, unit), coding["code"]
    assert seen == set(OBSERVATION_CODES)


@pytest.mark.parametrize(
    ("loinc", "low", "high"),
    [
        ("8867-4", 40, 190),  # heart rate, infants included
        ("9279-1", 8, 45),
        ("8310-5", 35.5, 40.5),
        ("2708-6", 85, 100),
        ("29463-7", 2, 250),
        ("8302-2", 45, 205),
        ("39156-5", 11, 70),
        ("2345-7", 55, 400),
        ("4548-4", 4.0, 14),
        ("2093-3", 100, 350),
        ("2160-0", 0.2, 4),
        ("718-7", 7, 19),
    ],
)
def test_values_are_physiological(
    all_resources: list[dict[str, Any]], loinc: str, low: float, high: float
) -> None:
    values = [
        o["valueQuantity"]["value"]
        for o in _of(all_resources, "Observation")
        if o["code"]["coding"][0]["code"] == loinc
    ]
    assert len(values) >= 20
    assert low <= min(values) and max(values) <= high, (min(values), max(values))


def test_conditions_carry_snomed_and_icd10(all_resources: list[dict[str, Any]]) -> None:
    table = {c.snomed.code: c.icd10.code for c in codes.CONDITIONS}
    for cond in _of(all_resources, "Condition"):
        systems = {c["system"]: c["code"] for c in cond["code"]["coding"]}
        assert set(systems) == {codes.SNOMED, codes.ICD10CM}
        assert table[systems[codes.SNOMED]] == systems[codes.ICD10CM]
    assert table["44054006"] == "E11.9" and table["59621000"] == "I10"


def test_medications_match_their_condition(all_resources: list[dict[str, Any]]) -> None:
    conditions = {c["id"]: c for c in _of(all_resources, "Condition")}
    allowed = {c.snomed.code: {m.code for m in c.medications} for c in codes.CONDITIONS}
    pairs = set()
    for med in _of(all_resources, "MedicationRequest"):
        coding = med["medicationCodeableConcept"]["coding"][0]
        assert coding["system"] == codes.RXNORM
        reason = conditions[med["reasonReference"][0]["reference"].removeprefix("Condition/")]
        snomed = reason["code"]["coding"][0]["code"]
        assert coding["code"] in allowed[snomed]
        pairs.add((snomed, coding["code"]))
    assert ("44054006", "860975") in pairs  # diabetes → metformin
    assert ("59621000", "314076") in pairs  # hypertension → lisinopril


def test_immunizations_are_cvx(all_resources: list[dict[str, Any]]) -> None:
    cvx = Counter(i["vaccineCode"]["coding"][0]["code"] for i in _of(all_resources, "Immunization"))
    assert {"08", "140", "208", "03"} <= set(cvx)
    for imm in _of(all_resources, "Immunization"):
        assert imm["vaccineCode"]["coding"][0]["system"] == codes.CVX


def test_encounter_classes_and_appointment_statuses(all_resources: list[dict[str, Any]]) -> None:
    classes = Counter(e["class"]["code"] for e in _of(all_resources, "Encounter"))
    assert set(classes) == {"AMB", "EMER", "IMP"}
    assert all(e["class"]["system"] == codes.ACT_CODE for e in _of(all_resources, "Encounter"))
    statuses = Counter(a["status"] for a in _of(all_resources, "Appointment"))
    assert set(statuses) == {"booked", "fulfilled", "cancelled", "noshow"}
    for appt in _of(all_resources, "Appointment"):
        actors = [p["actor"]["reference"].split("/")[0] for p in appt["participant"]]
        assert actors == ["Patient", "Practitioner"]
        assert appt["serviceType"]


def test_notes_are_progress_notes_with_text(all_resources: list[dict[str, Any]]) -> None:
    docs = _of(all_resources, "DocumentReference")
    types = Counter(d["type"]["coding"][0]["code"] for d in docs)
    assert types["11506-3"] > len(docs) / 2
    assert set(types) <= {"11506-3", "34904-3", "18842-5"}
    for doc in docs[:200]:
        attachment = doc["content"][0]["attachment"]
        assert attachment["contentType"] == "text/plain"
        text = base64.b64decode(attachment["data"], validate=True).decode()
        assert len(text) > 60
        assert doc["context"]["encounter"][0]["reference"].startswith("Encounter/")
        assert doc["author"][0]["reference"].startswith("Practitioner/")
