"""The SMART issuance policy's rules, worked out per client for the Keycloak provider."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labcore.controls import Mode
from labcore.issuance import IssuancePolicy, declared_types, issuance_rules, scope_fate
from labcore.profiles import ClientProfile, load_profiles
from labcore.scopes import parse_scope

ALL = IssuancePolicy(**{c: Mode.ENFORCE for c in ("C01", "C02", "C03", "C04", "C05", "C11")})


def test_a_wildcard_is_narrowed_to_the_declared_resources_in_v2_syntax() -> None:
    fate = scope_fate("patient/*.read", ALL, ("Patient", "Appointment"))
    assert fate.to == ("patient/Appointment.rs", "patient/Patient.rs")
    assert [d.control for d in fate.decisions] == ["C05"]


def test_a_wildcard_keeps_its_constraints_when_narrowed() -> None:
    fate = scope_fate("patient/*.rs?category=laboratory", ALL, ("Observation",))
    assert fate.to == ("patient/Observation.rs?category=laboratory",)


def test_a_wildcard_with_nothing_declared_is_not_granted() -> None:
    fate = scope_fate("patient/*.read", ALL, ())
    assert fate.to == ()
    assert "none declared" in fate.decisions[0].reason


def test_user_and_system_scopes_are_not_granted_and_system_is_c04_first() -> None:
    assert scope_fate("user/Observation.rs", ALL, ()).to == ()
    system = scope_fate("system/*.read", ALL, ("Patient",))
    assert system.to == ()
    assert [d.control for d in system.decisions] == ["C04"]  # the chain ends at the first refusal


def test_offline_access_is_c03_and_other_special_scopes_pass() -> None:
    assert scope_fate("offline_access", ALL, ()).to == ()
    assert scope_fate("launch/patient", ALL, ()).to == ("launch/patient",)
    assert scope_fate("openid", ALL, ()).decisions == ()


def test_monitor_records_and_leaves_the_scope_then_later_rules_apply() -> None:
    policy = ALL.with_modes({"C01": Mode.MONITOR})
    fate = scope_fate("user/*.read", policy, ("Patient",))
    assert fate.to == ("user/Patient.rs",)  # C01 only watched; C05 narrowed
    assert [(d.control, d.mode) for d in fate.decisions] == [
        ("C01", Mode.MONITOR),
        ("C05", Mode.ENFORCE),
    ]


def test_off_rules_leave_no_trace() -> None:
    fate = scope_fate("patient/*.read", IssuancePolicy(), ("Patient",))
    assert fate.to == ("patient/*.read",)
    assert fate.decisions == ()


def test_declared_types_default_to_those_the_scopes_name() -> None:
    scopes = ("patient/Patient.rs", "patient/*.read", "launch/patient", "patient/Appointment.rs")
    assert declared_types(scopes, ()) == ("Patient", "Appointment")
    assert declared_types(scopes, ("Condition",)) == ("Condition",)


def test_rules_for_the_shipped_wildcard_scheduler() -> None:
    profiles = load_profiles(Path("keycloak/clients"))
    profile = profiles["wildcard-scheduler"]
    rules = issuance_rules(profile.client_id, profile.scopes, profile.declared_resources, ALL)
    narrowed = rules["scopes"]["patient/*.read"]["to"]
    assert narrowed == ["patient/Appointment.rs", "patient/Patient.rs"]
    assert "openid" not in rules["scopes"]  # unchanged, unremarked scopes are left out
    assert rules["lifetime"] == {"mode": "enforce", "max_s": 900}
    assert rules["down_scope"] == "enforce"


def test_with_modes_refuses_controls_that_are_not_issuance_rules() -> None:
    with pytest.raises(ValueError, match="C08"):
        ALL.with_modes({"C08": Mode.OFF})


def test_a_profile_takes_an_issuance_block_and_refuses_unknown_keys() -> None:
    base = {
        "schema_version": 1,
        "client_id": "demo-client",
        "description": "d",
        "tenants": ["tenant-a"],
        "class": "operational-ai",
        "public": True,
        "authenticator": "none",
        "grant_types": ["authorization_code"],
        "redirect_uris": ["http://localhost:9999/cb"],
        "scopes": ["openid", "patient/*.read"],
        "access_token_lifetime_s": 300,
    }
    profile = ClientProfile.model_validate({**base, "issuance": {"C05": "enforce"}})
    assert profile.issuance is not None and profile.issuance.C05 is Mode.ENFORCE
    with pytest.raises(ValueError, match="C08"):
        ClientProfile.model_validate({**base, "issuance": {"C08": "enforce"}})


SCOPE_TOKENS = st.one_of(
    st.sampled_from(["openid", "offline_access", "launch/patient", "fhirUser", "email"]),
    st.builds(
        lambda c, t, p: f"{c}/{t}.{p}",
        st.sampled_from(["patient", "user", "system"]),
        st.sampled_from(["*", "Patient", "Observation", "Condition"]),
        st.sampled_from(["read", "write", "*", "rs", "cruds", "s"]),
    ),
)


@given(st.lists(SCOPE_TOKENS, max_size=8), st.lists(st.sampled_from(["Patient", "Condition"])))
def test_enforced_rules_never_grant_more_than_the_registration(
    scopes: list[str], declared: list[str]
) -> None:
    """Everything granted is patient-level, names a declared type, and no wildcard remains."""
    types = declared_types(scopes, declared)
    for scope in scopes:
        for granted in scope_fate(scope, ALL, types).to:
            assert granted != "offline_access"
            if "/" in granted and granted.split("/")[0] in ("patient", "user", "system"):
                parsed = parse_scope(granted)
                assert parsed.context == "patient"
                assert not parsed.is_wildcard
                assert parsed.resource_type in types or granted == scope
