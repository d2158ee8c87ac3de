"""The per-client CapabilityStatement: HAPI's, filtered to a token's grants."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.capabilities import Grants, filter_capabilities
from gateway.policy import OperationsPolicy
from gateway.scopes import parse_scopes

ALL = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type"]
ALL += ["create", "search-type"]
POLICY = OperationsPolicy(
    export_clients=("population-analytics",),
    restricted=("$everything", "$validate", "$export", "$expunge"),
    restricted_clients=("population-analytics",),
)


def resource(rtype: str, *operations: str) -> dict[str, Any]:
    return {
        "type": rtype,
        "interaction": [{"code": code} for code in ALL],
        "operation": [{"name": op, "definition": f"http://x/{op}"} for op in operations],
    }


STATEMENT: dict[str, Any] = {
    "resourceType": "CapabilityStatement",
    "status": "active",
    "rest": [
        {
            "mode": "server",
            "resource": [
                resource("Patient", "export", "everything", "validate", "meta"),
                resource("Group", "export"),
                resource("Appointment", "meta"),
                resource("Observation", "lastn", "expunge"),
            ],
            "interaction": [{"code": "transaction"}, {"code": "history-system"}],
            "operation": [
                {"name": "export"},
                {"name": "export-poll-status"},
                {"name": "get-resource-counts"},
            ],
        }
    ],
}


def filtered(scope: str, client: str = "scheduling-assistant") -> dict[str, Any]:
    return filter_capabilities(STATEMENT, Grants(parse_scopes(scope), client, POLICY))


def types(statement: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    return {
        r["type"]: (
            sorted(i["code"] for i in r["interaction"]),
            sorted(o["name"] for o in r.get("operation", [])),
        )
        for r in statement["rest"][0]["resource"]
    }


def test_a_patient_app_sees_its_types_and_interactions_only() -> None:
    seen = types(filtered("openid launch/patient patient/Patient.rs patient/Appointment.*"))
    assert seen == {
        "Patient": (
            ["history-instance", "history-type", "read", "search-type", "vread"],
            ["meta"],  # export: C04; everything: wildcard read; validate: restricted (C12)
        ),
        "Appointment": (sorted(ALL), ["meta"]),
    }
    rest = filtered("patient/Patient.rs")["rest"][0]
    assert rest["interaction"] == [{"code": "transaction"}]  # no history-system without *
    assert "operation" not in rest


def test_export_only_for_the_allowlisted_backend_with_system_scopes() -> None:
    scope = "system/Patient.rs system/Group.rs"
    seen = types(filtered(scope, "population-analytics"))
    assert "export" in seen["Group"][1] and "export" in seen["Patient"][1]
    system_ops = [
        o["name"] for o in filtered(scope, "population-analytics")["rest"][0]["operation"]
    ]
    assert system_ops == ["export", "export-poll-status"]
    assert all("export" not in ops for _, ops in types(filtered(scope, "other-client")).values())


def test_constrained_scopes_still_grant_the_interaction() -> None:
    seen = types(filtered("patient/Observation.rs?category=laboratory"))
    assert seen["Observation"][0] == [
        "history-instance",
        "history-type",
        "read",
        "search-type",
        "vread",
    ]
    assert seen["Observation"][1] == ["lastn"]  # expunge is restricted


def test_the_original_is_not_changed() -> None:
    before = repr(STATEMENT)
    filtered("patient/*.read")
    assert repr(STATEMENT) == before


@given(
    st.lists(st.sampled_from(["Patient", "Group", "Observation", "Appointment", "*"]), max_size=3),
    st.sampled_from(["r", "rs", "cruds", "c", "d"]),
    st.sampled_from(["patient", "user", "system"]),
)
def test_filtering_never_adds(types_: list[str], perms: str, context: str) -> None:
    scope = " ".join(f"{context}/{t}.{perms}" for t in types_)
    result = filtered(scope)
    original = {r["type"]: r for r in STATEMENT["rest"][0]["resource"]}
    for r in result["rest"][0]["resource"]:
        assert r["type"] in original and (r["type"] in types_ or "*" in types_)
        assert all(i in original[r["type"]]["interaction"] for i in r["interaction"])
