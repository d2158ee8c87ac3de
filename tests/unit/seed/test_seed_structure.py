"""Ids, references, tenants and Groups: what a loader and the gateway rely on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from seed import PatientRecord, Population
from seed.codes import TENANT_TAG_SYSTEM
from seed.ids import FHIR_ID_RE
from tests.unit.seed.helpers import walk

COMPARTMENT_FIELDS = ("subject", "patient")


def _tenant(resource: dict[str, Any]) -> str:
    tags: list[str] = [
        t["code"] for t in resource["meta"]["tag"] if t["system"] == TENANT_TAG_SYSTEM
    ]
    assert len(tags) == 1, resource["id"]
    return tags[0]


def test_ids_are_fhir_valid_and_unique(all_resources: list[dict[str, Any]]) -> None:
    keys = [f"{r['resourceType']}/{r['id']}" for r in all_resources]
    assert len(keys) == len(set(keys))
    ids = [r["id"] for r in all_resources]
    assert len(ids) == len(set(ids)), "ids are unique across types too"
    assert all(FHIR_ID_RE.match(i) for i in ids)
    assert max(map(len, ids)) <= 64


def test_every_reference_resolves_within_the_population(
    all_resources: list[dict[str, Any]],
) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in all_resources}
    references = [d["reference"] for r in all_resources for d in walk(r) if "reference" in d]
    assert len(references) > 2 * len(all_resources)  # the walk does find references
    unresolved = sorted({ref for ref in references if ref not in known})
    assert not unresolved, unresolved[:10]


def test_references_never_cross_tenants(all_resources: list[dict[str, Any]]) -> None:
    by_key = {f"{r['resourceType']}/{r['id']}": r for r in all_resources}
    for resource in all_resources:
        tenant = _tenant(resource)
        for d in walk(resource):
            if "reference" in d:
                assert _tenant(by_key[d["reference"]]) == tenant, (resource["id"], d)


def test_patients_are_dealt_round_robin_over_tenants(
    population: Population, records: list[PatientRecord]
) -> None:
    assert [rec.patient_id for rec in records[:4]] == [
        "pat-a-000000",
        "pat-b-000001",
        "pat-c-000002",
        "pat-a-000003",
    ]
    assert Counter(rec.tenant for rec in records) == {
        "tenant-a": 80,
        "tenant-b": 80,
        "tenant-c": 80,
    }
    for rec in records:
        patient = rec.patient
        letter = rec.tenant[-1]
        assert patient["managingOrganization"] == {"reference": f"Organization/org-{letter}"}
        assert patient["generalPractitioner"][0]["reference"].startswith(
            f"Practitioner/prac-{letter}-"
        )
        mrn = patient["identifier"][0]
        assert mrn["system"] == f"https://fhirlab.dev/{rec.tenant}/mrn"
        assert mrn["type"]["coding"][0]["code"] == "MR"


def test_every_patient_resource_is_in_its_patient_compartment(
    records: list[PatientRecord],
) -> None:
    for rec in records:
        assert rec.resources[0] is rec.patient and rec.patient["resourceType"] == "Patient"
        own = {"reference": f"Patient/{rec.patient_id}"}
        for resource in rec.resources[1:]:
            assert _tenant(resource) == rec.tenant
            assert resource["id"].split("-", 1)[1].startswith(rec.patient_id[4:]), resource["id"]
            if resource["resourceType"] == "Appointment":
                assert own in [p["actor"] for p in resource["participant"]]
            else:
                assert own in [resource.get(f) for f in COMPARTMENT_FIELDS], resource["id"]


def test_each_tenant_group_lists_exactly_its_patients(
    population: Population, records: list[PatientRecord]
) -> None:
    groups = population.groups()
    assert [g["id"] for g in groups] == ["grp-a", "grp-b", "grp-c"]
    for group in groups:
        tenant = _tenant(group)
        expected = {rec.patient_id for rec in records if rec.tenant == tenant}
        members = [m["entity"]["reference"] for m in group["member"]]
        assert len(members) == len(set(members)) == group["quantity"] == 80
        assert {m.removeprefix("Patient/") for m in members} == expected
        assert group["type"] == "person" and group["actual"] is True
        assert group["managingEntity"]["reference"] == f"Organization/org-{tenant[-1]}"
        assert population.patient_ids(tenant) == sorted(expected)


def test_practitioners_have_valid_npis_and_roles(population: Population) -> None:
    from seed.ids import npi_is_valid

    resources = population.practitioners()
    practitioners = [r for r in resources if r["resourceType"] == "Practitioner"]
    roles = [r for r in resources if r["resourceType"] == "PractitionerRole"]
    assert len(practitioners) == len(roles) == 3 * 8
    npis = [p["identifier"][0] for p in practitioners]
    assert all(i["system"] == "http://hl7.org/fhir/sid/us-npi" for i in npis)
    assert all(npi_is_valid(i["value"]) for i in npis)
    assert len({i["value"] for i in npis}) == 24
    for role in roles:
        letter = role["id"].split("-")[1]
        assert role["organization"] == {"reference": f"Organization/org-{letter}"}


def test_no_empty_values(all_resources: list[dict[str, Any]]) -> None:
    """FHIR JSON never has empty arrays, objects or strings (HAPI rejects them)."""

    def empty_paths(node: Any, path: str) -> Iterator[str]:
        if node in ([], {}, "", None):
            yield path
        elif isinstance(node, dict):
            for key, value in node.items():
                yield from empty_paths(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from empty_paths(value, f"{path}[{i}]")

    problems = [p for r in all_resources for p in empty_paths(r, r["id"])]
    assert not problems, problems[:10]


def test_groups_of_tenants_without_patients_have_no_member_array() -> None:
    from seed import PopulationOptions, generate_population

    pop = generate_population(PopulationOptions(patients=1, seed=1, tenants=3))
    groups = {g["id"]: g for g in pop.groups()}
    assert groups["grp-a"]["quantity"] == 1 and len(groups["grp-a"]["member"]) == 1
    assert groups["grp-b"]["quantity"] == 0 and "member" not in groups["grp-b"]
