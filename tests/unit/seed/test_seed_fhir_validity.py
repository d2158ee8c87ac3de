"""Every generated resource validates against the FHIR models of ``fhir.resources``.

fhir.resources 8.x defaults to R5; ``fhir.resources.R4B`` is used instead. For the 13 resource
types generated here R4B and R4 have the same elements (R4B's changes are in other resources:
SubscriptionTopic, Citation, Evidence*, medication definition resources, …), so R4B validation
stands in for R4. The models check structure, cardinality and datatype formats (ids, dates,
instants, references), not terminology bindings; those are checked in test_seed_codes.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from seed import Population
from seed.bundles import iter_bundles
from seed.ids import patient_id

EXPECTED_TYPES = {
    "Organization", "Practitioner", "PractitionerRole", "Group", "Patient", "Condition",
    "MedicationRequest", "AllergyIntolerance", "Immunization", "Appointment", "Encounter",
    "Observation", "DocumentReference",
}  # fmt: skip


def _shape(resource: dict[str, Any]) -> tuple[Any, ...]:
    """Resources of one shape validate alike: type, elements present, code, value elements."""
    code = resource.get("code") or resource.get("vaccineCode") or resource.get("class") or {}
    codings = code.get("coding", [code]) if isinstance(code, dict) else []
    return (
        resource["resourceType"],
        tuple(sorted(resource)),
        tuple(c.get("code") for c in codings),
        tuple(sorted(resource.get("valueQuantity", {}))),
        resource.get("status"),
    )


def test_every_resource_shape_validates_as_r4(all_resources: list[dict[str, Any]]) -> None:
    """All resources of 40 patients, plus one resource of every other shape in the population."""
    first_patients = {patient_id(k, tenants=3) for k in range(40)}
    sample, shapes = [], set()
    for resource in all_resources:
        shape = _shape(resource)
        subject = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
        if shape not in shapes or subject.removeprefix("Patient/") in first_patients:
            shapes.add(shape)
            sample.append(resource)
    assert len(shapes) > 60 and len(sample) > 1000
    failures = []
    for resource in sample:
        model = get_fhir_model_class(resource["resourceType"])
        try:
            model.model_validate(resource)
        except Exception as exc:  # collect all, report a few
            failures.append(f"{resource['resourceType']}/{resource['id']}: {exc}")
    assert not failures, "\n".join(failures[:5])
    assert set(Counter(r["resourceType"] for r in sample)) == EXPECTED_TYPES


def test_validation_catches_a_broken_resource(all_resources: list[dict[str, Any]]) -> None:
    doc = next(r for r in all_resources if r["resourceType"] == "DocumentReference")
    broken = {**doc, "date": "2024-01-01"}  # DocumentReference.date is an instant in R4
    with pytest.raises(ValueError, match="date"):
        get_fhir_model_class("DocumentReference").model_validate(broken)


def test_bundles_validate(population: Population) -> None:
    model = get_fhir_model_class("Bundle")
    phases = set()
    for n, (name, bundle) in enumerate(iter_bundles(population)):
        if n % 40 == 0 or bundle["entry"][0]["resource"]["resourceType"] != "Patient":
            validated = model.model_validate(bundle)
            assert len(validated.entry) == len(bundle["entry"]), name
            phases.add(name.split("-", 1)[0])
    assert phases == {"0", "1", "2"}  # the shared bundle, patient bundles and group bundles
