"""Stage `client_policy`: what an operational AI client's token may be (C01, C02, C03).

A client the profiles do not know (no class) is judged as operational AI: the strict default.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy import ClientPolicy
from gateway.stages.client_policy import ClientPolicyStage
from tests.unit.gateway.stage_kit import context, passes, refusal, verified

STAGE = ClientPolicyStage(ClientPolicy(max_token_lifetime_s=900))
OPERATIONAL = [None, "operational-ai"]  # no profile counts as operational


def test_checks_name_their_controls() -> None:
    assert [control for control, _ in STAGE.checks()] == ["C01", "C02", "C03"]


# -- C01: patient-level scopes only -------------------------------------------------------------


@pytest.mark.parametrize("client_class", OPERATIONAL)
@pytest.mark.parametrize(
    "scope",
    [
        "launch/patient patient/Observation.rs",
        "patient/*.read openid fhirUser",  # wildcards are C05's business, not C01's
        "openid profile",
        "",
    ],
)
def test_patient_scopes_pass_c01(client_class: str | None, scope: str) -> None:
    ctx = context(token=verified(scope), client_class=client_class)
    passes(STAGE.patient_scopes_only, ctx)


@pytest.mark.parametrize("client_class", OPERATIONAL)
@pytest.mark.parametrize(
    ("scope", "named"),
    [
        ("patient/Observation.rs system/Observation.rs", "system/"),
        ("user/Patient.read", "user/"),
        ("patient/Patient.rs user/Patient.rs system/*.cruds", "system/user/"),
    ],
)
def test_user_or_system_scopes_of_an_operational_client_are_refused_as_c01(
    client_class: str | None, scope: str, named: str
) -> None:
    ctx = context(token=verified(scope), client_class=client_class)
    denial = refusal(STAGE.patient_scopes_only, ctx, 403, "C01")
    assert f"not {named} scopes" in denial.reason
    assert "client ai-client" in denial.reason


def test_a_backend_client_may_hold_system_scopes() -> None:
    ctx = context(token=verified("system/*.rs offline_access"), client_class="analytics-backend")
    passes(STAGE.patient_scopes_only, ctx)
    passes(STAGE.offline, ctx)


def test_the_operational_classes_come_from_the_policy() -> None:
    strict = ClientPolicyStage(ClientPolicy(operational_classes=("operational-ai", "triage")))
    ctx = context(token=verified("system/Patient.rs"), client_class="triage")
    refusal(strict.patient_scopes_only, ctx, 403, "C01")


_RESOURCE_TYPE = st.sampled_from(["Patient", "Observation", "*", "Appointment"])
_PERMS = st.sampled_from(["rs", "cruds", "read", "write", "*", "r"])


def _scope(context_name: str) -> st.SearchStrategy[str]:
    return st.builds(lambda t, p: f"{context_name}/{t}.{p}", _RESOURCE_TYPE, _PERMS)


_PATIENT_SCOPES = st.lists(
    st.one_of(_scope("patient"), st.sampled_from(["launch/patient", "openid", "fhirUser"])),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    granted=_PATIENT_SCOPES,
    broad=st.one_of(_scope("user"), _scope("system")),
    at=st.integers(min_value=0, max_value=5),
)
def test_any_user_or_system_scope_among_patient_scopes_is_refused(
    granted: list[str], broad: str, at: int
) -> None:
    passes(STAGE.patient_scopes_only, context(token=verified(" ".join(granted))))
    with_broad = [*granted[:at], broad, *granted[at:]]
    ctx = context(token=verified(" ".join(with_broad)))
    denial = refusal(STAGE.patient_scopes_only, ctx, 403, "C01")
    assert broad.split("/")[0] + "/" in denial.reason


@pytest.mark.parametrize("scope", ["System/*.read", "USER/Patient.read", "sys/*.read", "system"])
def test_scopes_that_do_not_parse_as_user_or_system_grant_nothing_and_pass_c01(
    scope: str,
) -> None:
    # not a resource scope: the scope engine grants nothing for it (C05 refuses what needs it)
    token = verified(scope)
    assert token.scopes.resource_scopes == ()
    passes(STAGE.patient_scopes_only, context(token=token))


# -- C02: token lifetime ------------------------------------------------------------------------


@pytest.mark.parametrize("client_class", [None, "operational-ai", "analytics-backend"])
def test_a_token_longer_than_the_policy_allows_is_refused_as_c02(
    client_class: str | None,
) -> None:
    token = verified(issued_at=1_000, expires_at=1_000 + 901)
    ctx = context(token=token, client_class=client_class)
    denial = refusal(STAGE.lifetime, ctx, 401, "C02")
    assert denial.reason == "token lifetime 901 s exceeds the policy maximum 900 s"


@pytest.mark.parametrize("lifetime", [1, 300, 900])
def test_a_token_within_the_lifetime_passes(lifetime: int) -> None:
    token = verified(issued_at=1_000, expires_at=1_000 + lifetime)
    passes(STAGE.lifetime, context(token=token))


def test_a_token_without_iat_is_judged_by_what_is_left_of_it() -> None:
    now = int(time.time())
    token = verified(issued_at=None, expires_at=now + 10**6)  # days left, however old it is
    assert token.lifetime_s is None
    assert "without iat" in refusal(STAGE.lifetime, context(token=token), 401, "C02").reason
    short = verified(issued_at=None, expires_at=now + 300)
    passes(STAGE.lifetime, context(token=short))


# -- C03: no offline_access ---------------------------------------------------------------------


@pytest.mark.parametrize("client_class", OPERATIONAL)
def test_offline_access_of_an_operational_client_is_refused_as_c03(
    client_class: str | None,
) -> None:
    ctx = context(token=verified("patient/Patient.rs offline_access"), client_class=client_class)
    denial = refusal(STAGE.offline, ctx, 403, "C03")
    assert "offline_access" in denial.reason


@pytest.mark.parametrize("scope", ["patient/Patient.rs online_access", "offline_access_x", ""])
def test_without_offline_access_c03_passes(scope: str) -> None:
    passes(STAGE.offline, context(token=verified(scope)))


# -- no token (authentication off): nothing to judge --------------------------------------------


def test_without_a_token_no_check_refuses() -> None:
    for _, check in STAGE.checks():
        passes(check, context(token=None))
