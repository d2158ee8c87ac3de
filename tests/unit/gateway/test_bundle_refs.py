"""References between a Bundle's entries (`urn:uuid:` full URLs), resolved for the checks."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.bundle_refs import local_identities, resolve_local


def test_only_entries_written_by_id_give_their_url_an_identity() -> None:
    entries: list[Any] = [
        {"fullUrl": "urn:uuid:a", "request": {"method": "PUT", "url": "Patient/p1"}},
        {"fullUrl": "urn:uuid:b", "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:c", "request": {"method": "PUT", "url": "Patient?identifier=x"}},
        {"fullUrl": "urn:oid:1.2.3", "request": {"method": "PUT", "url": "Encounter/e1"}},
        {"fullUrl": "http://x/fhir/Patient/p2", "request": {"method": "PUT", "url": "Patient/p2"}},
        {"fullUrl": "urn:uuid:d", "request": {"method": "PUT", "url": "Patient/../p3"}},
        "not an entry",
    ]
    assert local_identities(entries) == {
        "urn:uuid:a": "Patient/p1",
        "urn:oid:1.2.3": "Encounter/e1",
    }


def test_references_anywhere_are_resolved_in_a_copy() -> None:
    resource = {
        "resourceType": "Appointment",
        "participant": [{"actor": {"reference": "urn:uuid:a"}}, {"actor": {"reference": "x"}}],
    }
    resolved = resolve_local(resource, {"urn:uuid:a": "Patient/p1"})
    assert resolved["participant"][0]["actor"]["reference"] == "Patient/p1"
    assert resolved["participant"][1]["actor"]["reference"] == "x"
    assert resource["participant"][0]["actor"]["reference"] == "urn:uuid:a"  # untouched


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["reference", "a", "b"]), children, max_size=3)
    ),
    max_leaves=20,
)


@given(JSON)
def test_resolution_never_fails_and_is_identity_without_matches(value: Any) -> None:
    assert resolve_local(value, {}) is value
    assert resolve_local(value, {"urn:uuid:never": "Patient/p"}) == value
