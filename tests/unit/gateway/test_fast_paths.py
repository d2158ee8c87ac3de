"""The hot paths written out for speed answer exactly as the general code they shortcut."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.denial import Denial
from gateway.returned import Returned
from gateway.stages.compartment import _KIND
from gateway.stages.scopes import ReadableType
from labcore.patient_compartment import (
    _PATHS,
    Membership,
    _any_base_patient_id,
    _reference_strings,
    compartment_patient_ids,
    in_compartment_types,
    membership,
    not_in_compartment_types,
)
from labcore.scopes import parse_scopes


def test_the_kind_table_is_membership() -> None:
    for rtype in [*in_compartment_types(), *not_in_compartment_types(), "Nope", "patient"]:
        assert _KIND.get(rtype, Membership.UNKNOWN) is membership(rtype)
    assert _KIND.get(None, Membership.UNKNOWN) is Membership.UNKNOWN


def _walked(resource: dict[str, Any]) -> frozenset[str]:
    """`compartment_patient_ids` as every path's `_reference_strings` gives it."""
    ids = set()
    if resource["resourceType"] == "Patient" and isinstance(resource.get("id"), str):
        ids.add(resource["id"])
    for path in _PATHS[resource["resourceType"]]:
        for ref in _reference_strings(resource, path):
            pid = _any_base_patient_id(ref)
            if pid is not None:
                ids.add(pid)
    return frozenset(ids)


_SHAPES: list[Any] = [
    None,
    "Patient/p1",
    {"reference": "Patient/p1"},
    {"reference": 7},
    {"display": "x"},
    [{"reference": "Patient/p2"}, "x", {"reference": "http://h/fhir/Patient/p3/_history/2"}],
    [],
    {"reference": "Group/g1"},
]


@pytest.mark.parametrize("shape", _SHAPES)
def test_compartment_ids_match_the_walk(shape: Any) -> None:
    for rtype, paths in _PATHS.items():
        resource: dict[str, Any] = {"resourceType": rtype, "id": "p0"}
        for path in paths:
            node = resource
            for step in path[:-1]:
                node = node.setdefault(step, {})
            if shape is not None:
                node[path[-1]] = shape
        assert compartment_patient_ids(resource) == _walked(resource), rtype


def _said(denial: Denial | None) -> tuple[int, str, str | None] | None:
    return None if denial is None else (denial.status, denial.reason, denial.control)


@pytest.mark.parametrize(
    "scope",
    ["patient/Observation.rs", "patient/Observation.rs?category=laboratory", "patient/*.rs"],
)
@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "Observation", "id": "o1"},
        {"resourceType": "Observation", "id": "o1", "category": [{"coding": [{"code": "x"}]}]},
        {"resourceType": "Patient", "id": "p1"},
        {"resourceType": "Bundle"},
        {"resourceType": 7},
        {"id": "no type"},
    ],
)
def test_readable_type_fast_path_answers_as_the_rules(scope: str, resource: dict[str, Any]) -> None:
    # nothing contained: the check is `_one`'s answer, fast path or not
    check = ReadableType(parse_scopes(scope))
    returned = Returned(resource)
    assert _said(check(returned)) == _said(check._one(returned.resource_type, resource))
