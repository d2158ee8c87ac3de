"""A response's resources are read once for every check and the audit (`gateway/returned.py`)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gateway.returned
from gateway.context import RequestContext
from gateway.proxy import Forwarded, count_patients
from gateway.returned import Returned
from gateway.screen import Screened, screen
from gateway.stages.compartment import response_check
from gateway.stages.tenant import TENANT_TAG_SYSTEM, SameTenant
from labcore.patient_compartment import compartment_patient_ids, references_patient

TAG = {"tag": [{"system": TENANT_TAG_SYSTEM, "code": "tenant-a"}]}


def obs(oid: str, *refs: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "meta": TAG,
        "subject": {"reference": refs[0]},
        "performer": [{"reference": ref} for ref in refs[1:]],
    }


def test_each_resource_is_walked_once_for_the_checks_and_the_audit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walked: list[str] = []

    def counting(resource: dict[str, Any]) -> frozenset[str]:
        walked.append(resource["id"])
        return compartment_patient_ids(resource)

    monkeypatch.setattr(gateway.returned, "compartment_patient_ids", counting)
    body = {
        "resourceType": "Bundle",
        "entry": [{"resource": obs(f"o{i}", "Patient/p1", "Patient/p1")} for i in range(3)],
    }
    ctx = RequestContext("r", "GET", "/fhir/Observation", "")
    ctx.resource_checks += [
        ("C10", SameTenant("tenant-a")),
        ("C08", response_check("p1", "Observation")),
    ]
    screened = screen(ctx, body)
    assert isinstance(screened, Screened) and not screened.changed
    forwarded = Forwarded(200, [], b"{}")
    forwarded.resources = screened.resources
    count_patients(ctx, forwarded)
    assert ctx.patients == {"p1"}
    assert walked == ["o0", "o1", "o2"]


def test_reference_data_naming_another_patient_is_still_refused() -> None:
    contact = [{"x": {"reference": "Patient/q"}}]
    org = {"resourceType": "Organization", "id": "x", "contact": contact}
    denial = response_check("p1", "Organization/x")(Returned(org))
    assert denial is not None and "refers to patient q" in denial.reason
    assert Returned(org).referenced_patients == {"q"}
    assert Returned(org).compartment_patients == frozenset()


json_leaf = st.one_of(st.none(), st.integers(), st.text(max_size=20))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["reference", "subject", "performer", "link", "other", "x"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=15,
)


@given(
    st.sampled_from(["Observation", "Patient", "Organization", "Appointment", "Nope"]),
    st.dictionaries(st.text(max_size=10), json_value, max_size=5),
    st.from_regex(r"[A-Za-z0-9\-.]{1,8}", fullmatch=True),
)
def test_the_shared_reading_decides_as_the_direct_one(
    rtype: str, body: dict[str, Any], pid: str
) -> None:
    resource = {**body, "resourceType": rtype}
    returned = Returned(resource)
    assert (pid in returned.compartment_patients) is references_patient(resource, pid)
    assert returned.compartment_patients <= returned.referenced_patients | {resource.get("id")}
