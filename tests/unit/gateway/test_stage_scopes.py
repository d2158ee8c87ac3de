"""Stage `scopes` (C05): every request is covered by a granted SMART scope; an operational AI
client must hold resource-specific scopes (no wildcard); what comes back is held to the scopes
too (`ReadableType`, `WithinScope`)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.context import RequestContext
from gateway.policy import ClientPolicy
from gateway.returned import Returned
from gateway.stages.scopes import (
    ReadableType,
    ScopesStage,
    WithinScope,
    export_types,
    satisfies,
)
from labcore.scopes import parse_scopes
from tests.unit.gateway.stage_kit import context, passes, refusal, verified

STAGE = ScopesStage(ClientPolicy(operational_classes=("operational-ai",)))
BACKEND = "analytics-backend"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
TYPES = ["Patient", "Observation", "Condition", "Appointment", "Encounter", "MedicationRequest"]


def covered(
    scope: str, method: str, path: str, query: str = "", client_class: str | None = None
) -> RequestContext:
    ctx = context(method, path, query, token=verified(scope), client_class=client_class)
    return passes(STAGE.covered, ctx)


def uncovered(
    scope: str, method: str, path: str, query: str = "", client_class: str | None = None
) -> str:
    ctx = context(method, path, query, token=verified(scope), client_class=client_class)
    return refusal(STAGE.covered, ctx, 403, "C05").reason


def kinds(ctx: RequestContext) -> list[str]:
    return [type(check).__name__ for _, check in ctx.resource_checks]


def test_the_check_is_c05() -> None:
    assert [control for control, _ in STAGE.checks()] == ["C05"]


# -- what the request needs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "method", "path"),
    [
        ("patient/Observation.rs", "GET", "Observation/o-1"),
        ("patient/Observation.r", "GET", "Observation/o-1/_history/2"),
        ("patient/Observation.s", "GET", "Observation"),
        ("patient/Observation.read", "GET", "Observation"),
        ("patient/Observation.c", "POST", "Observation"),
        ("patient/Observation.u", "PUT", "Observation/o-1"),
        ("patient/Observation.d", "DELETE", "Observation/o-1"),
        ("patient/Observation.write", "PATCH", "Observation/o-1"),
        ("patient/Patient.r", "GET", "Patient/p-1/$everything"),
    ],
)
def test_a_request_covered_by_a_resource_scope_passes(scope: str, method: str, path: str) -> None:
    ctx = covered(scope, method, path)
    assert ctx.fhir is not None
    readable = [] if ctx.fhir.is_write else ["ReadableType"]
    assert kinds(ctx) == readable  # whatever else comes back is held to the scopes too


@pytest.mark.parametrize(
    ("scope", "method", "path", "wanted"),
    [
        ("patient/Observation.rs", "GET", "Patient/p-1", "patient/Patient.r"),
        ("patient/Observation.r", "GET", "Observation", "patient/Observation.s"),
        ("patient/Observation.rs", "POST", "Observation", "patient/Observation.c"),
        ("patient/Observation.rs", "DELETE", "Observation/o-1", "patient/Observation.d"),
        ("patient/Observation.read", "PUT", "Observation/o-1", "patient/Observation.u"),
        ("patient/Patient.rs", "GET", "Patient/$everything", "patient/*.r"),
        ("patient/Patient.rs", "GET", "", "patient/*.s"),  # a system-level search
        ("patient/Patient.rs", "GET", "_history", "patient/*.s"),
        ("system/Patient.rs", "GET", "Observation", "system/Observation.s"),
        ("", "GET", "Observation", "(no context)/Observation.s"),
    ],
)
def test_a_request_no_scope_covers_is_refused(
    scope: str, method: str, path: str, wanted: str
) -> None:
    assert (
        uncovered(scope, method, path, client_class=BACKEND) == f"no granted scope covers {wanted}"
    )


def test_a_write_adds_no_response_check() -> None:
    ctx = covered("patient/Observation.c", "POST", "Observation")
    assert ctx.resource_checks == []


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "metadata", ""),
        ("GET", ".well-known/smart-configuration", ""),
        ("POST", "", ""),  # a batch: each entry is checked as the request it stands for
        ("GET", "", "_getpages=abc&_getpagesoffset=20&_count=20"),  # a page of a checked search
        ("GET", "$export-poll-status", "_jobId=j-1"),  # C04's business
        ("GET", "Binary/out-1", ""),  # an export output: checked line by line
    ],
)
def test_what_needs_no_scope_passes_even_with_none(method: str, path: str, query: str) -> None:
    covered("", method, path, query)


def test_a_binary_read_is_held_to_the_scopes_resource_by_resource() -> None:
    assert kinds(covered("", "GET", "Binary/out-1")) == ["ReadableType"]


def test_without_a_token_nothing_is_judged() -> None:
    ctx = passes(STAGE.covered, context("GET", "Patient/p-1", token=None))
    assert ctx.resource_checks == []


# -- wildcards ----------------------------------------------------------------------------------


@pytest.mark.parametrize("client_class", [None, "operational-ai"])
@pytest.mark.parametrize("scope", ["patient/*.rs", "patient/*.read", "patient/*.cruds"])
def test_a_wildcard_grant_is_refused_for_an_operational_client(
    client_class: str | None, scope: str
) -> None:
    reason = uncovered(scope, "GET", "Observation/o-1", client_class=client_class)
    assert reason.endswith("operational AI clients must hold resource-specific scopes")


def test_a_wildcard_grant_passes_for_a_backend_client() -> None:
    covered("system/*.rs", "GET", "Observation", client_class=BACKEND)


def test_a_specific_scope_wins_over_a_wildcard_one() -> None:
    covered("patient/*.rs patient/Observation.rs", "GET", "Observation/o-1")


@settings(max_examples=200, deadline=None)
@given(
    rtype=st.sampled_from(TYPES),
    other=st.sampled_from(TYPES),
    perms=st.sampled_from(["rs", "r", "read", "cruds", "*"]),
)
def test_an_operational_client_reads_a_type_only_by_its_own_scope(
    rtype: str, other: str, perms: str
) -> None:
    path = f"{rtype}/x-1"
    covered(f"launch/patient patient/{rtype}.{perms}", "GET", path)
    uncovered(f"patient/*.{perms}", "GET", path)  # the wildcard
    if other != rtype:
        uncovered(f"patient/{other}.{perms}", "GET", path)


# -- constrained scopes -------------------------------------------------------------------------


def test_a_constrained_search_must_carry_the_constraint() -> None:
    scope = f"patient/Observation.rs?category={LAB}"
    reason = uncovered(scope, "GET", "Observation", "code=x")
    assert "is granted only for searches with category=" in reason
    ctx = covered(scope, "GET", "Observation", f"category={LAB}")
    assert kinds(ctx) == ["ReadableType", "WithinScope"]


def test_a_constrained_search_is_decided_on_its_parameters_every_time() -> None:
    """The stage's decisions are remembered per scope string, type and permission; not a
    search that only constrained scopes cover: one that carried the constraint does not let
    the next one through without it."""
    scope = f"patient/Observation.rs?category={LAB}"
    for _ in range(3):
        covered(scope, "GET", "Observation", f"category={LAB}")
        assert "is granted only for searches with category=" in uncovered(
            scope, "GET", "Observation", "code=x"
        )


def test_remembered_decisions_are_the_decisions_permits_gives() -> None:
    scopes = parse_scopes(
        f"launch/patient patient/Patient.rs patient/Observation.rs?category={LAB} "
        "user/Condition.cruds patient/*.r"
    )
    asked = [(t, p) for t in [*TYPES, "*", "Binary"] for p in "cruds"]
    for params in [(), (("category", LAB),), (("code", "x"),)]:
        for _ in range(2):  # the second round answers from memory where it may
            for rtype, permission in asked:
                remembered = scopes.decision(rtype, permission, params)
                assert remembered == scopes.permits(scopes.contexts, rtype, permission, params)
    read = scopes.decision("Patient", "r")
    assert scopes.decision("Patient", "r") is read  # worked out once


def test_type_names_a_client_makes_up_are_decided_but_not_all_kept() -> None:
    scopes = parse_scopes("patient/*.rs patient/Observation.rs")
    for n in range(300):
        rtype = f"Made{'x' * (n % 7)}Up{chr(65 + n % 26)}{n}"
        decision = scopes.decision(rtype, "r")
        assert decision == scopes.permits(scopes.contexts, rtype, "r")
        assert decision.allowed  # the wildcard covers it, remembered or not
    assert len(scopes._decisions) <= 64


def test_a_read_under_a_constrained_scope_checks_what_comes_back() -> None:
    ctx = covered(f"patient/Observation.rs?category={LAB}", "GET", "Observation/o-1")
    (_, within) = ctx.resource_checks[1]
    assert isinstance(within, WithinScope)
    lab = observation(LAB)
    assert within(Returned(lab)) is None
    denial = within(Returned(observation("x|vital-signs")))
    assert denial is not None and (denial.status, denial.control) == (403, "C05")


def observation(category: str, **extra: Any) -> dict[str, Any]:
    system, _, code = category.rpartition("|")
    return {
        "resourceType": "Observation",
        "id": "o-1",
        "category": [{"coding": [{"system": system, "code": code}]}],
        **extra,
    }


@pytest.mark.parametrize(
    ("value", "met"),
    [
        (LAB, True),
        ("laboratory", True),  # a code without a system matches any system
        ("http://other.example|laboratory", False),
        (f"{LAB}x", False),
    ],
)
def test_satisfies_reads_token_constraints(value: str, met: bool) -> None:
    assert satisfies(observation(LAB), (("category", value),)) is met


@pytest.mark.parametrize(
    "category", [None, "laboratory", [{"coding": "x"}], [{"coding": [None, 3]}], {"text": "lab"}]
)
def test_satisfies_is_false_for_what_is_not_a_matching_coding(category: Any) -> None:
    resource = {"resourceType": "Observation", "category": category}
    assert satisfies(resource, (("category", "laboratory"),)) is False


# -- bulk export --------------------------------------------------------------------------------


def test_an_export_must_be_covered_for_every_type_it_asks_for() -> None:
    reason = uncovered(
        "system/Observation.rs", "GET", "Group/g-1/$export", "_type=Observation,Patient", BACKEND
    )
    assert reason == "the export asks for Patient: no granted scope covers system/Patient.r"


def test_an_export_without_type_needs_a_wildcard_read() -> None:
    reason = uncovered("system/Observation.rs system/Group.rs", "GET", "Group/g-1/$export")
    assert reason.startswith("the export asks for every type (no _type)")
    covered("system/*.rs", "GET", "$export", client_class=BACKEND)


def test_a_group_export_of_readable_types_passes() -> None:
    scope = "system/Group.rs system/Observation.rs system/Patient.rs"
    ctx = covered(scope, "GET", "Group/g-1/$export", "_type=Observation,Patient", BACKEND)
    assert kinds(ctx) == ["ReadableType"]


def test_a_system_export_of_readable_types_passes() -> None:
    covered("system/Observation.rs", "GET", "$export", "_type=Observation", BACKEND)
    reason = uncovered("system/Observation.rs", "GET", "$export", "_type=Condition", BACKEND)
    assert "Condition" in reason
    assert "every type" in uncovered("system/Observation.rs", "GET", "$export", "", BACKEND)


@pytest.mark.parametrize(
    ("query", "types"),
    [
        ("", ["*"]),
        ("_type=", ["*"]),
        ("_type=Observation", ["Observation"]),
        ("_type=Observation,,Patient", ["Observation", "Patient"]),
        ("_type=Observation&_type=Condition", ["Observation", "Condition"]),
        ("_since=2024-01-01T00:00:00Z", ["*"]),
    ],
)
def test_export_types(query: str, types: list[str]) -> None:
    assert export_types(context("GET", "$export", query).params) == types


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.text(max_size=30), max_size=4))
def test_export_types_of_any_type_parameter(values: list[str]) -> None:
    found = export_types([("_type", v) for v in values])
    assert found, "an export always asks for something: no types means every type"
    named = [t.strip() for v in values for t in v.split(",") if t.strip()]
    assert found == (named or ["*"])


# -- what comes back: ReadableType --------------------------------------------------------------


READABLE = ReadableType(parse_scopes("patient/Observation.rs patient/Patient.r"))


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "Observation", "id": "o-1"},
        {"resourceType": "Patient", "id": "p-1"},
        {"resourceType": "Bundle", "type": "searchset"},
        {"resourceType": "OperationOutcome"},
        {"resourceType": "Observation", "contained": [{"resourceType": "Patient", "id": "c"}]},
    ],
)
def test_a_readable_resource_goes_out(resource: dict[str, Any]) -> None:
    assert READABLE(Returned(resource)) is None


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "Condition", "id": "c-1"},
        {"id": "no-type"},
        {"resourceType": 7},
        {"resourceType": "Observation", "contained": [{"resourceType": "Condition", "id": "c"}]},
        {"resourceType": "Observation", "contained": [{"id": "untyped"}]},
        {"resourceType": "Observation", "contained": ["not a resource"]},
        {"resourceType": "Observation", "contained": {"resourceType": "Observation"}},
    ],
)
def test_an_unreadable_resource_is_withheld(resource: dict[str, Any]) -> None:
    denial = READABLE(Returned(resource))
    assert denial is not None and (denial.status, denial.control) == (403, "C05")


def test_a_constrained_read_scope_holds_returned_resources_to_its_constraints() -> None:
    readable = ReadableType(parse_scopes(f"patient/Observation.rs?category={LAB}"))
    assert readable(Returned(observation(LAB))) is None
    assert readable(Returned(observation("x|social-history"))) is not None


@pytest.mark.parametrize(
    ("path", "permission"),
    [
        ("Observation/o-1/$meta-delete", "u"),
        ("Observation/o-1/$meta-add", "u"),
        ("Observation/o-1/$expunge", "d"),
        ("Observation/$Expunge", "d"),
    ],
)
def test_an_operation_that_changes_data_needs_that_permission(path: str, permission: str) -> None:
    reader = verified("patient/Observation.rs")
    refusal(STAGE.covered, context("POST", path, token=reader), 403, "C05")
    granted = "".join(p for p in "cruds" if p in "rs" + permission)  # SMART v2 order
    writer = verified(f"patient/Observation.{granted}")
    passes(STAGE.covered, context("POST", path, token=writer))
