"""The R4 Patient compartment table and the membership check (C08)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labcore.patient_compartment import (
    NOT_IN_COMPARTMENT,
    PATIENT_COMPARTMENT,
    AnswerText,
    Membership,
    compartment_patient_ids,
    in_compartment_types,
    membership,
    not_in_compartment_types,
    patient_element_paths,
    patient_id_from_reference,
    patient_search_params,
    referenced_patient_ids,
    references_patient,
)

# -- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rtype", "params"),
    [
        ("Observation", ("subject", "performer")),
        ("Condition", ("patient", "asserter")),
        ("Encounter", ("patient",)),
        ("MedicationRequest", ("subject",)),
        ("AllergyIntolerance", ("patient", "recorder", "asserter")),
        ("Immunization", ("patient",)),
        ("Appointment", ("actor",)),
        ("DocumentReference", ("subject", "author")),
        ("Patient", ("link",)),
        ("Group", ("member",)),
        ("AuditEvent", ("patient",)),
        ("Coverage", ("policy-holder", "subscriber", "beneficiary", "payor")),
        ("MedicationAdministration", ("patient", "performer", "subject")),
        ("Invoice", ("subject", "patient", "recipient")),
        ("SupplyRequest", ("subject",)),
        ("ResearchSubject", ("individual",)),
    ],
)
def test_search_params_match_the_r4_definition(rtype: str, params: tuple[str, ...]) -> None:
    assert patient_search_params(rtype) == params
    assert membership(rtype) is Membership.IN


@pytest.mark.parametrize(
    ("rtype", "paths"),
    [
        ("Observation", ("subject", "performer")),
        ("Condition", ("subject", "asserter")),
        ("Appointment", ("participant.actor",)),
        ("AuditEvent", ("agent.who", "entity.what")),
        ("Coverage", ("policyHolder", "subscriber", "beneficiary", "payor")),
        ("Patient", ("link.other",)),
        ("Group", ("member.entity",)),
        ("Procedure", ("subject", "performer.actor")),
        ("CarePlan", ("subject", "activity.detail.performer")),
        ("Composition", ("subject", "author", "attester.party")),
        ("EnrollmentRequest", ("candidate",)),
        ("SupplyRequest", ("deliverTo",)),
        ("Provenance", ("target",)),
        ("Person", ("link.target",)),
        ("MedicationAdministration", ("subject", "performer.actor")),  # deduplicated
    ],
)
def test_element_paths(rtype: str, paths: tuple[str, ...]) -> None:
    assert patient_element_paths(rtype) == paths


def test_sizes_and_disjointness() -> None:
    assert len(in_compartment_types()) == 66
    assert len(not_in_compartment_types()) == 80  # 79 listed + Parameters
    assert in_compartment_types().isdisjoint(not_in_compartment_types())
    assert set(PATIENT_COMPARTMENT) == in_compartment_types()
    assert all(PATIENT_COMPARTMENT[t] for t in PATIENT_COMPARTMENT)


@pytest.mark.parametrize(
    "rtype",
    [
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Medication",
        "Location",
        "Task",
        "Device",
        "Binary",
        "Bundle",
        "Slot",
        "Questionnaire",
        "ValueSet",
        "Substance",
    ],
)
def test_never_in_compartment(rtype: str) -> None:
    assert rtype in NOT_IN_COMPARTMENT
    assert membership(rtype) is Membership.NEVER
    assert patient_search_params(rtype) == ()
    assert patient_element_paths(rtype) == ()


@pytest.mark.parametrize("rtype", ["Foo", "observation", "ClinicalUseDefinition", ""])
def test_unknown_types(rtype: str) -> None:
    assert membership(rtype) is Membership.UNKNOWN
    assert patient_search_params(rtype) == ()


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        PATIENT_COMPARTMENT["Observation"]["subject"] = ("x",)  # type: ignore[index]
    with pytest.raises(TypeError):
        PATIENT_COMPARTMENT["Foo"] = {}  # type: ignore[index]


def test_element_paths_exist_in_fhir_models() -> None:
    """Every element path names Reference elements in the published models (R4B, = R4 here)."""
    fhir = pytest.importorskip("fhir.resources.R4B")
    import typing

    def leaf_name(annotation: Any) -> str:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if args:
            return leaf_name(args[0])
        name = getattr(annotation, "__name__", str(annotation))
        return name[:-4] if name.endswith("Type") else name

    for rtype in in_compartment_types():
        for path in patient_element_paths(rtype):
            cls: Any = fhir.get_fhir_model_class(rtype)
            for i, part in enumerate(path.split(".")):
                fields = {(f.alias or n): f for n, f in cls.model_fields.items()}
                assert part in fields, f"{rtype}.{path}: no element {part!r}"
                name = leaf_name(fields[part].annotation)
                if i < len(path.split(".")) - 1:
                    cls = fhir.get_fhir_model_class(name)
            assert name == "Reference", f"{rtype}.{path} is a {name}, not a Reference"


# -- references --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/123", "123"),
        ("Patient/123/_history/2", "123"),
        ("https://ehr.example.org/fhir/Patient/123", "123"),
        ("http://localhost:8080/fhir/Patient/a.b-c/_history/7", "a.b-c"),
        ("Practitioner/123", None),
        ("Group/Patient", None),
        ("Patient/", None),
        ("Patient", None),
        ("Patient?identifier=x|1", None),
        ("#contained-patient", None),
        ("urn:uuid:4f0c5a2e-0000-0000-0000-000000000000", None),
        ("foo/Patient/123", None),
        ("Patient/12 3", None),
        ("Patient/" + "1" * 65, None),
        ("Patient/123/_history", None),
        ("://Patient/1", None),
    ],
)
def test_patient_id_from_reference(reference: str, expected: str | None) -> None:
    assert patient_id_from_reference(reference) == expected


def test_absolute_reference_restricted_to_known_bases() -> None:
    bases = ["https://ehr.example.org/fhir/"]
    assert patient_id_from_reference("https://ehr.example.org/fhir/Patient/1", bases) == "1"
    assert patient_id_from_reference("https://evil.example/fhir/Patient/1", bases) is None
    assert patient_id_from_reference("Patient/1", bases) == "1"


def obs(subject: str, *performers: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": subject},
        "performer": [{"reference": p} for p in performers],
    }


def test_observation_subject_and_performer() -> None:
    assert references_patient(obs("Patient/1"), "1")
    assert not references_patient(obs("Patient/2"), "1")
    assert references_patient(obs("Group/g1", "Practitioner/p", "Patient/1"), "1")
    assert references_patient(obs("https://h/fhir/Patient/1/_history/4"), "1")
    assert compartment_patient_ids(obs("Patient/2", "Patient/1", "Practitioner/9")) == {"1", "2"}


def test_appointment_walks_lists() -> None:
    appt = {
        "resourceType": "Appointment",
        "participant": [
            {"actor": {"reference": "Practitioner/p1"}},
            {"type": [{"text": "x"}]},
            {"actor": {"reference": "Patient/42", "display": "Pat"}},
        ],
    }
    assert references_patient(appt, "42")
    assert not references_patient(appt, "p1")
    assert compartment_patient_ids(appt) == {"42"}


def test_patient_itself_and_links() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "7",
        "link": [{"other": {"reference": "Patient/8"}}],
    }
    assert references_patient(patient, "7")
    assert references_patient(patient, "8")
    assert not references_patient(patient, "9")
    assert compartment_patient_ids(patient) == {"7", "8"}


def test_condition_uses_subject_not_a_patient_element() -> None:
    assert references_patient(
        {"resourceType": "Condition", "subject": {"reference": "Patient/1"}}, "1"
    )
    assert not references_patient(
        {"resourceType": "Condition", "patient": {"reference": "Patient/1"}}, "1"
    )


def test_coverage_and_audit_event_paths() -> None:
    coverage = {"resourceType": "Coverage", "payor": [{"reference": "Patient/5"}]}
    assert references_patient(coverage, "5")
    audit = {
        "resourceType": "AuditEvent",
        "agent": [{"who": {"reference": "Practitioner/1"}}],
        "entity": [{"what": {"reference": "Patient/3"}}],
    }
    assert references_patient(audit, "3")


def test_never_and_unknown_types_are_not_in_any_compartment() -> None:
    org = {"resourceType": "Organization", "id": "1", "partOf": {"reference": "Patient/1"}}
    assert not references_patient(org, "1")
    task = {"resourceType": "Task", "for": {"reference": "Patient/1"}}
    assert not references_patient(task, "1")
    assert not references_patient(
        {"resourceType": "Foo", "subject": {"reference": "Patient/1"}}, "1"
    )
    assert not references_patient({"subject": {"reference": "Patient/1"}}, "1")


def test_contained_resources_do_not_count() -> None:
    resource = {
        "resourceType": "Observation",
        "subject": {"reference": "#p"},
        "contained": [{"resourceType": "Patient", "id": "p"}],
    }
    assert not references_patient(resource, "p")


def test_malformed_shapes_are_false_not_errors() -> None:
    cases: list[Any] = [
        None,
        [],
        "Patient/1",
        {"resourceType": 5},
        {"resourceType": "Observation", "subject": "Patient/1"},
        {"resourceType": "Observation", "subject": [["Patient/1"]]},
        {"resourceType": "Observation", "subject": {"reference": 1}},
        {"resourceType": "Appointment", "participant": {"actor": [1, None, "x"]}},
    ]
    for case in cases:
        assert references_patient(case, "1") is False
        assert compartment_patient_ids(case) == frozenset()
    assert not references_patient(obs("Patient/1"), "")


def test_deeply_nested_lists_are_not_walked() -> None:
    nested: Any = [{"reference": "Patient/1"}]
    for _ in range(10_000):
        nested = [nested]
    resource = {"resourceType": "Observation", "subject": nested}
    assert not references_patient(resource, "1")
    assert compartment_patient_ids(resource) == frozenset()


def test_fhir_bases_apply_to_membership() -> None:
    resource = obs("https://evil.example/fhir/Patient/1")
    assert references_patient(resource, "1")
    assert not references_patient(resource, "1", fhir_bases=["https://ehr.example/fhir"])


# -- properties --------------------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["reference", "subject", "actor", "participant", "link", "other", "who", "x"]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@given(
    st.sampled_from([*sorted(in_compartment_types()), "Organization", "Nope"]),
    st.dictionaries(st.text(max_size=12), json_value, max_size=6),
    st.text(max_size=10),
)
def test_membership_never_raises(rtype: str, body: dict[str, Any], pid: str) -> None:
    resource = {**body, "resourceType": rtype}
    result = references_patient(resource, pid)
    assert result is (pid in compartment_patient_ids(resource) if pid else False)


@given(st.text(max_size=80))
def test_reference_parser_never_raises(reference: str) -> None:
    pid = patient_id_from_reference(reference)
    assert pid is None or (reference.startswith("Patient/") or "://" in reference)


@given(
    st.sampled_from(sorted(in_compartment_types() - {"Patient"})),
    st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True),
)
def test_every_first_path_holding_the_patient_is_found(rtype: str, pid: str) -> None:
    path = patient_element_paths(rtype)[0].split(".")
    node: Any = {"reference": f"Patient/{pid}"}
    for part in reversed(path):
        node = {part: [node]}
    resource = {"resourceType": rtype, **node}
    assert references_patient(resource, pid)
    assert not references_patient(resource, pid + "x")


# -- the answer-wide count of the patients a text names ------------------------------------------

_REFS = st.sampled_from(
    [
        *("Patient/p1", "Patient/p-2", "http://x/fhir/Patient/p1", "Patient/p1/_history/2"),
        *("#c1", "Group/g1", "Practitioner/p1", "urn:uuid:1", "Patient?identifier=p1"),
        *("Patient/p10", "Patient/\u00e9", "http://x/Patient/p2/fhir/Patient/p1"),
    ]
)
_NODES = st.recursive(
    st.fixed_dictionaries({"reference": _REFS}) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["subject", "member", "entity", "x"]), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(_NODES, st.booleans())
def test_a_text_vouched_for_names_no_other_patient(node: object, escaped: bool) -> None:
    resource = {"resourceType": "Group", "id": "g", "x": node}
    raw = orjson.dumps(resource)
    if escaped:
        raw = raw.replace(b"/", b"\\/")  # JSON may escape a slash; the count cannot see past it
    if AnswerText(raw).names_only("p1"):
        assert referenced_patient_ids(resource) <= {"p1"}


def test_the_count_vouches_only_for_exact_references() -> None:
    assert AnswerText(b'{"reference": "Patient/p9"}').names_only("p9")
    assert AnswerText(b'{"reference": "Patient/p9/_history/2", "x": "no"}').names_only("p9")
    assert not AnswerText(b'{"reference": "Patient/p99"}').names_only("p9")
    assert not AnswerText(b'{"reference": "Patient\\/p8"}').names_only("p9")
    assert not AnswerText(b'{"reference": "\\u0050atient/p8"}').names_only("p9")
    assert AnswerText(b'{"id": "x"}').names_only("p9")
